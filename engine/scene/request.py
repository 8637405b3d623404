"""What a scene run is asked, checked before anything is read, and what it reports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..classic import CLASSIC_METHODS
from ..errors import InputError, OutputError
from ..masks import QA_MASK_KINDS
from ..raster import output_driver
from ..units import LST_UNITS, OUTPUT_UNITS

# "auto": the method that best rebuilds the scene's own LST one scale coarser (engine.scene.selfcheck).
METHODS = ("mocolsk", "blend", *CLASSIC_METHODS, "auto")
DEFAULT_TILE_SIZE_PX = 512
MIN_TILE_SIZE_PX = 16
MAX_QA_MASK_GROW_PX = 50
UNCERTAINTY_METHODS = ("mocolsk", "blend", "dms", "auto")
MAX_NATIVE_PIXEL_M = 100_000.0


@dataclass
class DownscaleRequest:
    """Everything a downscaling run needs; paths are GDAL-readable rasters."""

    lst_path: str
    guidance_paths: list[str]
    output_path: str
    lst_band: int = 1
    lst_units: str = "auto"
    qa_mask_path: str | None = None
    qa_mask_kind: str = "auto"
    qa_mask_grow_px: int = 0  # LST pixels
    guidance_band_names: list[str] | None = None
    method: str = "mocolsk"
    model: str | None = (
        None  # bundled name or package path; None, "" or "auto": the bundled one for the ratio
    )
    backend: str = "onnxruntime"
    device: str = "auto"
    threads: int | None = None
    tile_size_px: int = DEFAULT_TILE_SIZE_PX
    conserve_coarse_means: bool = True
    output_units: str = "kelvin"
    overwrite: bool = False
    cog: bool = False
    # Optional second GeoTIFF: the per-pixel uncertainty in K (engine.uncertainty); MoCoLSK and DMS only.
    uncertainty_path: str | None = None
    # The pixel the LST's sensor saw, in metres, when the product was resampled onto a finer grid (Landsat
    # TIRS 100 m delivered at 30 m); None or 0: known from the product name or MTL, else the LST's pixel.
    native_pixel_m: float | None = None


@dataclass(frozen=True)
class DownscaleResult:
    """What a run did, for the log, the plugin's feedback and reproducibility; built once, from what the
    stages returned."""

    output_path: str
    method: str
    model_name: str
    model_version: str
    device: str
    scale: int
    lst_units: str
    lst_units_reason: str
    warped: bool
    warp_reason: str
    guidance_mapping: str
    max_conservation_residual_k: float
    tiles: int
    # Fine pixels whose network detail was clipped to the local coarse range; None for classic methods.
    detail_clipped_px: int | None = None
    detail_clipped_percent: float | None = None
    uncertainty_path: str | None = None
    # The factor on the raw spread from the model card's calibration; None when never calibrated.
    uncertainty_sigma_scale: float | None = None
    # With method "auto": what the self-check measured (method -> RMSE in K) and why it chose.
    self_check: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)
    # The scales run in turn, coarsest first: one, or a cascade of bundled packages (e.g. (4, 8) for x32).
    scale_steps: tuple[int, ...] = ()
    # With the blend: its members' weights as they ran and which of the card's sets; "" otherwise.
    blend_weights: str = ""
    # With the blend: the members that ran (every step's, in order, for a cascade); () otherwise.
    blend_members: tuple[str, ...] = ()


def validate_request(request: DownscaleRequest) -> None:
    """Refuse a request that cannot run, before any input is opened or anything written."""
    if request.method not in METHODS:
        raise InputError(f"Unknown method {request.method!r}; use one of {', '.join(METHODS)}.")
    if request.lst_units not in LST_UNITS:
        raise InputError(f"Unknown LST units {request.lst_units!r}; use one of {', '.join(LST_UNITS)}.")
    if request.output_units not in OUTPUT_UNITS:
        raise InputError(
            f"Unknown output units {request.output_units!r}; use one of {', '.join(OUTPUT_UNITS)}."
        )
    if request.qa_mask_kind not in QA_MASK_KINDS:
        raise InputError(
            f"Unknown QA mask kind {request.qa_mask_kind!r}; use one of {', '.join(QA_MASK_KINDS)}."
        )
    if not 0 <= request.qa_mask_grow_px <= MAX_QA_MASK_GROW_PX:
        raise InputError(
            f"QA mask growth {request.qa_mask_grow_px} px is out of range; "
            f"use 0 to {MAX_QA_MASK_GROW_PX} LST pixels."
        )
    if request.qa_mask_grow_px > 0 and not request.qa_mask_path:
        raise InputError(
            f"QA mask growth of {request.qa_mask_grow_px} px needs a QA mask; "
            f"give a QA mask or set the growth to 0."
        )
    if request.native_pixel_m is not None and not 0 <= request.native_pixel_m <= MAX_NATIVE_PIXEL_M:
        raise InputError(
            f"Native LST pixel {request.native_pixel_m:g} m is out of range; give the pixel the sensor saw in "
            f"metres (e.g. 100 for Landsat 8/9 TIRS, 60 for ETM+, 120 for TM), or 0 to read it from the product."
        )
    if not request.guidance_paths:
        raise InputError("No guidance raster given; the guidance defines the output grid.")
    if request.tile_size_px < MIN_TILE_SIZE_PX:
        raise InputError(
            f"Tile size {request.tile_size_px} px is too small; use at least {MIN_TILE_SIZE_PX} (default "
            f"{DEFAULT_TILE_SIZE_PX})."
        )
    validate_output_path(request)
    if request.uncertainty_path:
        if request.method not in UNCERTAINTY_METHODS:
            raise InputError(
                f"An uncertainty layer is available for {', '.join(UNCERTAINTY_METHODS[:-1])} and "
                f"{UNCERTAINTY_METHODS[-1]} only, not "
                f"{request.method}; leave the uncertainty output empty or choose one of those methods."
            )
        if Path(request.uncertainty_path).resolve() == Path(request.output_path).resolve():
            raise OutputError(
                f"The uncertainty output {Path(request.uncertainty_path).resolve()} is the LST output too; give "
                "the uncertainty another file name, e.g. "
                f"{Path(request.output_path).with_name(Path(request.output_path).stem + '_sigma.tif').name}."
            )
        uncertainty = Path(request.uncertainty_path)
        if uncertainty.suffix.lower() not in (".tif", ".tiff"):
            raise OutputError(
                f"Uncertainty output {uncertainty.name}: it is written as a GeoTIFF, so its name must end in "
                f".tif; name it {uncertainty.stem or 'sigma'}.tif."
            )
        validate_output_path(replace(request, output_path=request.uncertainty_path))


def validate_output_path(request: DownscaleRequest) -> None:
    """The output must have a format's extension (GeoTIFF by default), be in an existing folder, not be an
    input, and be new unless overwriting."""
    output = Path(request.output_path).resolve()
    if output.is_dir():
        raise OutputError(
            f"Output {output} is a folder; give a file name inside it, e.g. {output / 'lst_downscaled.tif'}."
        )
    driver = output_driver(output)
    if request.cog and driver != "GTiff":
        raise OutputError(
            f"Output {output.name}: a Cloud Optimized GeoTIFF is a GeoTIFF; name it {output.stem}.tif, or "
            "turn the COG option off to write this format."
        )
    if not output.parent.is_dir():
        raise InputError(
            f"Output folder {output.parent} does not exist; create it or choose another output path."
        )
    if not os.access(output.parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"Permission denied writing {output.name} in the output folder {output.parent}; choose a folder you "
            "can write to."
        )
    inputs = [
        request.lst_path,
        *request.guidance_paths,
        *([request.qa_mask_path] if request.qa_mask_path else []),
    ]
    if any(Path(p).resolve() == output for p in inputs):
        raise InputError(f"Output {output} is one of the inputs; choose another output path.")
    if output.exists() and not request.overwrite:
        raise InputError(f"Output {output} already exists; choose another path or allow overwriting.")

"""Scene pipeline: downscale an LST raster on disk to the guidance grid, tile by tile.

One entry point, `downscale_scene`, serves the QGIS plugin and the command line:

1. open the guidance (output grid) and the method (MoCoLSK package or a classic sharpener);
2. convert the LST to Kelvin and put it on the coarse grid whose pixel is exactly
   ``scale`` guidance pixels (warping with area averaging when it is not there already);
3. for methods with a scene-wide regression, collect coarse samples tile by tile and fit;
4. stream overlapping tiles: read window -> fill masked pixels -> predict -> bound the
   network's detail by the local coarse range -> restore the coarse means -> blend into a
   scratch raster;
5. write the compressed GeoTIFF (or COG) with metadata, and move it into place atomically.

Memory stays bounded by the tile size: every read and write is windowed and GDAL's block
cache is capped. A cancelled or failed run removes all scratch files and never touches
an existing output unless ``overwrite`` is set.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .bands import BandMapping, map_bands, units_warnings
from .card import METHOD_TITLES, accuracy_summary, recommended_method
from .classic import CLASSIC_METHODS, Sharpener, coarse_samples, create_sharpener
from .conservation import conserve_coarse_means, max_abs_residual
from .detail import bound_detail, detail_bounds
from .errors import Cancelled, InputError
from .grids import Grid, choose_scale, is_aligned, matching_scale, require_north_up, same_shape_and_transform
from .masks import QA_MASK_KINDS, expand, fill_invalid, grow_mask, qa_invalid
from .package import bundled_scales
from .raster import (
    OUTPUT_CREATION_OPTIONS,
    SCRATCH_CREATION_OPTIONS,
    band_nodata,
    create_geotiff,
    crs_label,
    decide_lst_units,
    gdal_session,
    get_band,
    grid_of,
    open_raster,
    pixel_size_in,
    pixel_size_label,
    read_window,
    same_crs,
    sample_values,
    translate_to_cog,
    valid_mask,
    warp_to_grid,
    window_covering,
)
from .tiling import Tile, plan_tiles
from .units import LST_UNITS, OUTPUT_UNITS, LstUnits, check_plausible_kelvin, kelvin_to

METHODS = ("mocolsk", *CLASSIC_METHODS)
# The model value (besides None or empty) that asks for the bundled package matching the pixel ratio.
AUTO_MODEL = "auto"
OUTPUT_NODATA = -9999.0
DEFAULT_TILE_SIZE_PX = 512
# Context read around each tile, in fine pixels; the network pools globally, so be generous.
HALO_FINE_PX = 96
MIN_HALO_COARSE_PX = 8
# Masked pixels within this many pixels of data are filled from their neighbourhood only,
# so that overlapping tiles fill them alike (the coarse LST uses the halo minus the blend margin).
GUIDANCE_FILL_STEPS_COARSE_PX = 2
# A warped coarse LST pixel needs this share of valid source area, else it is masked.
MIN_VALID_FRACTION = 0.5
CLASSIC_SCALES = tuple(range(2, 17))
GUIDANCE_SAMPLE_PX = 1 << 14
CONVERSION_BLOCK_PX = 512
MAX_QA_MASK_GROW_PX = 50

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]
LogCallback = Callable[[str], None]


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


@dataclass
class DownscaleResult:
    """What a run did, for the log, the plugin's feedback and reproducibility."""

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
    timings_s: dict[str, float] = field(default_factory=dict)


def downscale_scene(
    request: DownscaleRequest,
    progress: ProgressCallback | None = None,
    is_cancelled: CancelCheck | None = None,
    log: LogCallback | None = None,
) -> DownscaleResult:
    """Downscale ``request.lst_path`` onto the guidance grid and write ``request.output_path``."""
    run = _Run(
        request, progress or (lambda _: None), is_cancelled or (lambda: False), log or (lambda _: None)
    )
    _validate_request(request)
    with gdal_session():
        scratch = Path(tempfile.mkdtemp(prefix=".mocolsk-", dir=Path(request.output_path).resolve().parent))
        try:
            return run.execute(scratch)
        except BaseException as exc:
            # Drop the failed frames' GDAL datasets so that their scratch files can be deleted (Windows).
            traceback.clear_frames(exc.__traceback__)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _validate_request(request: DownscaleRequest) -> None:
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
    if not request.guidance_paths:
        raise InputError("No guidance raster given; the guidance defines the output grid.")
    if request.tile_size_px < 16:
        raise InputError(
            f"Tile size {request.tile_size_px} px is too small; use at least 16 (default "
            f"{DEFAULT_TILE_SIZE_PX})."
        )
    output = Path(request.output_path).resolve()
    if output.suffix.lower() not in (".tif", ".tiff"):
        raise InputError(
            f"Output {output.name}: the result is written as a GeoTIFF, so its name must end in .tif "
            f"(or .tiff); rename it, e.g. {output.stem or 'lst_30m'}.tif, and convert afterwards if needed."
        )
    if not output.parent.is_dir():
        raise InputError(
            f"Output folder {output.parent} does not exist; create it or choose another output path."
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


@dataclass
class _Guidance:
    datasets: list
    bands: list  # gdal.Band per input band, in the order given
    nodata: list
    names: list  # band name per input band (None when unnamed)
    grid: Grid


@dataclass
class _Method:
    scale: int
    mapping: BandMapping
    predictor: Sharpener
    model_name: str = ""
    model_version: str = ""
    device: str = "cpu (numpy)"


@dataclass
class _CoarseLst:
    path: str
    units: LstUnits
    warped: bool
    warp_reason: str


class _Run:
    def __init__(
        self,
        request: DownscaleRequest,
        progress: ProgressCallback,
        is_cancelled: CancelCheck,
        log: LogCallback,
    ):
        self.request = request
        self._progress = progress
        self.is_cancelled = is_cancelled
        self.log = log
        self.timings: dict[str, float] = {}
        self.detail_clipped_px = 0
        self.valid_px = 0

    def progress(self, percent: float) -> None:
        self._progress(float(min(max(percent, 0.0), 100.0)))

    def check_cancelled(self) -> None:
        if self.is_cancelled():
            raise Cancelled("Downscaling cancelled; no output was written.")

    def execute(self, scratch: Path) -> DownscaleResult:
        request = self.request
        start = time.perf_counter()
        self.progress(0)
        guidance = self.open_guidance()
        lst_dataset = open_raster(request.lst_path, f"LST {request.lst_path}")
        lst_grid = grid_of(lst_dataset, f"LST {request.lst_path}")
        require_north_up(lst_grid, f"LST {request.lst_path}")
        ratio = self.resolution_ratio(lst_grid, guidance.grid)

        method = self.open_method(
            guidance, ratio, pixel_size_label(guidance.grid, ratio * guidance.grid.pixel_width)
        )
        scale, mapping, predictor = method.scale, method.mapping, method.predictor
        self.log(
            f"Method {request.method}, scale x{scale}; guidance bands mapped {mapping.how}: "
            f"{', '.join(mapping.names) or 'none used'}"
        )
        coarse_grid = guidance.grid.coarsened(scale)
        self.check_cancelled()
        coarse = self.prepare_coarse_lst(lst_dataset, lst_grid, coarse_grid, scale, scratch)
        self.timings["prepare_s"] = time.perf_counter() - start
        self.progress(5)

        halo = max(MIN_HALO_COARSE_PX, math.ceil(HALO_FINE_PX / scale))
        self.coarse_fill_steps = halo - halo // 2
        core = max(2, request.tile_size_px // scale)
        tiles = plan_tiles(coarse_grid.width, coarse_grid.height, core, halo)
        coarse_dataset = open_raster(coarse.path, "coarse LST")
        reader = _TileReader(guidance, mapping, coarse_dataset.GetRasterBand(1), scale)

        if predictor.needs_fit:
            start = time.perf_counter()
            self.fit(predictor, reader, plan_tiles(coarse_grid.width, coarse_grid.height, core, 0))
            self.timings["fit_s"] = time.perf_counter() - start
        self.progress(15)

        start = time.perf_counter()
        blended_path = scratch / "blended.tif"
        blended = create_geotiff(blended_path, guidance.grid, SCRATCH_CREATION_OPTIONS)
        for done, tile in enumerate(tiles, 1):
            self.check_cancelled()
            self.process_tile(tile, reader, predictor, blended.GetRasterBand(1), guidance.grid, scale)
            self.progress(15 + 75 * done / len(tiles))
        blended.FlushCache()
        self.timings["tiles_s"] = time.perf_counter() - start
        self.log(
            f"Predicted {len(tiles)} tile(s) of up to {core * scale} px (halo {halo * scale} px) on "
            f"{method.device}"
        )
        bounds_detail = isinstance(predictor, _NetworkSharpener)
        clipped_percent = 100.0 * self.detail_clipped_px / max(self.valid_px, 1)
        if bounds_detail:
            self.log(
                f"Detail bound: {self.detail_clipped_px} pixels ({clipped_percent:.3g} %) clipped to the "
                "local "
                f"coarse range"
            )

        start = time.perf_counter()
        result = DownscaleResult(
            output_path=str(Path(request.output_path).resolve()),
            method=request.method,
            model_name=method.model_name,
            model_version=method.model_version,
            device=method.device,
            scale=scale,
            lst_units=coarse.units.name,
            lst_units_reason=coarse.units.reason,
            warped=coarse.warped,
            warp_reason=coarse.warp_reason,
            guidance_mapping=f"{mapping.how}: {', '.join(mapping.names)}" if mapping.names else mapping.how,
            max_conservation_residual_k=float("nan"),
            tiles=len(tiles),
            timings_s=self.timings,
            detail_clipped_px=self.detail_clipped_px if bounds_detail else None,
            detail_clipped_percent=clipped_percent if bounds_detail else None,
        )
        self.finish(blended, coarse_dataset.GetRasterBand(1), guidance.grid, scale, result, scratch)
        self.timings["write_s"] = time.perf_counter() - start
        self.progress(100)
        return result

    def open_guidance(self) -> _Guidance:
        request = self.request
        datasets, bands, nodata, names = [], [], [], []
        grid = None
        for path in request.guidance_paths:
            layer = f"Guidance {path}"
            dataset = open_raster(path, layer)
            this_grid = grid_of(dataset, layer)
            require_north_up(this_grid, layer)
            if grid is None:
                grid = this_grid
            elif not (
                same_crs(grid.crs_wkt, this_grid.crs_wkt) and same_shape_and_transform(grid, this_grid)
            ):
                raise InputError(
                    f"{layer} is not on the grid of {request.guidance_paths[0]} "
                    f"({this_grid.width}x{this_grid.height} "
                    f"vs {grid.width}x{grid.height} px, or another origin, pixel size or CRS); resample all "
                    f"guidance rasters onto one grid (e.g. gdalwarp -tr/-te or a VRT)."
                )
            datasets.append(dataset)
            for index in range(1, dataset.RasterCount + 1):
                band = dataset.GetRasterBand(index)
                bands.append(band)
                nodata.append(band_nodata(band))
                names.append(band.GetDescription() or None)
        if request.guidance_band_names:
            if len(request.guidance_band_names) != len(bands):
                raise InputError(
                    f"{len(request.guidance_band_names)} guidance band name(s) given "
                    f"({', '.join(request.guidance_band_names)}) for {len(bands)} guidance band(s); give "
                    "one name per band."
                )
            names = list(request.guidance_band_names)
        return _Guidance(datasets, bands, nodata, names, grid)

    def open_method(self, guidance: _Guidance, ratio: float, lst_pixel: str) -> _Method:
        """The predictor, its scale and its guidance bands; MoCoLSK's scale is the model's.

        ``lst_pixel`` is the LST pixel size in the guidance CRS, for the messages.
        """
        request = self.request
        layer = f"LST {request.lst_path}"
        if request.method == "mocolsk":
            from .inference import Downscaler

            bundled = bundled_scales()
            model = request.model
            if not model or model == AUTO_MODEL:
                model = self.bundled_model_for(
                    ratio, bundled, layer, lst_pixel, pixel_size_label(guidance.grid)
                )
            downscaler = Downscaler(
                model, backend=request.backend, device=request.device, threads=request.threads
            )
            card = downscaler.card
            self.log(f"Model {card.name} {card.version} (x{card.scale}) on {downscaler.device_description}")
            summary = accuracy_summary(card)
            if summary:
                self.log(summary)
            recommended = recommended_method(card)
            if recommended and recommended != "mocolsk":
                self.log(
                    f"Note: on held-out scenes {METHOD_TITLES.get(recommended, recommended)} was more "
                    "accurate than "
                    f"{card.name} at x{card.scale}; choose that method unless you have checked MoCoLSK on "
                    "your data."
                )
            try:
                scale = choose_scale(ratio, (card.scale,), layer, f"model {card.name!r}")
            except InputError as error:
                fit = matching_scale(ratio, tuple(bundled.values()))
                fitting = [f"{name} (x{s})" for name, s in bundled.items() if s == fit]
                if not fitting:
                    raise
                raise InputError(f"{error} For this LST use {' or '.join(fitting)} instead.") from None
            mapping = map_bands(card.guidance_band_names, guidance.names, "Guidance", f"model {card.name!r}")
            self.check_guidance_units(guidance, mapping, card.guidance_bands)
            return _Method(
                scale,
                mapping,
                _NetworkSharpener(downscaler),
                card.name,
                card.version,
                downscaler.device_description,
            )
        scale = choose_scale(ratio, CLASSIC_SCALES, layer, f"method {request.method!r}")
        mapping = self.classic_mapping(guidance.names)
        return _Method(scale, mapping, create_sharpener(request.method, scale, len(mapping.sources)))

    def bundled_model_for(
        self, ratio: float, bundled: dict[str, int], layer: str, lst_pixel: str, guidance_pixel: str
    ) -> str:
        """The bundled package whose scale matches the LST/guidance pixel ratio (no model given), or an error."""
        scales = sorted(set(bundled.values()))
        scale = matching_scale(ratio, tuple(scales))
        if scale is None:
            listed = ", ".join(f"{name} (x{s})" for name, s in bundled.items()) or "none are installed"
            multiples = " or ".join(filter(None, (", ".join(map(str, scales[:-1])), *map(str, scales[-1:]))))
            resample = f"resample the LST to {multiples} times the guidance pixel, or " if scales else ""
            raise InputError(
                f"{layer}: its pixel is {ratio:.3g} times the guidance pixel ({lst_pixel} / "
                f"{guidance_pixel}) and no "
                f"model was given, but no bundled model has that scale (bundled: {listed}); {resample}give "
                "a model "
                f"package trained for this scale."
            )
        name = next(n for n, s in bundled.items() if s == scale)
        self.log(
            f"Model: {name}, the bundled package for x{scale} (LST pixel {lst_pixel} / guidance pixel "
            f"{guidance_pixel})"
        )
        return name

    def check_guidance_units(self, guidance: _Guidance, mapping: BandMapping, specs) -> None:
        """Log a warning for bands that look like other units than the model was trained on."""
        samples = np.stack([sample_values(band, GUIDANCE_SAMPLE_PX) for band in guidance.bands]).astype(
            np.float32
        )
        valid = np.all([valid_mask(s, nodata) for s, nodata in zip(samples, guidance.nodata)], axis=0)
        for warning in units_warnings(*mapping.compose(samples, valid), specs):
            self.log(warning)

    def classic_mapping(self, names: list) -> BandMapping:
        method = self.request.method
        if method == "bicubic":
            return BandMapping((), (), "not used (bicubic ignores the guidance values)")
        if method == "tsharp":
            return map_bands(("ndvi",), names, "Guidance", "TsHARP", order_fallbacks=[("red", "nir")])
        labels = tuple(n or f"band {i + 1}" for i, n in enumerate(names))
        return BandMapping(labels, tuple(range(len(names))), "all as predictors")

    def resolution_ratio(self, lst_grid: Grid, guidance_grid: Grid) -> float:
        width, height = pixel_size_in(lst_grid, guidance_grid)
        ratio_x, ratio_y = width / guidance_grid.pixel_width, height / guidance_grid.pixel_height
        if abs(ratio_x / ratio_y - 1.0) > 0.05:
            raise InputError(
                f"LST {self.request.lst_path}: its pixels are {ratio_x:.3g} x {ratio_y:.3g} guidance pixels; "
                f"the coarse pixel must be square in guidance pixels. Resample the LST first."
            )
        return (ratio_x + ratio_y) / 2

    def prepare_coarse_lst(
        self, dataset, lst_grid: Grid, coarse_grid: Grid, scale: int, scratch: Path
    ) -> _CoarseLst:
        """Write the LST in Kelvin on the coarse grid (NaN where masked) and say what was done."""
        request = self.request
        layer = f"LST {request.lst_path}"
        band = get_band(dataset, request.lst_band, layer)
        nodata = band_nodata(band)
        units = decide_lst_units(dataset, band, request.lst_path, request.lst_units, layer)
        self.log(f"LST units: {units.name} ({units.reason})")
        qa = self.open_qa_mask(lst_grid)
        covering = window_covering(lst_grid, coarse_grid)
        if covering is None:
            raise InputError(
                f"{layer} does not overlap the guidance extent; check that both cover the same area."
            )
        lst_grid, col0, row0 = covering

        native = create_geotiff(
            scratch / "lst_kelvin.tif", lst_grid, SCRATCH_CREATION_OPTIONS, nodata=float("nan")
        )
        fraction = create_geotiff(scratch / "lst_valid.tif", lst_grid, SCRATCH_CREATION_OPTIONS)
        low, high = math.inf, -math.inf
        grown_px = 0
        for y0 in range(0, lst_grid.height, CONVERSION_BLOCK_PX):
            for x0 in range(0, lst_grid.width, CONVERSION_BLOCK_PX):
                self.check_cancelled()
                width = min(CONVERSION_BLOCK_PX, lst_grid.width - x0)
                height = min(CONVERSION_BLOCK_PX, lst_grid.height - y0)
                values = band.ReadAsArray(col0 + x0, row0 + y0, width, height)
                valid = valid_mask(values, nodata)
                if qa is not None:
                    cloud, grown = self.read_qa_invalid(qa, col0 + x0, row0 + y0, width, height)
                    grown_px += int((valid & ~cloud & grown).sum())
                    valid &= ~grown
                kelvin = np.where(valid, units.to_kelvin(values), np.nan).astype(np.float32)
                if np.isfinite(kelvin).any():
                    low, high = min(low, float(np.nanmin(kelvin))), max(high, float(np.nanmax(kelvin)))
                native.GetRasterBand(1).WriteArray(kelvin, x0, y0)
                fraction.GetRasterBand(1).WriteArray(np.isfinite(kelvin).astype(np.float32), x0, y0)
        native, fraction = None, None
        if request.qa_mask_grow_px:
            self.log(f"QA mask grown by {request.qa_mask_grow_px} px: {grown_px} more LST pixels masked")
        if low > high:
            raise InputError(
                f"{layer} has no valid pixels over the guidance (all nodata or masked); check the band, "
                f"its nodata value, the mask and that the LST covers the guidance."
            )
        check_plausible_kelvin(low, high, layer, units)

        crs_matches = same_crs(lst_grid.crs_wkt, coarse_grid.crs_wkt)
        coarse_path = str(scratch / "lst_coarse.tif")
        coarse_size = pixel_size_label(coarse_grid)
        if crs_matches and is_aligned(lst_grid, coarse_grid):
            warp_to_grid(str(scratch / "lst_kelvin.tif"), coarse_path, coarse_grid, "near", float("nan"))
            warped, reason = False, f"LST already on the x{scale} coarse grid ({coarse_size}); no warp"
        else:
            if not crs_matches:
                why = f"its CRS {crs_label(lst_grid.crs_wkt)} differs from the guidance's {crs_label(coarse_grid.crs_wkt)}"
            elif not math.isclose(lst_grid.pixel_width, coarse_grid.pixel_width, rel_tol=1e-6):
                why = f"its pixel of {pixel_size_label(lst_grid)} differs from the coarse pixel of {coarse_size}"
            else:
                why = "its pixel edges are shifted from the guidance grid's"
            warp_to_grid(str(scratch / "lst_kelvin.tif"), coarse_path, coarse_grid, "average", float("nan"))
            fraction_path = str(scratch / "lst_valid_coarse.tif")
            warp_to_grid(str(scratch / "lst_valid.tif"), fraction_path, coarse_grid, "average", -1.0)
            self.mask_sparse_pixels(coarse_path, fraction_path, coarse_grid)
            warped, reason = (
                True,
                (
                    f"LST warped onto the x{scale} coarse grid of the guidance ({coarse_size}) with "
                    f"area averaging because {why}"
                ),
            )
        self.log(reason)
        self.check_coverage(coarse_path, coarse_grid)
        return _CoarseLst(coarse_path, units, warped, reason)

    def open_qa_mask(self, lst_grid: Grid):
        request = self.request
        if not request.qa_mask_path:
            return None
        layer = f"QA mask {request.qa_mask_path}"
        dataset = open_raster(request.qa_mask_path, layer)
        grid = grid_of(dataset, layer)
        if not (same_crs(grid.crs_wkt, lst_grid.crs_wkt) and same_shape_and_transform(grid, lst_grid)):
            raise InputError(
                f"{layer} is not on the LST's grid ({grid.width}x{grid.height} vs "
                f"{lst_grid.width}x{lst_grid.height} px, "
                f"or another origin, pixel size or CRS); the mask must match the LST pixel for pixel."
            )
        kind = request.qa_mask_kind
        if kind == "auto":
            band = dataset.GetRasterBand(1)
            named = f"{Path(request.qa_mask_path).name} {band.GetDescription()}".upper()
            kind = "landsat_qa_pixel" if "QA_PIXEL" in named else "nonzero"
            self.log(
                f"QA mask read as {kind} "
                f"({'the name says QA_PIXEL' if kind != 'nonzero' else 'any non-zero pixel is masked'})"
            )
        return dataset, dataset.GetRasterBand(1), kind

    def read_qa_invalid(
        self, qa, col: int, row: int, width: int, height: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The QA mask's unusable pixels in a window, and them grown by ``qa_mask_grow_px``.

        The window is read with a margin of the growth so that clouds just outside it grow into it.
        """
        dataset, band, kind = qa
        grow_px = self.request.qa_mask_grow_px
        left, top = max(col - grow_px, 0), max(row - grow_px, 0)
        right = min(col + width + grow_px, dataset.RasterXSize)
        bottom = min(row + height + grow_px, dataset.RasterYSize)
        invalid = qa_invalid(band.ReadAsArray(left, top, right - left, bottom - top), kind)
        inner = (slice(row - top, row - top + height), slice(col - left, col - left + width))
        return invalid[inner], grow_mask(invalid, grow_px)[inner]

    def mask_sparse_pixels(self, coarse_path: str, fraction_path: str, grid: Grid) -> None:
        from osgeo import gdal

        coarse = gdal.Open(coarse_path, gdal.GA_Update)
        fraction = gdal.Open(fraction_path)
        for y0 in range(0, grid.height, CONVERSION_BLOCK_PX):
            for x0 in range(0, grid.width, CONVERSION_BLOCK_PX):
                width, height = (
                    min(CONVERSION_BLOCK_PX, grid.width - x0),
                    min(CONVERSION_BLOCK_PX, grid.height - y0),
                )
                values = coarse.GetRasterBand(1).ReadAsArray(x0, y0, width, height)
                share = fraction.GetRasterBand(1).ReadAsArray(x0, y0, width, height)
                values[~(share >= MIN_VALID_FRACTION)] = np.nan
                coarse.GetRasterBand(1).WriteArray(values, x0, y0)
        coarse.FlushCache()

    def check_coverage(self, coarse_path: str, grid: Grid) -> None:
        dataset = open_raster(coarse_path, "coarse LST")
        band = dataset.GetRasterBand(1)
        for y0 in range(0, grid.height, CONVERSION_BLOCK_PX):
            for x0 in range(0, grid.width, CONVERSION_BLOCK_PX):
                width, height = (
                    min(CONVERSION_BLOCK_PX, grid.width - x0),
                    min(CONVERSION_BLOCK_PX, grid.height - y0),
                )
                if np.isfinite(band.ReadAsArray(x0, y0, width, height)).any():
                    return
        raise InputError(
            f"LST {self.request.lst_path} does not overlap the guidance extent (or is masked wherever it "
            f"does); check that both cover the same area."
        )

    def fit(self, predictor: Sharpener, reader: _TileReader, tiles: list[Tile]) -> None:
        for done, tile in enumerate(tiles, 1):
            self.check_cancelled()
            window = reader.read(tile.rows.start, tile.rows.stop, tile.cols.start, tile.cols.stop)
            predictor.add_samples(
                coarse_samples(
                    window.lst, window.coarse_valid, window.guidance, window.guidance_valid, reader.scale
                )
            )
            self.progress(5 + 10 * done / len(tiles))
        self.log(predictor.finish_fit())

    def process_tile(
        self, tile: Tile, reader: _TileReader, predictor: Sharpener, blended, grid: Grid, scale: int
    ) -> None:
        rows, cols = tile.rows, tile.cols
        window = reader.read(rows.read_start, rows.read_stop, cols.read_start, cols.read_stop)
        fine_valid = window.guidance_valid & expand(window.coarse_valid, scale)
        # Tile cores partition the grid, so counting there counts every output pixel once.
        core = (
            slice((rows.start - rows.read_start) * scale, (rows.stop - rows.read_start) * scale),
            slice((cols.start - cols.read_start) * scale, (cols.stop - cols.read_start) * scale),
        )
        self.valid_px += int(fine_valid[core].sum())
        if window.coarse_valid.any():
            lst = fill_invalid(window.lst, window.coarse_valid, self.coarse_fill_steps)
            guidance = window.guidance
            if len(guidance) and not window.guidance_valid.all():
                steps = GUIDANCE_FILL_STEPS_COARSE_PX * scale
                guidance = np.stack([fill_invalid(band, window.guidance_valid, steps) for band in guidance])
            fine = predictor.predict(lst, window.coarse_valid, guidance, window.guidance_valid)
            low = high = None
            if isinstance(predictor, _NetworkSharpener):
                low, high = detail_bounds(lst, window.coarse_valid, scale)
                fine, clipped = bound_detail(fine, low, high)
                self.detail_clipped_px += int((clipped & fine_valid)[core].sum())
            if self.request.conserve_coarse_means:
                fine = conserve_coarse_means(
                    fine,
                    fine_valid,
                    window.lst,
                    window.coarse_valid,
                    scale,
                    fine_low_kelvin=low,
                    fine_high_kelvin=high,
                )
        else:
            fine = np.zeros(fine_valid.shape, np.float32)
        fine = np.where(fine_valid, fine, np.nan)

        r0, r1 = (rows.write_start - rows.read_start) * scale, (rows.write_stop - rows.read_start) * scale
        c0, c1 = (cols.write_start - cols.read_start) * scale, (cols.write_stop - cols.read_start) * scale
        weighted = fine[r0:r1, c0:c1] * expand(tile.weights(), scale)
        x0, y0 = cols.write_start * scale, rows.write_start * scale
        width, height = min(c1 - c0, grid.width - x0), min(r1 - r0, grid.height - y0)
        current = blended.ReadAsArray(x0, y0, width, height)
        blended.WriteArray((current + weighted[:height, :width]).astype(np.float32), x0, y0)

    def finish(
        self, blended, coarse_band, grid: Grid, scale: int, result: DownscaleResult, scratch: Path
    ) -> None:
        """Write the final GeoTIFF from the blended scratch raster, measuring coarse conservation."""
        request = self.request
        output = Path(request.output_path).resolve()
        staged = scratch / ("staged.tif" if request.cog else output.name)
        dataset = create_geotiff(staged, grid, OUTPUT_CREATION_OPTIONS, nodata=OUTPUT_NODATA)
        out_band = dataset.GetRasterBand(1)
        step = math.lcm(256, scale) * max(1, 512 // math.lcm(256, scale))
        worst = 0.0
        blended_band = blended.GetRasterBand(1)
        for y0 in range(0, grid.height, step):
            for x0 in range(0, grid.width, step):
                self.check_cancelled()
                width, height = min(step, grid.width - x0), min(step, grid.height - y0)
                fine = blended_band.ReadAsArray(x0, y0, width, height)
                coarse_w, coarse_h = math.ceil(width / scale), math.ceil(height / scale)
                coarse = coarse_band.ReadAsArray(x0 // scale, y0 // scale, coarse_w, coarse_h)
                padded = np.full((coarse_h * scale, coarse_w * scale), np.nan, np.float32)
                padded[:height, :width] = fine
                worst = max(
                    worst, max_abs_residual(padded, np.isfinite(padded), coarse, np.isfinite(coarse), scale)
                )
                values = kelvin_to(fine, request.output_units)
                out_band.WriteArray(
                    np.where(np.isfinite(values), values, OUTPUT_NODATA).astype(np.float32), x0, y0
                )
        result.max_conservation_residual_k = worst
        self.log(
            "Largest difference between the output averaged onto the coarse grid and the input LST: "
            f"{worst:.4f} K" + ("" if request.conserve_coarse_means else " (coarse-pixel conservation off)")
        )
        self.describe(dataset, out_band, result)
        dataset.FlushCache()
        dataset, out_band = None, None
        if request.cog:
            self.progress(95)
            translate_to_cog(str(staged), str(scratch / output.name))
            staged.unlink()
            staged = scratch / output.name
        self.check_cancelled()
        os.replace(staged, output)
        self.log(f"Wrote {output}")

    def describe(self, dataset, band, result: DownscaleResult) -> None:
        request = self.request
        celsius = request.output_units == "celsius"
        clipped_px, clipped_percent = result.detail_clipped_px, result.detail_clipped_percent
        band.SetDescription(f"Land surface temperature ({'degC' if celsius else 'K'})")
        band.SetUnitType("degC" if celsius else "K")
        dataset.SetMetadata(
            {
                "MOCOLSK_ENGINE_VERSION": __version__,
                "MOCOLSK_METHOD": result.method,
                "MOCOLSK_MODEL": result.model_name,
                "MOCOLSK_MODEL_VERSION": result.model_version,
                "MOCOLSK_SCALE": str(result.scale),
                "MOCOLSK_LST": f"{Path(request.lst_path).resolve()} band {request.lst_band}",
                "MOCOLSK_LST_UNITS": f"{result.lst_units} ({result.lst_units_reason})",
                "MOCOLSK_QA_MASK": str(Path(request.qa_mask_path).resolve()) if request.qa_mask_path else "",
                "MOCOLSK_QA_MASK_GROW_PX": str(request.qa_mask_grow_px),
                "MOCOLSK_GUIDANCE": ";".join(str(Path(p).resolve()) for p in request.guidance_paths),
                "MOCOLSK_GUIDANCE_BANDS": result.guidance_mapping,
                "MOCOLSK_WARP": result.warp_reason,
                "MOCOLSK_CONSERVE_COARSE_MEANS": "yes" if request.conserve_coarse_means else "no",
                "MOCOLSK_MAX_CONSERVATION_RESIDUAL_K": f"{result.max_conservation_residual_k:.6f}",
                "MOCOLSK_DETAIL_BOUND_CLIPPED_PX": "" if clipped_px is None else str(clipped_px),
                "MOCOLSK_DETAIL_BOUND_CLIPPED_PERCENT": ""
                if clipped_percent is None
                else f"{clipped_percent:.6f}",
                "MOCOLSK_OUTPUT_UNITS": request.output_units,
                "MOCOLSK_DEVICE": result.device,
            }
        )


@dataclass
class _Window:
    lst: np.ndarray  # (h, w) Kelvin, NaN where masked
    coarse_valid: np.ndarray
    guidance: np.ndarray  # (C, h*s, w*s) in the order the method needs
    guidance_valid: np.ndarray  # (h*s, w*s), False also past the raster's edge


class _TileReader:
    """Reads aligned coarse LST and fine guidance windows given in coarse pixels."""

    def __init__(self, guidance: _Guidance, mapping: BandMapping, coarse_band, scale: int):
        self.guidance = guidance
        self.mapping = mapping
        self.coarse_band = coarse_band
        self.scale = scale
        sources = {i for src in mapping.sources for i in (src if isinstance(src, tuple) else (src,))}
        # Methods that use no guidance values (bicubic) still honour every band's nodata.
        self.used = sorted(sources) if sources else list(range(len(guidance.bands)))

    def read(self, row0: int, row1: int, col0: int, col1: int) -> _Window:
        s = self.scale
        lst = self.coarse_band.ReadAsArray(col0, row0, col1 - col0, row1 - row0).astype(np.float32)
        coarse_valid = np.isfinite(lst)
        height, width = (row1 - row0) * s, (col1 - col0) * s
        stack = np.zeros((len(self.guidance.bands), height, width), np.float32)
        valid = np.ones((height, width), bool)
        for i in self.used:
            values, inside = read_window(self.guidance.bands[i], col0 * s, row0 * s, width, height)
            stack[i] = values
            valid &= inside & valid_mask(values, self.guidance.nodata[i])
        guidance, guidance_valid = self.mapping.compose(stack, valid)
        return _Window(lst, coarse_valid, guidance, guidance_valid)


class _NetworkSharpener(Sharpener):
    """MoCoLSK through the engine's Downscaler, with the tile interface of the classic methods."""

    name = "mocolsk"

    def __init__(self, downscaler):
        super().__init__(downscaler.scale)
        self.downscaler = downscaler

    def predict(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        return self.downscaler.predict_kelvin(lst_coarse, guidance)

"""Scoring what users run: a method applied to an in-memory scene view through the plugin's pipeline.

The protocol's coarse input and guidance are written as GeoTIFFs on a projected grid and
``engine.pipeline.downscale_scene`` runs on them exactly as ``python -m engine downscale``
would (unit checks, tiles, halo, fill, detail bound, conservation, blending), so a figure in a
card is a figure of the product, not of a re-implementation of its tile step.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.grids import Grid
from engine.pipeline import DownscaleRequest, downscale_scene
from engine.raster import epsg_wkt, gdal_session, read_stack_values, write_stack

from .datasets import Sample

# A UTM zone for the written views: the pipeline needs a projected CRS in metres, any one will do.
VIEW_EPSG = 32633
VIEW_ORIGIN_M = (300000.0, 5000000.0)
NODATA = -9999.0


@dataclass(frozen=True)
class PipelineMethod:
    """A method as the plugin offers it: ``method`` (``mocolsk``, ``bicubic``, ...), an optional
    model package path or bundled name, and any other ``DownscaleRequest`` field."""

    method: str
    model: str | None = None
    options: dict = field(default_factory=dict)
    # Also write the uncertainty layer and return it.
    uncertainty: bool = False

    def request(self, lst_path: Path, guidance_path: Path, output_path: Path) -> DownscaleRequest:
        return DownscaleRequest(
            lst_path=str(lst_path),
            guidance_paths=[str(guidance_path)],
            output_path=str(output_path),
            lst_units="kelvin",
            method=self.method,
            model=self.model,
            threads=self.options.get("threads"),
            uncertainty_path=str(output_path.with_name("sigma.tif")) if self.uncertainty else None,
            **{k: v for k, v in self.options.items() if k != "threads"},
        )


@dataclass(frozen=True)
class PipelineOutput:
    """What a run wrote: the fine LST (K) and, when asked, the uncertainty (K); NaN where nodata."""

    fine_kelvin: np.ndarray
    sigma_kelvin: np.ndarray | None
    result: object


def view_grid(shape: tuple[int, int], pixel_size_m: float) -> Grid:
    """A north-up projected grid of ``shape`` pixels of ``pixel_size_m``."""
    x0, y0 = VIEW_ORIGIN_M
    return Grid(epsg_wkt(VIEW_EPSG), (x0, pixel_size_m, 0.0, y0, 0.0, -pixel_size_m), shape[1], shape[0])


def write_sample(
    sample: Sample, band_names: tuple[str, ...], pixel_size_m: float, folder: Path, delivered: bool = False
) -> tuple[Path, Path]:
    """``sample``'s coarse LST (K) and fine guidance as GeoTIFFs in ``folder``; NaN becomes nodata.
    With ``delivered`` the LST is the fine band itself, as a product delivers it on the guidance grid."""
    scale = sample.fine_kelvin.shape[0] // sample.coarse_kelvin.shape[0]
    fine_grid = view_grid(sample.fine_kelvin.shape, pixel_size_m)
    coarse_grid = view_grid(sample.coarse_kelvin.shape, pixel_size_m * scale)
    lst_grid, lst_kelvin = (
        (fine_grid, sample.fine_kelvin) if delivered else (coarse_grid, sample.coarse_kelvin)
    )
    lst = write_stack(
        folder / "lst_kelvin.tif", lst_grid, np.nan_to_num(lst_kelvin, nan=NODATA), nodata=NODATA
    )
    guidance = write_stack(
        folder / "guidance.tif",
        fine_grid,
        np.nan_to_num(sample.guidance, nan=NODATA),
        names=band_names,
        nodata=NODATA,
    )
    return lst, guidance


def run_pipeline(
    spec: PipelineMethod,
    sample: Sample,
    band_names: tuple[str, ...],
    pixel_size_m: float,
    delivered: bool = False,
) -> PipelineOutput:
    """What the pipeline writes for ``sample``, read back.

    With ``delivered`` the pipeline gets the fine band as delivered on the guidance grid and is told
    that the sensor saw the sample's coarse pixel (Native LST pixel), so it averages the band onto
    the coarse grid itself and runs as it does for a user's ``ST_B10``."""
    if delivered:
        scale = sample.fine_kelvin.shape[0] // sample.coarse_kelvin.shape[0]
        spec = replace(spec, options={**spec.options, "native_pixel_m": scale * pixel_size_m})
    with tempfile.TemporaryDirectory(prefix="mocolsk-eval-") as scratch:
        folder = Path(scratch)
        lst, guidance = write_sample(sample, band_names, pixel_size_m, folder, delivered)
        result = downscale_scene(spec.request(lst, guidance, folder / "out.tif"))
        with gdal_session():
            values, _, _ = read_stack_values(folder / "out.tif")
            sigma = read_stack_values(folder / "sigma.tif")[0][0] if spec.uncertainty else None
        return PipelineOutput(values[0].astype(np.float32), sigma, result)

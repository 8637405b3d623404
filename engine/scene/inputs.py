"""Opening the inputs: the guidance (which defines the output grid), the LST and the QA mask."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..grids import Grid, require_north_up, same_shape_and_transform
from ..guidance_values import ReflectanceEncoding
from ..masks import grow_mask, qa_invalid
from ..raster import (
    band_nodata,
    band_scaling,
    grid_of,
    has_valid_pixel,
    open_raster,
    pixel_size_in,
    require_value_band,
    same_crs,
    sample_values,
    valid_mask,
)
from .context import RunContext
from .request import DownscaleRequest

# The coarse pixel must be square in guidance pixels within this relative tolerance.
MAX_PIXEL_ASPECT_MISMATCH = 0.05
# Values this far from zero are float fill values (-3.4e38 is float32's lowest), never data.
FILL_MAGNITUDE = 1e30


@dataclass
class Guidance:
    """The guidance rasters' bands, in the order given, on their shared grid."""

    datasets: list
    bands: list  # gdal.Band per input band, in the order given
    nodata: list
    names: list  # band name per input band (None when unnamed)
    grid: Grid


@dataclass
class LstInput:
    """The opened LST raster and its grid (the band is chosen when it is converted)."""

    dataset: object
    grid: Grid
    layer: str


@dataclass
class QaMask:
    """An opened QA mask on the LST grid, read as ``kind`` and grown by ``grow_px`` LST pixels."""

    dataset: object
    band: object
    kind: str
    grow_px: int

    def read_invalid(self, col: int, row: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """The mask's unusable pixels in a window, and them grown by ``grow_px``.

        The window is read with a margin of the growth so that clouds just outside it grow into it.
        """
        left, top = max(col - self.grow_px, 0), max(row - self.grow_px, 0)
        right = min(col + width + self.grow_px, self.dataset.RasterXSize)
        bottom = min(row + height + self.grow_px, self.dataset.RasterYSize)
        invalid = qa_invalid(self.band.ReadAsArray(left, top, right - left, bottom - top), self.kind)
        inner = (slice(row - top, row - top + height), slice(col - left, col - left + width))
        return invalid[inner], grow_mask(invalid, self.grow_px)[inner]


def open_guidance(request: DownscaleRequest) -> Guidance:
    """Every band of every guidance raster; all rasters must share one north-up grid."""
    datasets, bands, nodata, names = [], [], [], []
    grid = None
    for path in request.guidance_paths:
        layer = f"Guidance {path}"
        dataset = open_raster(path, layer)
        this_grid = grid_of(dataset, layer)
        require_north_up(this_grid, layer)
        if grid is None:
            grid = this_grid
        elif not (same_crs(grid.crs_wkt, this_grid.crs_wkt) and same_shape_and_transform(grid, this_grid)):
            raise InputError(
                f"{layer} is not on the grid of {request.guidance_paths[0]} "
                f"({this_grid.width}x{this_grid.height} "
                f"vs {grid.width}x{grid.height} px, or another origin, pixel size or CRS); resample all "
                f"guidance rasters onto one grid (e.g. gdalwarp -tr/-te or a VRT)."
            )
        datasets.append(dataset)
        for index in range(1, dataset.RasterCount + 1):
            band = dataset.GetRasterBand(index)
            require_usable_guidance_band(band, layer, f"band {index} ({band.GetDescription() or 'unnamed'})")
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
    return Guidance(datasets, bands, nodata, names, grid)


def guidance_band_scalings(guidance: Guidance) -> dict[int, ReflectanceEncoding]:
    """Input band index -> the band's own scale and offset (GDAL's GetScale/GetOffset, which QGIS applies
    when it shows the layer), for the bands that have one."""
    scalings = {}
    for index, band in enumerate(guidance.bands):
        scaling = band_scaling(band)
        if scaling is not None:
            label = guidance.names[index] or f"band {index + 1}"
            reason = f"{label}: the band's scale {scaling[0]:g} and offset {scaling[1]:g}, as QGIS shows it"
            scalings[index] = ReflectanceEncoding("band_scale_offset", scaling[0], scaling[1], reason)
    return scalings


def require_usable_guidance_band(band, layer: str, what: str) -> None:
    """Refuse a guidance band that would silently empty or spoil the output: one without a single valid
    pixel (all nodata or NaN), one with float fill values but no nodata value, or one that is not
    measured values (complex, paletted, masked)."""
    require_value_band(band, layer, what)
    nodata = band_nodata(band)
    sample = sample_values(band)
    valid = valid_mask(sample, nodata)
    if not valid.any() and not has_valid_pixel(band):
        nodata_text = "nodata" if nodata is None else f"nodata {nodata:g}"
        raise InputError(
            f"{layer}: {what} has no valid pixel (all {nodata_text} or NaN), so every output pixel would be "
            "nodata; give the right band or file, fix its nodata value, or leave that band out."
        )
    fill = sample[valid][np.abs(sample[valid].astype(np.float64)) >= FILL_MAGNITUDE]
    if fill.size:
        nodata_text = "no nodata value is set" if nodata is None else f"its nodata value is {nodata:g}"
        raise InputError(
            f"{layer}: {what} holds values of {float(fill[0]):.3g}, a fill value, but {nodata_text}; set the "
            f"band's nodata to {float(fill[0]):.8g} (gdal_edit.py -a_nodata, or the layer's Properties > "
            "Transparency in QGIS, then save a copy) and use that file."
        )


def open_lst(request: DownscaleRequest) -> LstInput:
    layer = f"LST {request.lst_path}"
    dataset = open_raster(request.lst_path, layer)
    grid = grid_of(dataset, layer)
    require_north_up(grid, layer)
    return LstInput(dataset, grid, layer)


def resolution_ratio(lst: LstInput, guidance_grid: Grid) -> float:
    """How many guidance pixels one LST pixel spans (measured in the guidance CRS)."""
    width, height = pixel_size_in(lst.grid, guidance_grid)
    ratio_x, ratio_y = width / guidance_grid.pixel_width, height / guidance_grid.pixel_height
    if abs(ratio_x / ratio_y - 1.0) > MAX_PIXEL_ASPECT_MISMATCH:
        raise InputError(
            f"{lst.layer}: its pixels are {ratio_x:.3g} x {ratio_y:.3g} guidance pixels; "
            f"the coarse pixel must be square in guidance pixels. Resample the LST first."
        )
    return (ratio_x + ratio_y) / 2


def open_qa_mask(request: DownscaleRequest, lst_grid: Grid, context: RunContext) -> QaMask | None:
    """The QA mask, checked to be on the LST's grid, with its kind decided; None without one."""
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
        context.log(
            f"QA mask read as {kind} "
            f"({'the name says QA_PIXEL' if kind != 'nonzero' else 'any non-zero pixel is masked'})"
        )
    return QaMask(dataset, dataset.GetRasterBand(1), kind, request.qa_mask_grow_px)

"""Opening the inputs: the guidance (which defines the output grid), the LST and the QA mask."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..auto_model import PixelRatio, measure_pixel_ratio
from ..errors import InputError
from ..grids import SCALE_TOLERANCE, Grid, require_north_up, same_shape_and_transform
from ..guidance_values import ReflectanceEncoding
from ..masks import grow_mask, qa_invalid
from ..raster import (
    band_count,
    band_description,
    band_nodata,
    band_of,
    band_scaling,
    grid_of,
    has_valid_pixel,
    open_raster,
    raster_size,
    read_metadata,
    read_window,
    require_value_band,
    same_crs,
    sample_bands,
    valid_mask,
)
from ..sensors import native_lst_pixel
from ..tiling import Block
from .context import RunContext
from .request import DownscaleRequest

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

    path: str
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
        raster_width, raster_height = raster_size(self.dataset)
        right = min(col + width + self.grow_px, raster_width)
        bottom = min(row + height + self.grow_px, raster_height)
        invalid = qa_invalid(read_window(self.band, Block(left, top, right - left, bottom - top)), self.kind)
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
        numbers = list(range(1, band_count(dataset) + 1))
        here = [band_of(dataset, index) for index in numbers]
        whats = [
            f"band {index} ({band_description(band) or 'unnamed'})" for index, band in zip(numbers, here)
        ]
        for band, what in zip(here, whats):
            require_value_band(band, layer, what)
        for band, what, sample in zip(here, whats, sample_bands(dataset, numbers)):
            require_usable_guidance_band(band, layer, what, sample)
            bands.append(band)
            nodata.append(band_nodata(band))
            names.append(band_description(band) or None)
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


def require_usable_guidance_band(band, layer: str, what: str, sample: np.ndarray) -> None:
    """Refuse a guidance band of measured values (`require_value_band`) that would silently empty or spoil
    the output: one without a single valid pixel (all nodata or NaN), or one with float fill values but no
    nodata value; ``sample`` is the band's `sample_values`."""
    nodata = band_nodata(band)
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


def open_lst(path: str) -> LstInput:
    layer = f"LST {path}"
    dataset = open_raster(path, layer)
    grid = grid_of(dataset, layer)
    require_north_up(grid, layer)
    return LstInput(path, dataset, grid, layer)


def lst_pixel_ratio(
    request: DownscaleRequest, lst: LstInput, guidance_grid: Grid, context: RunContext
) -> PixelRatio:
    """The LST's pixel ratio (``auto_model.measure_pixel_ratio``), said in the log when its sensor's native
    pixel stands in; an error when the LST is on a grid as fine as the guidance and that pixel is unknown."""
    pixels = measure_pixel_ratio(lst.grid, guidance_grid, native_pixel(lst, request.native_pixel_m))
    if pixels.native_note:
        context.log(pixels.native_note)
    if pixels.native_reason:
        context.log(
            f"{lst.layer}: {pixels.native_reason}; it is averaged onto the coarse grid of the scale that fits "
            f"{pixels.native_pixel_m:g} m"
        )
    if pixels.ratio < 1.0 + SCALE_TOLERANCE:
        raise InputError(
            f"{lst.layer}: its pixel is {pixels.measured_ratio:.3g} times the guidance pixel ({pixels.lst_pixel} / "
            f"{pixels.guidance_pixel}), so it is on a grid as fine as the guidance, and the pixel its "
            "sensor saw is unknown (no Landsat product name or MTL beside it); give that pixel as Native LST "
            "pixel (m) (CLI --native-pixel-m), e.g. 100 for Landsat 8/9 TIRS, 60 for ETM+, 120 for TM, or give "
            "the LST at its native resolution."
        )
    return pixels


def native_pixel(lst: LstInput, given_m: float | None) -> tuple[float, str] | None:
    """The sensor's native pixel in metres and how it is known (``given_m``, else the product name, metadata
    or MTL), or None when unknown."""
    if given_m:
        return float(given_m), f"the native LST pixel given is {given_m:g} m"
    metadata = {**read_metadata(lst.dataset), **read_metadata(lst.dataset, "IMD")}
    return native_lst_pixel(lst.path, metadata)


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
        named = f"{Path(request.qa_mask_path).name} {band_description(band_of(dataset))}".upper()
        kind, why = "nonzero", "any non-zero pixel is masked"
        if "QA_PIXEL" in named:
            kind, why = "landsat_qa_pixel", "the name says QA_PIXEL"
        elif re.search(r"(?<![A-Z0-9])QC(_DAY|_NIGHT)?(?![A-Z0-9])", named):
            kind, why = "modis_qc", "the name says MODIS/VIIRS QC; masked where LST was not produced"
        context.log(f"QA mask read as {kind} ({why})")
    return QaMask(dataset, band_of(dataset), kind, request.qa_mask_grow_px)

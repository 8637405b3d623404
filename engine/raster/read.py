"""Opening rasters and reading them: grids, bands, windows, samples and whole bands as numpy arrays,
with the checks that refuse a band the engine cannot read as measured values."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..grids import Grid
from ..tiling import Block
from .session import gdal, require_gdal


def unreadable_reason(path: str | os.PathLike) -> str:
    """Why ``path`` cannot be opened as a raster, in words: missing, empty or not a raster."""
    path = Path(path)
    if not path.exists():
        return f"file {path} does not exist"
    if path.stat().st_size == 0:
        return f"file {path} is empty (0 bytes), not a raster; copy or download it again"
    return f"GDAL cannot read {path} as a raster (not a raster format, or damaged)"


def is_plain_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a file, not a GDAL virtual path (/vsizip/...) or a driver's connection string
    such as a subdataset (NETCDF:"file.nc":lst, HDF4_EOS:EOS_GRID:...), which QGIS layers also use."""
    text = str(path)
    return not text.startswith("/vsi") and not re.match(r"[A-Za-z][A-Za-z0-9_]+:", text)


def open_raster(path: str | os.PathLike, layer: str) -> gdal.Dataset:
    """Open a raster read-only, or say which layer could not be read and why."""
    require_gdal()
    file = subdataset_file(path) or path
    if is_plain_path(file) and (
        not Path(file).exists() or (Path(file).is_file() and Path(file).stat().st_size == 0)
    ):
        raise InputError(f"{layer}: {unreadable_reason(file)}.")
    try:
        dataset = gdal.Open(str(path), gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise InputError(
            f"{layer}: GDAL cannot read {path} ({exc}); give a raster file (GeoTIFF, VRT, ...)."
        ) from exc
    if dataset is None:
        raise InputError(f"{layer}: GDAL cannot read {path}; give a raster file (GeoTIFF, VRT, ...).")
    subdatasets = [
        name for key, name in (dataset.GetMetadata("SUBDATASETS") or {}).items() if key.endswith("_NAME")
    ]
    if dataset.RasterCount == 0 and subdatasets:
        raise InputError(
            f"{layer}: {Path(str(path)).name} holds {len(subdatasets)} subdatasets, not one raster; give the one "
            f"to use (in QGIS, add it as a layer and choose it), e.g. {'; '.join(subdatasets[:4])}."
        )
    return dataset


def subdataset_file(path: str | os.PathLike) -> str | None:
    """The file inside a GDAL subdataset name (HDF4_EOS:EOS_GRID:"f.hdf":grid:field, NETCDF:"f.nc":LST,
    HDF5:"f.h5"://LST), or None for a plain path."""
    match = re.match(r'^[A-Z][A-Z0-9_]+:(?:[A-Z0-9_]+:)?"([^"]+)"', str(path))
    return match.group(1) if match else None


def open_scratch_for_update(path: str | os.PathLike) -> gdal.Dataset:
    """Open a scratch raster the engine wrote, for rewriting it in place."""
    require_gdal()
    return gdal.Open(str(path), gdal.GA_Update)


def grid_of(dataset: gdal.Dataset, layer: str) -> Grid:
    wkt = dataset.GetProjection()
    if not wkt and dataset.GetGCPCount():
        raise InputError(
            f"{layer} is georeferenced by {dataset.GetGCPCount()} ground control points, not on a grid; warp it "
            "onto a grid first (gdalwarp IN OUT.tif, or QGIS: Raster > Projections > Warp) and use that file."
        )
    if wkt and dataset.GetGeoTransform(can_return_null=True) is None:
        raise InputError(
            f"{layer} has a coordinate reference system but no geotransform, so its pixels have no position; "
            "georeference it (QGIS: Raster > Georeferencer, or gdal_translate -a_ullr) and use that file."
        )
    if not wkt:
        raise InputError(
            f"{layer} has no coordinate reference system; assign one (e.g. gdal_edit.py -a_srs EPSG:...)."
        )
    return Grid(wkt, tuple(dataset.GetGeoTransform()), dataset.RasterXSize, dataset.RasterYSize)


def dataset_grid(dataset: gdal.Dataset) -> Grid:
    """A dataset's grid as it is, CRS or not (``grid_of`` refuses a raster without one)."""
    return Grid(
        dataset.GetProjection(), tuple(dataset.GetGeoTransform()), dataset.RasterXSize, dataset.RasterYSize
    )


def get_band(dataset: gdal.Dataset, index: int, layer: str) -> gdal.Band:
    if not 1 <= index <= dataset.RasterCount:
        raise InputError(f"{layer} has {dataset.RasterCount} band(s); band {index} does not exist.")
    return dataset.GetRasterBand(index)


def band_of(dataset: gdal.Dataset, index: int = 1) -> gdal.Band:
    """Band ``index`` (1-based) of a raster the engine made or already checked (``get_band`` checks a band
    number a user gave)."""
    return dataset.GetRasterBand(index)


def band_count(dataset: gdal.Dataset) -> int:
    return dataset.RasterCount


def raster_size(dataset: gdal.Dataset) -> tuple[int, int]:
    """The raster's (width, height) in pixels."""
    return dataset.RasterXSize, dataset.RasterYSize


def band_description(band: gdal.Band) -> str:
    """The band's description (its name in QGIS), empty when it has none."""
    return band.GetDescription()


def read_metadata(dataset: gdal.Dataset, domain: str = "") -> dict[str, str]:
    """The raster's metadata in ``domain`` (the default domain, "IMD", ...), empty when it has none."""
    return dataset.GetMetadata(domain) or {}


def read_window(band: gdal.Band, window: Block) -> np.ndarray:
    """One window of a band, as stored (no nodata or scaling applied): the only pixels read."""
    return band.ReadAsArray(window.x0, window.y0, window.width, window.height)


def band_nodata(band: gdal.Band) -> float | None:
    return band.GetNoDataValue()


def valid_mask(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """Finite pixels that are not the band's nodata value."""
    valid = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= values != nodata
    return valid


def band_scaling(band: gdal.Band) -> tuple[float, float] | None:
    """The band's (scale, offset) when it has one (value = stored x scale + offset, GDAL's GetScale and
    GetOffset, which QGIS applies when it shows the layer); None for values stored as they are."""
    scale, offset = band.GetScale(), band.GetOffset()
    scale = 1.0 if scale is None else float(scale)
    offset = 0.0 if offset is None else float(offset)
    return None if (scale, offset) == (1.0, 0.0) else (scale, offset)


def require_value_band(band: gdal.Band, layer: str, what: str) -> None:
    """Refuse a band the engine cannot read as measured values: complex numbers, a paletted (colour-table)
    band of class numbers, or a band whose valid pixels are set by a mask (.msk file, internal mask or
    alpha band), which the engine does not read."""
    if gdal.DataTypeIsComplex(band.DataType):
        raise InputError(
            f"{layer}: {what} holds complex numbers ({gdal.GetDataTypeName(band.DataType)}); give a real-valued "
            "band (e.g. gdal_translate -ot Float32 of its amplitude)."
        )
    if band.GetColorTable() is not None or band.GetColorInterpretation() == gdal.GCI_PaletteIndex:
        raise InputError(
            f"{layer}: {what} is a paletted band (a colour table over class numbers), not measured values; "
            "give the raster of values, not a classified or rendered map."
        )
    if band.GetMaskFlags() & gdal.GMF_PER_DATASET:
        source = (
            "an alpha band" if band.GetMaskFlags() & gdal.GMF_ALPHA else "a mask (.msk file or internal mask)"
        )
        raise InputError(
            f"{layer}: {what}'s valid pixels are set by {source}, which the engine does not read; turn the "
            "mask into a nodata value first, e.g. gdalwarp -dstnodata -9999 IN.tif OUT.tif (QGIS: Raster > "
            "Projections > Warp with a nodata value for the output), and use that file."
        )


def read_bands_window(
    dataset: gdal.Dataset, band_numbers: list[int], x0: int, y0: int, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window of several bands (1-based) that may reach past the right/bottom edge.

    Returns the (bands, height, width) values, edge-replicated past the raster, and a mask of
    pixels inside it. One read for all bands: a pixel-interleaved file's blocks are then
    decoded once, not once per band.
    """
    inside_w = max(0, min(width, dataset.RasterXSize - x0))
    inside_h = max(0, min(height, dataset.RasterYSize - y0))
    values = dataset.ReadAsArray(x0, y0, inside_w, inside_h, band_list=band_numbers)
    values = values.reshape(len(band_numbers), inside_h, inside_w)
    inside = np.ones((inside_h, inside_w), bool)
    pad = ((0, height - inside_h), (0, width - inside_w))
    if pad != ((0, 0), (0, 0)):
        values = np.pad(values, ((0, 0), *pad), mode="edge")
        inside = np.pad(inside, pad, constant_values=False)
    return values, inside


SAMPLE_WINDOW_PX = 16


def sample_values(band: gdal.Band, max_pixels: int = 1 << 16) -> np.ndarray:
    """About ``max_pixels`` values of a band for statistics: the whole band when it is small, else a mosaic
    of small full-resolution windows spread evenly over it.

    Full resolution, because a decimated read takes the band's overviews (pyramids), which can be stale or
    averaged over nodata; windows, so that only a few blocks of a large file are decoded.
    """
    return _sample_mosaic(band.XSize, band.YSize, max_pixels, band.ReadAsArray)


def sample_bands(dataset: gdal.Dataset, band_numbers: list[int], max_pixels: int = 1 << 16) -> np.ndarray:
    """`sample_values` of several bands (1-based) of one dataset, shaped (bands, ...): the same windows,
    each read once for all bands, so that a pixel-interleaved file's blocks are decoded once, not once
    per band (8 bands of a 2048 px stack under the engine's block cache: 0.36 s to 0.10 s). Bands of
    different data types (a VRT) come in a type that holds them all."""

    def read(*window: int) -> np.ndarray:
        return dataset.ReadAsArray(*window, band_list=band_numbers).reshape(len(band_numbers), *window[:1:-1])

    return _sample_mosaic(dataset.RasterXSize, dataset.RasterYSize, max_pixels, read)


def _sample_mosaic(x_size: int, y_size: int, max_pixels: int, read) -> np.ndarray:
    """The whole raster when small, else a mosaic of windows read by ``read(x0, y0, width, height)``."""
    if x_size * y_size <= max_pixels:
        return read(0, 0, x_size, y_size)
    side = max(1, int(math.sqrt(max_pixels)) // SAMPLE_WINDOW_PX)
    width, height = min(SAMPLE_WINDOW_PX, x_size), min(SAMPLE_WINDOW_PX, y_size)
    cols = np.linspace(0, x_size - width, side).astype(int)
    rows = np.linspace(0, y_size - height, side).astype(int)
    return np.block([[read(int(c), int(r), width, height) for c in cols] for r in rows])


def has_valid_pixel(band: gdal.Band, block_px: int = 1024) -> bool:
    """Whether any pixel of the band is valid (not nodata, not NaN), reading it block by block."""
    nodata = band_nodata(band)
    for y0 in range(0, band.YSize, block_px):
        for x0 in range(0, band.XSize, block_px):
            width, height = min(block_px, band.XSize - x0), min(block_px, band.YSize - y0)
            if valid_mask(band.ReadAsArray(x0, y0, width, height), nodata).any():
                return True
    return False


def valid_values(band: gdal.Band, values: np.ndarray) -> np.ndarray:
    """The valid ``values`` (read from ``band``) as QGIS shows them: nodata dropped, scale and offset
    applied."""
    kept = values[valid_mask(values, band_nodata(band))].astype(np.float64)
    scaling = band_scaling(band)
    return kept if scaling is None else kept * scaling[0] + scaling[1]


def value_range(band: gdal.Band) -> tuple[float, float] | None:
    """The band's lowest and highest valid value over every pixel, scale and offset applied (a full read);
    None when GDAL cannot tell."""
    try:
        low, high = band.ComputeRasterMinMax(False)
    except RuntimeError:
        return None
    scale, offset = band_scaling(band) or (1.0, 0.0)
    return tuple(sorted((low * scale + offset, high * scale + offset)))


def band_as_float(band: gdal.Band) -> np.ndarray:
    """A whole band as float32 with its nodata value as NaN."""
    raw = band.ReadAsArray()
    values = raw.astype(np.float32)
    nodata = band_nodata(band)
    if nodata is not None:
        values[raw == nodata] = np.nan
    return values


def read_band_values(
    path: str | os.PathLike, band_index: int = 1, layer: str = ""
) -> tuple[np.ndarray, Grid]:
    """One band of a raster as float32 with nodata as NaN, and the raster's grid."""
    layer = layer or f"Raster {path}"
    dataset = open_raster(path, layer)
    return band_as_float(get_band(dataset, band_index, layer)), dataset_grid(dataset)


def read_stack_values(path: str | os.PathLike, layer: str = "") -> tuple[np.ndarray, Grid, tuple[str, ...]]:
    """All bands of a raster as (C, H, W) float32 with nodata as NaN, its grid and band descriptions."""
    dataset = open_raster(path, layer or f"Raster {path}")
    bands = [dataset.GetRasterBand(index) for index in range(1, dataset.RasterCount + 1)]
    stack = np.stack([band_as_float(band) for band in bands])
    return stack, dataset_grid(dataset), tuple(band.GetDescription() for band in bands)

"""GDAL raster I/O: open, describe, read windows, warp and write GeoTIFFs.

The only engine module that talks to GDAL directly; everything it returns is numpy arrays
and small dataclasses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import EngineError, InputError, OutputError
from .grids import Grid
from .units import (
    LstUnits,
    UnitHints,
    detect_lst_units,
    lst_units,
    require_temperature_values,
)

try:
    from osgeo import gdal, osr
except ImportError:  # pragma: no cover - exercised only where GDAL is missing
    gdal = None
    osr = None

# Bounds GDAL's block cache so that memory does not grow with the scene size.
GDAL_CACHE_BYTES = 32 * 1024 * 1024
OUTPUT_BLOCK_PX = 256
OUTPUT_CREATION_OPTIONS = (
    "TILED=YES",
    f"BLOCKXSIZE={OUTPUT_BLOCK_PX}",
    f"BLOCKYSIZE={OUTPUT_BLOCK_PX}",
    "COMPRESS=DEFLATE",
    "PREDICTOR=3",
    "NUM_THREADS=ALL_CPUS",
    "BIGTIFF=IF_SAFER",
)
SCRATCH_CREATION_OPTIONS = (
    "TILED=YES",
    f"BLOCKXSIZE={OUTPUT_BLOCK_PX}",
    f"BLOCKYSIZE={OUTPUT_BLOCK_PX}",
    "BIGTIFF=IF_SAFER",
    "SPARSE_OK=TRUE",
)


def require_gdal() -> None:
    if gdal is None:
        raise InputError(
            "GDAL's Python bindings (osgeo) are not installed; install GDAL (e.g. `apt install "
            "python3-gdal`)."
        )


NO_SPACE_MARKERS = ("no space left on device", "disk full", "not enough space on the disk")
PERMISSION_MARKERS = ("permission denied", "read-only file system", "access is denied")
RECENT_FAILURES = 32


class _FailureLog:
    """GDAL failures (CE_Failure and worse) reported under a ``gdal_session``, counted and the latest kept.

    GDAL reports "No space left on device" once and then raises a vaguer error ("Write error at
    scanline ..."), and it fails while closing a dataset without raising at all; the log keeps both.
    """

    def __init__(self) -> None:
        self.count = 0
        self.recent: list[str] = []

    def __call__(self, error_class: int, _error_number: int, message: str) -> None:
        if error_class >= gdal.CE_Failure:
            self.count += 1
            self.recent = [*self.recent[-(RECENT_FAILURES - 1) :], str(message)]

    def since(self, count: int) -> list[str]:
        return self.recent[-min(self.count - count, len(self.recent)) :] if self.count > count else []


GDAL_FAILURES = _FailureLog()


@contextlib.contextmanager
def gdal_session(cache_bytes: int = GDAL_CACHE_BYTES) -> Iterator[None]:
    """GDAL with exceptions on, a bounded block cache and its failures logged, restored afterwards."""
    require_gdal()
    previous_cache = gdal.GetCacheMax()
    previous_exceptions = gdal.GetUseExceptions()
    gdal.UseExceptions()
    gdal.SetCacheMax(cache_bytes)
    try:
        with gdal_failures_logged():
            yield
    finally:
        gdal.SetCacheMax(previous_cache)
        if not previous_exceptions:
            gdal.DontUseExceptions()


def _free_space_label(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free"
    except OSError:
        return "free space unknown"


def io_failure(
    messages: list[str],
    error_number: int | None,
    file_name: str | None,
    inputs: dict[str, str],
    output_path: str | os.PathLike,
) -> EngineError:
    """The engine's error for a failed read or write: the file at fault, what happened and the fix.

    ``messages`` are GDAL's or the OS's, oldest first; ``inputs`` maps input paths to their layer
    labels. A failure that names no input concerns the output (or its scratch files beside it).
    """
    text = " ".join(messages)
    lower = text.lower()
    output = Path(output_path).resolve()
    folder = output.parent
    if error_number == errno.ENOSPC or any(m in lower for m in NO_SPACE_MARKERS):
        return OutputError(
            f"No space left on the disk of the output folder {folder} ({_free_space_label(folder)}) while "
            f"writing {output.name}; nothing was written. Free some space there, or choose an output in "
            "another folder."
        )
    denied = error_number in (errno.EACCES, errno.EPERM, errno.EROFS) or any(
        m in lower for m in PERMISSION_MARKERS
    )
    culprit = next(
        (
            path
            for path in inputs
            if (file_name and Path(file_name).resolve() == Path(path).resolve())
            or path in text
            or Path(path).name in text
        ),
        None,
    )
    last = messages[-1].strip() if messages else "unknown error"
    if culprit is not None:
        layer = inputs[culprit]
        if denied:
            return InputError(
                f"{layer}: permission denied reading {culprit}; make the file readable for you, or copy it "
                "to a folder you own and use the copy."
            )
        return InputError(
            f"{layer}: GDAL could not read {culprit} ({last}); the file is damaged or truncated (e.g. an "
            "interrupted download or copy). Download or export it again, and check that it opens in QGIS."
        )
    if denied:
        return OutputError(
            f"Permission denied writing {output.name} in the output folder {folder}; choose a folder you can "
            "write to."
        )
    return OutputError(
        f"Writing {output.name} in {folder} failed ({last}); nothing was written. Check that the disk is "
        "healthy and the folder writable, or choose another output folder."
    )


@contextlib.contextmanager
def io_errors(inputs: dict[str, str], output_path: str | os.PathLike) -> Iterator[None]:
    """GDAL and file-system failures inside the block become ``io_failure``'s engine errors.

    Use it inside ``gdal_session`` around everything that reads the inputs or writes the output.
    Other errors pass through unchanged.
    """
    start = GDAL_FAILURES.count
    try:
        yield
    except EngineError:
        raise
    except OSError as exc:
        messages = [*GDAL_FAILURES.since(start), exc.strerror or str(exc)]
        raise io_failure(messages, exc.errno, exc.filename, inputs, output_path) from exc
    except RuntimeError as exc:
        reported = GDAL_FAILURES.since(start)
        # GDAL raises with the message it reported last; other RuntimeErrors are not I/O failures.
        if not any(message and message in str(exc) for message in reported):
            raise
        raise io_failure([*reported, str(exc)], None, None, inputs, output_path) from exc


@contextlib.contextmanager
def gdal_failures_logged() -> Iterator[None]:
    """Send this thread's GDAL failures to the session's log, for the block only. GDAL's error handlers
    are per thread: ``gdal_session`` uses this for its own thread, and a worker thread wraps each read
    it does under the session (so it leaves no handler behind when it ends)."""
    gdal.PushErrorHandler(GDAL_FAILURES)
    try:
        yield
    finally:
        gdal.PopErrorHandler()


def gdal_failure_mark() -> int:
    """A mark for ``require_no_gdal_failures_since``."""
    return GDAL_FAILURES.count


def require_no_gdal_failures_since(mark: int, output_path: str | os.PathLike) -> None:
    """Raise for failures GDAL reported without raising since ``mark``: closing a dataset whose last
    blocks could not be written fails that way. Call it before moving a written file into place."""
    reported = GDAL_FAILURES.since(mark)
    if reported:
        raise io_failure(reported, None, None, {}, output_path)


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


def get_band(dataset: gdal.Dataset, index: int, layer: str) -> gdal.Band:
    if not 1 <= index <= dataset.RasterCount:
        raise InputError(f"{layer} has {dataset.RasterCount} band(s); band {index} does not exist.")
    return dataset.GetRasterBand(index)


def same_crs(wkt_a: str, wkt_b: str) -> bool:
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


def crs_label(wkt: str) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    code = srs.GetAuthorityCode(None)
    return f"{srs.GetAuthorityName(None)}:{code}" if code else (srs.GetName() or "unknown CRS")


def pixel_size_label(grid: Grid, size: float | None = None) -> str:
    """A pixel size (``grid``'s own unless given, in its CRS) with its linear unit, e.g. "120 m"."""
    srs = osr.SpatialReference()
    srs.ImportFromWkt(grid.crs_wkt)
    unit = (
        "m"
        if srs.IsProjected() and srs.GetLinearUnits() == 1.0
        else ("deg" if srs.IsGeographic() else srs.GetLinearUnitsName())
    )
    return f"{grid.pixel_width if size is None else size:g} {unit}"


def _transformation(source_wkt: str, target_wkt: str) -> osr.CoordinateTransformation:
    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromWkt(source_wkt)
    target.ImportFromWkt(target_wkt)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(source, target)


def pixel_size_in(grid: Grid, target: Grid) -> tuple[float, float]:
    """Size (width, height) of ``grid``'s pixel measured in ``target``'s CRS, at target's centre."""
    to_grid, to_target = (
        _transformation(target.crs_wkt, grid.crs_wkt),
        _transformation(grid.crs_wkt, target.crs_wkt),
    )
    tx0, tdx, _, ty0, _, tdy = target.geotransform
    cx, cy = to_grid.TransformPoint(tx0 + tdx * target.width / 2, ty0 + tdy * target.height / 2)[:2]
    dx, dy = grid.geotransform[1], grid.geotransform[5]
    centre = np.array(to_target.TransformPoint(cx, cy)[:2])
    right = np.array(to_target.TransformPoint(cx + dx, cy)[:2])
    down = np.array(to_target.TransformPoint(cx, cy + dy)[:2])
    return float(np.linalg.norm(right - centre)), float(np.linalg.norm(down - centre))


def window_covering(grid: Grid, target: Grid, pad_px: int = 2) -> tuple[Grid, int, int] | None:
    """The part of ``grid`` that covers ``target``'s extent (plus ``pad_px``), as a grid and its
    pixel offsets in ``grid``; None when they do not overlap."""
    to_grid = _transformation(target.crs_wkt, grid.crs_wkt)
    tx0, tdx, _, ty0, _, tdy = target.geotransform
    steps = np.linspace(0.0, 1.0, 33)
    edge_x = np.concatenate([steps, steps, np.zeros_like(steps), np.ones_like(steps)]) * target.width
    edge_y = np.concatenate([np.zeros_like(steps), np.ones_like(steps), steps, steps]) * target.height
    points = [to_grid.TransformPoint(tx0 + tdx * c, ty0 + tdy * r)[:2] for c, r in zip(edge_x, edge_y)]
    xs, ys = np.array(points).T
    gx0, gdx, _, gy0, _, gdy = grid.geotransform
    cols, rows = (xs - gx0) / gdx, (ys - gy0) / gdy
    col0, col1 = (
        max(int(np.floor(cols.min())) - pad_px, 0),
        min(int(np.ceil(cols.max())) + pad_px, grid.width),
    )
    row0, row1 = (
        max(int(np.floor(rows.min())) - pad_px, 0),
        min(int(np.ceil(rows.max())) + pad_px, grid.height),
    )
    if col0 >= col1 or row0 >= row1:
        return None
    sub = Grid(
        grid.crs_wkt, (gx0 + col0 * gdx, gdx, 0.0, gy0 + row0 * gdy, 0.0, gdy), col1 - col0, row1 - row0
    )
    return sub, col0, row0


def band_nodata(band: gdal.Band) -> float | None:
    return band.GetNoDataValue()


def valid_mask(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """Finite pixels that are not the band's nodata value."""
    valid = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= values != nodata
    return valid


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
    if band.XSize * band.YSize <= max_pixels:
        return band.ReadAsArray()
    side = max(1, int(math.sqrt(max_pixels)) // SAMPLE_WINDOW_PX)
    width, height = min(SAMPLE_WINDOW_PX, band.XSize), min(SAMPLE_WINDOW_PX, band.YSize)
    cols = np.linspace(0, band.XSize - width, side).astype(int)
    rows = np.linspace(0, band.YSize - height, side).astype(int)
    return np.block([[band.ReadAsArray(int(c), int(r), width, height) for c in cols] for r in rows])


def unit_hints(dataset: gdal.Dataset, band: gdal.Band, path: str | os.PathLike) -> UnitHints:
    metadata: dict[str, str] = {}
    for domain in ("", "IMD"):
        metadata.update(dataset.GetMetadata(domain) or {})
    metadata.update(band.GetMetadata() or {})
    dtype = gdal.GetDataTypeName(band.DataType)
    return UnitHints(
        unit_type=band.GetUnitType() or "",
        description=band.GetDescription() or "",
        file_name=Path(str(path)).name,
        # Stored integers with a scale or offset are fractional values, not a product's digital numbers.
        is_integer=not dtype.startswith(("Float", "CFloat")) and band_scaling(band) is None,
        metadata=metadata,
    )


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


def decide_lst_units(
    dataset: gdal.Dataset, band: gdal.Band, path: str | os.PathLike, requested: str, layer: str
) -> LstUnits:
    """The requested LST units, or for "auto" the units its metadata and values suggest.

    Whatever the units, a band whose values cannot be a temperature is refused, and the band's own scale
    and offset are applied before the units' conversion (and said in the reason).
    """
    require_value_band(band, layer, f"band {band.GetBand()}")
    hints = unit_hints(dataset, band, path)
    sample = valid_values(band, sample_values(band))
    whole_range = functools.partial(value_range, band)
    require_temperature_values(sample, layer, whole_range)
    if requested != "auto":
        units = lst_units(requested, hints)
    else:
        units = detect_lst_units(sample, hints, layer, whole_range)
    scaling = band_scaling(band)
    if scaling is None:
        return units
    return dataclasses.replace(
        units,
        band_scale=scaling[0],
        band_offset=scaling[1],
        reason=f"{units.reason}; the band's scale {scaling[0]:g} and offset {scaling[1]:g} applied first, "
        "as QGIS shows it",
    )


def read_lst_kelvin(
    path: str | os.PathLike, band_index: int, requested_units: str, layer: str
) -> tuple[np.ndarray, Grid, LstUnits]:
    """A whole LST band in Kelvin (NaN where nodata), its grid and the units it was read in."""
    dataset = open_raster(path, layer)
    band = get_band(dataset, band_index, layer)
    units = decide_lst_units(dataset, band, path, requested_units, layer)
    values = band.ReadAsArray()
    kelvin = np.where(valid_mask(values, band_nodata(band)), units.to_kelvin(values), np.nan).astype(
        np.float32
    )
    return kelvin, grid_of(dataset, layer), units


def create_geotiff(
    path: str | os.PathLike, grid: Grid, options: tuple[str, ...], nodata: float | None = None, bands: int = 1
) -> gdal.Dataset:
    driver = gdal.GetDriverByName("GTiff")
    dataset = driver.Create(str(path), grid.width, grid.height, bands, gdal.GDT_Float32, list(options))
    dataset.SetGeoTransform(grid.geotransform)
    dataset.SetProjection(grid.crs_wkt)
    if nodata is not None:
        for index in range(1, bands + 1):
            dataset.GetRasterBand(index).SetNoDataValue(nodata)
    return dataset


def warp_to_grid(source: str, destination: str, grid: Grid, resample: str, nodata: float) -> None:
    """Warp a single-band float raster onto ``grid`` (``resample``: "average" or "near")."""
    x0, dx, _, y0, _, dy = grid.geotransform
    bounds = (x0, y0 + dy * grid.height, x0 + dx * grid.width, y0)
    gdal.Warp(
        destination,
        source,
        format="GTiff",
        outputBounds=bounds,
        width=grid.width,
        height=grid.height,
        dstSRS=grid.crs_wkt,
        resampleAlg=resample,
        srcNodata=nodata,
        dstNodata=nodata,
        outputType=gdal.GDT_Float32,
        creationOptions=list(SCRATCH_CREATION_OPTIONS),
        warpMemoryLimit=GDAL_CACHE_BYTES,
    )


def average_onto(source: str | os.PathLike, destination: str | os.PathLike, grid: Grid) -> Path:
    """Every band of ``source`` area-averaged onto ``grid`` as a GeoTIFF, keeping its data type,
    each band's nodata value (which the average skips) and its description."""
    x0, dx, _, y0, _, dy = grid.geotransform
    bounds = (x0, y0 + dy * grid.height, x0 + dx * grid.width, y0)
    gdal.Warp(
        str(destination),
        str(source),
        format="GTiff",
        outputBounds=bounds,
        width=grid.width,
        height=grid.height,
        dstSRS=grid.crs_wkt,
        resampleAlg="average",
        creationOptions=list(SCRATCH_CREATION_OPTIONS),
        warpMemoryLimit=GDAL_CACHE_BYTES,
    )
    source_dataset = gdal.Open(str(source))
    target = gdal.Open(str(destination), gdal.GA_Update)
    for index in range(1, source_dataset.RasterCount + 1):
        description = source_dataset.GetRasterBand(index).GetDescription()
        if description:
            target.GetRasterBand(index).SetDescription(description)
    target.FlushCache()
    return Path(destination)


def translate_to_cog(source: str, destination: str) -> None:
    gdal.Translate(
        destination,
        source,
        format="COG",
        creationOptions=[
            "COMPRESS=DEFLATE",
            "PREDICTOR=YES",
            f"BLOCKSIZE={OUTPUT_BLOCK_PX}",
            "BIGTIFF=IF_SAFER",
        ],
    )


# Formats the output may take, by extension: single-file formats that hold Float32 values with a CRS, a
# geotransform and nodata. A .vrt is not among them: it only points at other files.
OUTPUT_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".nc": "netCDF", ".img": "HFA", ".kea": "KEA"}
OUTPUT_FORMAT_OPTIONS = {"netCDF": ("FORMAT=NC4", "COMPRESS=DEFLATE"), "HFA": ("COMPRESSED=YES",)}


def output_formats() -> dict[str, str]:
    """Extensions the output may have and their GDAL drivers, for the drivers this GDAL has."""
    require_gdal()
    return {ext: name for ext, name in OUTPUT_DRIVERS.items() if gdal.GetDriverByName(name) is not None}


def output_driver(path: str | os.PathLike) -> str:
    """The GDAL driver that writes ``path``, chosen by its extension, or an error listing the extensions."""
    path = Path(path)
    formats = output_formats()
    extension = path.suffix.lower()
    if extension in formats:
        return formats[extension]
    what = f"the extension {path.suffix}" if path.suffix else "no extension"
    why = (
        " (a .vrt only points at other files: write a .tif and build the VRT on it)"
        if extension == ".vrt"
        else ""
    )
    raise OutputError(
        f"Output {path.name} has {what}, which is not a format the result can be written in{why}; name it "
        f"with one of {', '.join(formats)} (GeoTIFF, .tif, by default), e.g. {path.stem or 'lst_30m'}.tif."
    )


def translate_to_format(source: str, folder: Path, name: str, driver: str) -> list[Path]:
    """Copy the raster ``source`` into ``driver``'s format as ``folder/name`` (``folder`` empty, made if
    missing); returns every file written there (sidecars such as .aux.xml too), ``name`` last, so that
    moving them in that order reveals the main file only when all is in place."""
    folder.mkdir(exist_ok=True)
    destination = folder / name
    dataset = gdal.Translate(
        str(destination), source, format=driver, creationOptions=list(OUTPUT_FORMAT_OPTIONS.get(driver, ()))
    )
    dataset.FlushCache()
    dataset = None
    return sorted(folder.iterdir(), key=lambda f: f == destination)


def dataset_grid(dataset: gdal.Dataset) -> Grid:
    """A dataset's grid as it is, CRS or not (``grid_of`` refuses a raster without one)."""
    return Grid(
        dataset.GetProjection(), tuple(dataset.GetGeoTransform()), dataset.RasterXSize, dataset.RasterYSize
    )


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


def warp_stack_onto(path: str | os.PathLike, grid: Grid, layer: str, resample: str = "average") -> np.ndarray:
    """Every band of a raster warped in memory onto ``grid`` (any CRS or ratio), NaN where nothing maps."""
    source = open_raster(path, layer)
    x0, dx, _, y0, _, dy = grid.geotransform
    warped = gdal.Warp(
        "",
        source,
        format="MEM",
        outputBounds=(x0, y0 + dy * grid.height, x0 + dx * grid.width, y0),
        width=grid.width,
        height=grid.height,
        dstSRS=grid.crs_wkt,
        resampleAlg=resample,
        dstNodata=np.nan,
        outputType=gdal.GDT_Float32,
    )
    return np.stack([warped.GetRasterBand(i + 1).ReadAsArray() for i in range(warped.RasterCount)]).astype(
        np.float32
    )


def warped_view(path: str | os.PathLike, grid: Grid, resample: str, layer: str) -> gdal.Dataset:
    """A virtual (VRT) dataset of a raster warped onto ``grid``, read lazily window by window."""
    source = open_raster(path, layer)
    x0, dx, _, y0, _, dy = grid.geotransform
    return gdal.Warp(
        "",
        source,
        format="VRT",
        dstSRS=grid.crs_wkt,
        outputBounds=(x0, y0 + dy * grid.height, x0 + dx * grid.width, y0),
        width=grid.width,
        height=grid.height,
        resampleAlg=resample,
        dstNodata=float("nan"),
        outputType=gdal.GDT_Float32,
    )


def epsg_wkt(code: int) -> str:
    """The WKT of an EPSG coordinate reference system."""
    require_gdal()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(code)
    return srs.ExportToWkt()


def write_stack(
    path: str | os.PathLike,
    grid: Grid,
    values: np.ndarray,
    names: tuple[str, ...] = (),
    nodata: float | None = None,
    options: tuple[str, ...] = (),
) -> Path:
    """Write (C, H, W) or (H, W) values as a float32 GeoTIFF on ``grid``, bands described by ``names``."""
    require_gdal()
    bands = values if values.ndim == 3 else values[None]
    dataset = create_geotiff(path, grid, options, nodata=nodata, bands=len(bands))
    for index, band in enumerate(bands):
        out = dataset.GetRasterBand(index + 1)
        out.WriteArray(band.astype(np.float32))
        if names:
            out.SetDescription(names[index])
    dataset.FlushCache()
    return Path(path)


def metres_per_unit(grid: Grid) -> float | None:
    """Metres per unit of ``grid``'s projected CRS (1 for metres), or None for a geographic or unknown one."""
    srs = osr.SpatialReference()
    if not grid.crs_wkt or srs.ImportFromWkt(grid.crs_wkt) != 0 or not srs.IsProjected():
        return None
    return float(srs.GetLinearUnits())

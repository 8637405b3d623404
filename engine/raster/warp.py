"""Warping rasters onto a grid: to a scratch GeoTIFF, area-averaged, into memory or as a lazy view."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..grids import Grid
from .read import open_raster
from .session import GDAL_CACHE_BYTES, gdal
from .write import SCRATCH_CREATION_OPTIONS


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

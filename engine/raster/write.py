"""Writing rasters: GeoTIFF creation options, new GeoTIFFs and stacks, COG and the other output formats."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..grids import Grid
from .session import gdal, require_gdal

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


def write_window(band: gdal.Band, values: np.ndarray, x0: int = 0, y0: int = 0) -> None:
    """Write ``values`` into a band with their top-left pixel at (``x0``, ``y0``)."""
    band.WriteArray(values, x0, y0)


def describe_band(
    band: gdal.Band, description: str, units: str | None = None, metadata: dict[str, str] | None = None
) -> None:
    """Name a band (its description, shown by QGIS), and give it metadata and a unit type when given."""
    band.SetDescription(description)
    if metadata is not None:
        band.SetMetadata(metadata)
    if units is not None:
        band.SetUnitType(units)


def write_metadata(dataset: gdal.Dataset, metadata: dict[str, str]) -> None:
    """Set the raster's metadata in the default domain."""
    dataset.SetMetadata(metadata)


def flush(dataset: gdal.Dataset) -> None:
    """Write what GDAL still holds of a raster to its file."""
    dataset.FlushCache()


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

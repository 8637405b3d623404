"""Training scenes: a fine LST and its guidance on one grid, read from GeoTIFFs.

A scene is the unit the patch sampler and the area split work on. Invalid pixels are NaN,
so masks travel with the data. Three ways to get one:

- a fine LST with guidance (``read_geotiff_scene``): the coarse input is made at training
  time by area-averaging the fine LST by the model's scale;
- a coarse LST with fine guidance only (``read_coarse_scene``): self-supervised, the
  guidance is area-averaged onto the LST grid and the network learns to recover that LST
  from a copy aggregated once more by the scale (scale invariance, as classic sharpeners
  assume);
- a Landsat Level-1 folder (``training.landsat.read_landsat_scene``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.masks import block_mean
from engine.units import CELSIUS_OFFSET


@dataclass(frozen=True)
class BandInfo:
    """Name, units and meaning of one guidance band."""

    name: str
    units: str
    description: str = ""


@dataclass(frozen=True)
class Grid:
    """Raster geometry: size, GDAL geotransform and CRS as WKT."""

    rows: int
    cols: int
    geotransform: tuple[float, ...]
    crs_wkt: str

    @property
    def pixel_size_m(self) -> float:
        return abs(self.geotransform[1])


@dataclass(frozen=True)
class Scene:
    """Fine LST (H, W) in Kelvin and guidance (C, H, W) in the bands' units; NaN = invalid."""

    name: str
    lst_kelvin: np.ndarray
    guidance: np.ndarray
    bands: tuple[BandInfo, ...]
    grid: Grid | None = None
    notes: str = ""
    sensor: str = ""
    landscape: str = ""
    pixel_size_m: float | None = None
    native_pixel_m: float | None = None
    quantisation_k: float | None = None

    def __post_init__(self) -> None:
        if self.lst_kelvin.ndim != 2 or self.guidance.ndim != 3:
            raise ValueError(f"scene {self.name}: LST must be (H, W) and guidance (C, H, W)")
        if self.guidance.shape[1:] != self.lst_kelvin.shape:
            raise ValueError(
                f"scene {self.name}: guidance {self.guidance.shape[1:]} and LST {self.lst_kelvin.shape} "
                "differ in size"
            )
        if len(self.bands) != self.guidance.shape[0]:
            raise ValueError(
                f"scene {self.name}: {len(self.bands)} band names for {self.guidance.shape[0]} guidance bands"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return self.lst_kelvin.shape

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(band.name for band in self.bands)

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.lst_kelvin) & np.isfinite(self.guidance).all(axis=0)


def area_average(values: np.ndarray, scale: int) -> np.ndarray:
    """Mean over non-overlapping ``scale`` x ``scale`` cells of the last two axes (cropped
    to a multiple of the scale); a cell with any NaN is NaN, as a sensor pixel that saw
    an invalid area is not a valid measurement."""
    rows, cols = values.shape[-2] // scale, values.shape[-1] // scale
    cropped = values[..., : rows * scale, : cols * scale]
    valid = np.isfinite(cropped)
    mean, count = block_mean(cropped, valid, scale)
    return np.where(count == scale * scale, mean, np.nan).astype(np.float32)


def read_band(path: str | Path, band: int = 1) -> tuple[np.ndarray, Grid]:
    """One raster band as float32 with nodata as NaN, and its grid."""
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    if dataset is None:
        raise FileNotFoundError(f"cannot open raster {path}")
    raster = dataset.GetRasterBand(band)
    raw = raster.ReadAsArray()
    values = raw.astype(np.float32)
    nodata = raster.GetNoDataValue()
    if nodata is not None:
        values[raw == nodata] = np.nan
    grid = Grid(
        dataset.RasterYSize, dataset.RasterXSize, tuple(dataset.GetGeoTransform()), dataset.GetProjection()
    )
    return values, grid


def read_stack(path: str | Path) -> tuple[np.ndarray, Grid, tuple[str, ...]]:
    """All bands of a raster as (C, H, W) float32 with nodata as NaN, and band descriptions."""
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    if dataset is None:
        raise FileNotFoundError(f"cannot open raster {path}")
    stack, names, grid = [], [], None
    for index in range(1, dataset.RasterCount + 1):
        values, grid = read_band(path, index)
        stack.append(values)
        names.append(dataset.GetRasterBand(index).GetDescription())
    return np.stack(stack), grid, tuple(names)


def to_kelvin(lst: np.ndarray, units: str, source: str) -> np.ndarray:
    if units == "kelvin":
        return lst
    if units == "celsius":
        return lst + np.float32(CELSIUS_OFFSET)
    raise ValueError(f"{source}: LST units must be 'kelvin' or 'celsius', got {units!r}")


def resolve_bands(
    names: tuple[str, ...], bands: tuple[BandInfo, ...] | None, source: str
) -> tuple[BandInfo, ...]:
    """The declared guidance bands, or the raster's band descriptions with the units the
    engine builds those bands in; checked against the raster's band count."""
    if bands is None:
        from engine.errors import InputError
        from engine.guidance import guidance_band

        try:
            known = [guidance_band(name) for name in names]
        except InputError as exc:
            raise ValueError(
                f"{source}: band descriptions {list(names)} are not all bands the engine knows; declare "
                f"data.guidance_bands (name, units, description) in the config"
            ) from exc
        return tuple(BandInfo(b.name, b.units, b.description) for b in known)
    if len(bands) != len(names):
        raise ValueError(f"{source}: {len(names)} guidance bands in the raster but {len(bands)} declared")
    return tuple(bands)


def read_geotiff_scene(
    lst_path: str | Path,
    guidance_path: str | Path,
    bands: tuple[BandInfo, ...] | None = None,
    lst_units: str = "kelvin",
    name: str | None = None,
) -> Scene:
    """A fine LST raster and a multi-band guidance raster on the same grid."""
    lst, lst_grid = read_band(lst_path)
    guidance, guidance_grid, names = read_stack(guidance_path)
    if (lst_grid.rows, lst_grid.cols, lst_grid.geotransform) != (
        guidance_grid.rows,
        guidance_grid.cols,
        guidance_grid.geotransform,
    ):
        raise ValueError(
            f"LST {Path(lst_path).name} ({lst_grid.cols}x{lst_grid.rows}) and guidance "
            f"{Path(guidance_path).name} "
            f"({guidance_grid.cols}x{guidance_grid.rows}) are not on the same grid; warp one onto the other "
            "first"
        )
    return Scene(
        name=name or Path(lst_path).stem,
        lst_kelvin=to_kelvin(lst, lst_units, str(lst_path)),
        guidance=guidance,
        bands=resolve_bands(names, bands, str(guidance_path)),
        grid=lst_grid,
    )


def coarse_grid_scale(coarse: Grid, fine: Grid, source: str) -> int:
    """The integer ratio of a coarse grid to a fine grid that shares its origin."""
    ratio = coarse.geotransform[1] / fine.geotransform[1]
    scale = int(round(ratio))
    aligned = np.allclose(
        coarse.geotransform[::3], fine.geotransform[::3], atol=1e-6 * abs(coarse.geotransform[1])
    )
    if scale < 2 or abs(ratio - scale) > 1e-6 or not aligned:
        raise ValueError(
            f"{source}: the LST pixel ({coarse.geotransform[1]:g}) must be an integer multiple (2 or more) "
            "of the "
            f"guidance pixel ({fine.geotransform[1]:g}) with the same upper-left corner; warp the guidance "
            "first"
        )
    if fine.rows < coarse.rows * scale or fine.cols < coarse.cols * scale:
        raise ValueError(f"{source}: the guidance does not cover the LST extent")
    return scale


def self_supervised_scene(
    coarse_lst_kelvin: np.ndarray,
    fine_guidance: np.ndarray,
    scale: int,
    bands: tuple[BandInfo, ...],
    name: str,
) -> Scene:
    """A scene on the coarse LST grid: its guidance is the fine guidance area-averaged by
    ``scale``. Training on it teaches coarse -> coarse*scale downscaling one level up."""
    rows, cols = coarse_lst_kelvin.shape
    guidance = area_average(fine_guidance[:, : rows * scale, : cols * scale], scale)
    return Scene(
        name=name,
        lst_kelvin=coarse_lst_kelvin.astype(np.float32),
        guidance=guidance,
        bands=bands,
        notes=f"self-supervised: guidance area-averaged by {scale} onto the LST grid",
    )


def read_coarse_scene(
    lst_path: str | Path,
    guidance_path: str | Path,
    bands: tuple[BandInfo, ...] | None = None,
    lst_units: str = "kelvin",
    name: str | None = None,
) -> tuple[Scene, int]:
    """A coarse LST raster and a fine guidance raster sharing its corner, as a
    self-supervised scene, with the grid ratio (the scale)."""
    lst, lst_grid = read_band(lst_path)
    guidance, guidance_grid, names = read_stack(guidance_path)
    scale = coarse_grid_scale(
        lst_grid, guidance_grid, f"LST {Path(lst_path).name} / guidance {Path(guidance_path).name}"
    )
    scene = self_supervised_scene(
        to_kelvin(lst, lst_units, str(lst_path)),
        guidance,
        scale,
        resolve_bands(names, bands, str(guidance_path)),
        name or Path(lst_path).stem,
    )
    return scene, scale

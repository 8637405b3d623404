"""Training scenes: a fine LST and its guidance on one grid, read from GeoTIFFs.

A scene is the unit the patch sampler and the area split work on. Invalid pixels are NaN,
so masks travel with the data. Three ways to get one:

- a fine LST with guidance (``read_geotiff_scene``): the coarse input is made at training
  time by area-averaging the fine LST by the model's scale;
- a coarse LST with fine guidance only (``read_coarse_scene``): self-supervised, the
  guidance is area-averaged onto the LST grid and the network learns to recover that LST
  from a copy aggregated once more by the scale (scale invariance, as classic sharpeners
  assume);
- a Landsat Level-1 folder (``training.landsat_scenes.read_landsat_scene``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.grids import Grid, shared_corner_scale
from engine.masks import block_mean
from engine.raster import gdal_session, read_lst_kelvin, read_stack_values


@dataclass(frozen=True)
class BandInfo:
    """Name, units and meaning of one guidance band."""

    name: str
    units: str
    description: str = ""


@dataclass(frozen=True)
class Scene:
    """Fine LST (H, W) in Kelvin and guidance (C, H, W) in the bands' units; NaN = invalid.
    ``site`` names the place, so that cross-validation can hold out every scene of a site."""

    name: str
    lst_kelvin: np.ndarray
    guidance: np.ndarray
    bands: tuple[BandInfo, ...]
    grid: Grid | None = None
    notes: str = ""
    sensor: str = ""
    landscape: str = ""
    site: str = ""
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


def read_lst(path: str | Path, lst_units: str) -> tuple[np.ndarray, Grid]:
    """The first band of an LST raster in Kelvin (NaN where nodata), read as the engine reads it:
    in any unit Downscale LST accepts, "auto" included."""
    with gdal_session():
        lst_kelvin, grid, _ = read_lst_kelvin(path, 1, lst_units, f"LST {Path(path).name}")
    return lst_kelvin, grid


def read_guidance(path: str | Path) -> tuple[np.ndarray, Grid, tuple[str, ...]]:
    """A guidance raster's bands (C, H, W) with nodata as NaN, its grid and band descriptions."""
    with gdal_session():
        return read_stack_values(path, f"Guidance {Path(path).name}")


def resolve_bands(
    names: tuple[str, ...], bands: tuple[BandInfo, ...] | None, source: str
) -> tuple[BandInfo, ...]:
    """The declared guidance bands, or the raster's band descriptions with the units the
    engine builds those bands in; checked against the raster's band count."""
    if bands is None:
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
    lst_kelvin, lst_grid = read_lst(lst_path, lst_units)
    guidance, guidance_grid, names = read_guidance(guidance_path)
    if (lst_grid.width, lst_grid.height, lst_grid.geotransform) != (
        guidance_grid.width,
        guidance_grid.height,
        guidance_grid.geotransform,
    ):
        raise ValueError(
            f"LST {Path(lst_path).name} ({lst_grid.width}x{lst_grid.height}) and guidance "
            f"{Path(guidance_path).name} "
            f"({guidance_grid.width}x{guidance_grid.height}) are not on the same grid; warp one onto the other "
            "first"
        )
    return Scene(
        name=name or Path(lst_path).stem,
        lst_kelvin=lst_kelvin,
        guidance=guidance,
        bands=resolve_bands(names, bands, str(guidance_path)),
        grid=lst_grid,
    )


def coarse_grid_scale(coarse: Grid, fine: Grid, source: str) -> int:
    """The integer ratio of a coarse grid to a fine grid that shares its origin."""
    scale = shared_corner_scale(coarse, fine)
    if scale is None:
        raise ValueError(
            f"{source}: the LST pixel ({coarse.pixel_width:g}) must be an integer multiple (2 or more) "
            "of the "
            f"guidance pixel ({fine.pixel_width:g}) with the same upper-left corner; warp the guidance "
            "first"
        )
    if fine.height < coarse.height * scale or fine.width < coarse.width * scale:
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
    lst_kelvin, lst_grid = read_lst(lst_path, lst_units)
    guidance, guidance_grid, names = read_guidance(guidance_path)
    scale = coarse_grid_scale(
        lst_grid, guidance_grid, f"LST {Path(lst_path).name} / guidance {Path(guidance_path).name}"
    )
    scene = self_supervised_scene(
        lst_kelvin,
        guidance,
        scale,
        resolve_bands(names, bands, str(guidance_path)),
        name or Path(lst_path).stem,
    )
    return scene, scale

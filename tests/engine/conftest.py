"""Small real rasters for the scene pipeline: the Landsat 5 TM sample, written as GeoTIFFs.

The coarse LST is the band-6 brightness temperature averaged onto 120 m (x4), which is
how the sensor saw it; the guidance is the 30 m reflective bands as reflectance-like
values (DN * 0.0025) with band descriptions, on the sample's own 30 m grid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from engine.units import lst_units
from tests.conftest import LANDSAT5

gdal.UseExceptions()

SCENE = "LT52240631988227CUB02"
GUIDANCE_BANDS = {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 7}
DN_TO_REFLECTANCE = 0.0025
GUIDANCE_NODATA = -1.0


def landsat_path(band: int | str) -> Path:
    return LANDSAT5 / f"{SCENE}_B{band}.TIF"


def write_raster(path, bands, geotransform, crs_wkt, nodata=None, descriptions=None, unit=None, dtype=None):
    """Write (C, H, W) or (H, W) values as a GeoTIFF and return its path as str."""
    bands = np.asarray(bands)
    if bands.ndim == 2:
        bands = bands[None]
    gdal_type = dtype or {np.dtype("uint8"): gdal.GDT_Byte, np.dtype("uint16"): gdal.GDT_UInt16}.get(
        bands.dtype, gdal.GDT_Float32
    )
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), bands.shape[2], bands.shape[1], bands.shape[0], gdal_type
    )
    dataset.SetGeoTransform(tuple(geotransform))
    dataset.SetProjection(crs_wkt)
    for i, values in enumerate(bands, 1):
        band = dataset.GetRasterBand(i)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if descriptions:
            band.SetDescription(descriptions[i - 1])
        if unit:
            band.SetUnitType(unit)
        band.WriteArray(values)
    dataset = None
    return str(path)


def read(path, band: int = 1) -> np.ndarray:
    dataset = gdal.Open(str(path))
    return dataset.GetRasterBand(band).ReadAsArray()


def epsg_wkt(code: int) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(code)
    return srs.ExportToWkt()


@dataclass(frozen=True)
class Scene:
    """Paths and arrays of one test scene on the Landsat sample's grid."""

    folder: Path
    lst_path: str  # 120 m brightness temperature, Kelvin, unit "K"
    guidance_path: str  # six 30 m bands with descriptions, nodata -1
    lst_kelvin: np.ndarray  # (h, w) coarse
    guidance: np.ndarray  # (6, H, W)
    fine_geotransform: tuple
    coarse_geotransform: tuple
    crs_wkt: str

    def write_lst(self, name: str, values: np.ndarray, **kwargs) -> str:
        return write_raster(self.folder / name, values, self.coarse_geotransform, self.crs_wkt, **kwargs)

    def write_guidance(self, name: str, values: np.ndarray, **kwargs) -> str:
        return write_raster(self.folder / name, values, self.fine_geotransform, self.crs_wkt, **kwargs)


def brightness_temperature_kelvin() -> np.ndarray:
    dataset = gdal.Open(str(landsat_path(6)))
    return lst_units("landsat5_tm_b6_dn").to_kelvin(dataset.ReadAsArray())


def make_scene(folder: Path, rows: slice = slice(None), cols: slice = slice(None), scale: int = 4) -> Scene:
    """The sample cropped to ``rows``/``cols`` (30 m pixels), LST averaged to ``scale`` x 30 m."""
    folder.mkdir(parents=True, exist_ok=True)
    b6 = gdal.Open(str(landsat_path(6)))
    crs = b6.GetProjection()
    x0, dx, _, y0, _, dy = b6.GetGeoTransform()
    kelvin = brightness_temperature_kelvin()[rows, cols]
    row0, col0 = rows.start or 0, cols.start or 0
    fine_gt = (x0 + col0 * dx, dx, 0.0, y0 + row0 * dy, 0.0, dy)
    coarse_gt = (fine_gt[0], dx * scale, 0.0, fine_gt[3], 0.0, dy * scale)
    height, width = kelvin.shape
    coarse_h, coarse_w = height // scale, width // scale
    blocks = kelvin[: coarse_h * scale, : coarse_w * scale].reshape(coarse_h, scale, coarse_w, scale)
    lst = blocks.mean(axis=(1, 3)).astype(np.float32)
    guidance = []
    for band in GUIDANCE_BANDS.values():
        dn = gdal.Open(str(landsat_path(band))).ReadAsArray()[rows, cols].astype(np.float32)
        guidance.append(np.where(dn == 255, GUIDANCE_NODATA, dn * DN_TO_REFLECTANCE))
    guidance = np.stack(guidance).astype(np.float32)
    lst_path = write_raster(folder / "lst_120m.tif", lst, coarse_gt, crs, unit="K")
    guidance_path = write_raster(
        folder / "guidance_30m.tif",
        guidance,
        fine_gt,
        crs,
        nodata=GUIDANCE_NODATA,
        descriptions=list(GUIDANCE_BANDS),
    )
    return Scene(folder, lst_path, guidance_path, lst, guidance, fine_gt, coarse_gt, crs)


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> Scene:
    """The whole 287 x 310 px sample (fine grid not a multiple of 4: partial coarse pixels at the edges)."""
    return make_scene(tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory) -> Scene:
    """A 128 x 96 px crop for the many runs that check one behaviour each."""
    return make_scene(tmp_path_factory.mktemp("small_scene"), rows=slice(40, 168), cols=slice(60, 156))


def run_downscale(scene: Scene, out, progress=None, is_cancelled=None, **overrides):
    """Run the pipeline on a scene (bicubic unless told otherwise); returns (result, log lines)."""
    from engine.pipeline import DownscaleRequest, downscale_scene

    fields = {
        "lst_path": scene.lst_path,
        "guidance_paths": [scene.guidance_path],
        "output_path": str(out),
        "method": "bicubic",
        "threads": 1,
        **overrides,
    }
    lines: list[str] = []
    result = downscale_scene(
        DownscaleRequest(**fields), progress=progress, is_cancelled=is_cancelled, log=lines.append
    )
    return result, lines


def coarse_means(fine: np.ndarray, valid: np.ndarray, scale: int, shape) -> np.ndarray:
    """Mean of the valid fine pixels of each coarse pixel (NaN if none), on a coarse grid of ``shape``."""
    h, w = shape
    total, count = np.zeros((h * scale, w * scale)), np.zeros((h * scale, w * scale))
    rows, cols = min(fine.shape[0], h * scale), min(fine.shape[1], w * scale)
    total[:rows, :cols] = np.where(valid, fine, 0.0)[:rows, :cols]
    count[:rows, :cols] = valid[:rows, :cols]
    total, count = (a.reshape(h, scale, w, scale).sum(axis=(1, 3)) for a in (total, count))
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def amplified_package(out_dir: Path, gain: float, name: str):
    """A small random x4 MoCoLSK-Net (the six GUIDANCE_BANDS) whose projection head is scaled
    up ``gain`` times, exported as a real package."""
    import torch

    from engine.card import BandSpec
    from engine.model import MoCoLSKConfig, MoCoLSKNet
    from training.packaging import export_package

    torch.manual_seed(0)
    config = MoCoLSKConfig(
        scale=4,
        guidance_channels=len(GUIDANCE_BANDS),
        num_feats=8,
        num_stages=1,
        blocks_per_group=1,
        reduction=4,
    )
    network = MoCoLSKNet(config)
    with torch.no_grad():
        network.projection_head[-1].weight.mul_(gain)
        network.projection_head[-1].bias.zero_()
    bands = [BandSpec(band, "reflectance", 0.15, 0.05) for band in GUIDANCE_BANDS]
    return export_package(
        network,
        out_dir,
        name=name,
        version="0.0.1",
        guidance_bands=bands,
        lst_mean_kelvin=295.0,
        lst_std_kelvin=5.0,
        training={
            "data": f"none: random initialisation with a head amplified {gain:g} times, for tests only"
        },
    )


@pytest.fixture(scope="session")
def detailed_package_x4(tmp_path_factory):
    """The network adds fine detail of about 0.6 K (std, up to 3 K) on the sample scene with its
    head amplified 30 times, instead of the few hundredths of a Kelvin of a plain random
    initialisation: tiling effects show."""
    return amplified_package(tmp_path_factory.mktemp("detailed_x4"), 30.0, "detailed_x4")


def tmpfs(folder: Path, size: str, why: str):
    """Yield ``folder`` with a tmpfs of ``size`` mounted on it (root only; skipped with the reason where
    it cannot be mounted), unmounted afterwards: a small disk of its own for a test."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(f"{why}, which needs root")
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)

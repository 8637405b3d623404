"""Small real training data: crops of the Landsat 5 TM sample written as GeoTIFFs.

The fine LST is the band-6 brightness temperature on its 30 m grid (Kelvin); the guidance
is the eight bands the bundled models use (TOA reflectance and two indices), with band
descriptions. The coarse LST for self-supervised use is that LST area-averaged x4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from tests.conftest import LANDSAT5
from training.landsat_scenes import read_landsat_scene
from training.scenes import area_average

gdal.UseExceptions()

MTL = LANDSAT5 / "LT52240631988227CUB02_MTL.txt"
CROP_PX = 96
TINY_MODEL = {"num_feats": 8, "num_stages": 1, "blocks_per_group": 1, "reduction": 4}


def write_geotiff(
    path: Path, bands: np.ndarray, pixel_m: float, names=(), origin=(500000.0, 9000000.0), nodata=np.nan
):
    bands = bands if bands.ndim == 3 else bands[None]
    driver = gdal.GetDriverByName("GTiff")
    ds = driver.Create(str(path), bands.shape[2], bands.shape[1], bands.shape[0], gdal.GDT_Float32)
    ds.SetGeoTransform((origin[0], pixel_m, 0.0, origin[1], 0.0, -pixel_m))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32622)
    ds.SetProjection(srs.ExportToWkt())
    for i, band in enumerate(bands):
        out = ds.GetRasterBand(i + 1)
        out.WriteArray(band.astype(np.float32))
        out.SetNoDataValue(float(nodata))
        if names:
            out.SetDescription(names[i])
    ds.FlushCache()
    return path


@pytest.fixture(scope="session")
def l5_scene():
    return read_landsat_scene(MTL)


@pytest.fixture(scope="session")
def scene_tifs(l5_scene, tmp_path_factory):
    """(lst.tif, guidance.tif) of a 96 x 96 px crop at 30 m."""
    folder = tmp_path_factory.mktemp("scene")
    lst = l5_scene.lst_kelvin[:CROP_PX, :CROP_PX]
    guidance = l5_scene.guidance[:, :CROP_PX, :CROP_PX]
    return (
        write_geotiff(folder / "lst.tif", lst, 30.0),
        write_geotiff(folder / "guidance.tif", guidance, 30.0, l5_scene.band_names),
    )


@pytest.fixture(scope="session")
def coarse_tifs(l5_scene, scene_tifs, tmp_path_factory):
    """(coarse_lst.tif at 120 m, guidance.tif at 30 m) sharing the upper-left corner."""
    folder = tmp_path_factory.mktemp("coarse")
    coarse = area_average(l5_scene.lst_kelvin[:CROP_PX, :CROP_PX], 4)
    return write_geotiff(folder / "coarse_lst.tif", coarse, 120.0), scene_tifs[1]


@pytest.fixture(scope="session")
def test_scene_tifs(l5_scene, tmp_path_factory):
    """(lst.tif, guidance.tif) of another 96 x 96 px crop, far from ``scene_tifs``: a whole held-out test scene."""
    folder = tmp_path_factory.mktemp("test_scene")
    window = (slice(180, 180 + CROP_PX), slice(160, 160 + CROP_PX))
    return (
        write_geotiff(folder / "lst.tif", l5_scene.lst_kelvin[window], 30.0),
        write_geotiff(
            folder / "guidance.tif", l5_scene.guidance[(slice(None), *window)], 30.0, l5_scene.band_names
        ),
    )


def write_config(
    folder: Path,
    lst: Path,
    guidance: Path,
    test_lst: Path | None = None,
    test_guidance: Path | None = None,
    **overrides,
) -> Path:
    """A tiny training config: the given scene split into training and validation blocks, and (when
    given) a second scene held out whole for test; both TM band 6 crops, native pixel 120 m."""
    scenes = [
        {"kind": "geotiff", "lst": str(lst), "guidance": str(guidance), "native_pixel_m": 120, "name": "lst"}
    ]
    if test_lst is not None:
        scenes.append(
            {
                "kind": "geotiff",
                "lst": str(test_lst),
                "guidance": str(test_guidance),
                "native_pixel_m": 120,
                "name": "held_out",
                "role": "test",
            }
        )
    config = {
        "name": "tiny-x4",
        "scale": 4,
        "model": TINY_MODEL,
        "data": {"kind": "scenes", "scenes": scenes},
        "split": {"block_px": 32, "val_fraction": 0.12, "guard_native_px": 1, "seed": 0},
        "patch_px": 16,
        "batch_size": 2,
        "iterations": 4,
        "val_interval": 2,
        "checkpoint_interval": 2,
        "threads": 1,
        "device": "cpu",
    }
    config.update(overrides)
    path = folder / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(tmp_path, scene_tifs, test_scene_tifs):
    return write_config(tmp_path, *scene_tifs, *test_scene_tifs)

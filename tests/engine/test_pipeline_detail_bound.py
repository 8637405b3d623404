"""MoCoLSK on a real, cloudy Landsat 8 scene with a volcanic hot spot: the run is accepted at
about 390 K and the network's detail stays within the range of the coarse LST around it.

The scene is real (tests/data/landsat8-florida-crop, see its SOURCE.md): band 10 brightness
temperature and TOA reflectance, clouds unmasked. The hot spot is SYNTHETIC: 60-95 K added
to the real warm field around the crop's hottest pixel, so that it reaches about 393 K.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from engine.conservation import max_abs_residual
from engine.detail import detail_bounds
from engine.guidance import compute_guidance
from engine.inference import Downscaler
from engine.landsat import brightness_temperature_kelvin, read_mtl, toa_reflectance
from engine.package import resolve_package
from engine.pipeline import OUTPUT_NODATA
from engine.units import PLAUSIBLE_MAX_KELVIN, PLAUSIBLE_MIN_KELVIN
from tests.conftest import REPO

from .conftest import Scene, amplified_package, read, run_downscale, write_raster

DATA = REPO / "tests" / "data" / "landsat8-florida-crop"
REFLECTIVE_BANDS = {"blue": 2, "green": 3, "red": 4, "nir": 5, "swir1": 6, "swir2": 7}
# The synthetic hot spot: the pixels above this temperature within this radius of the hottest
# pixel of the clear lower half get 60 K at the rim to 95 K at the centre.
HOT_SPOT_RADIUS_PX = 15
HOT_SPOT_FIELD_KELVIN = 293.0
HOT_SPOT_ADD_KELVIN = (60.0, 95.0)


@dataclass(frozen=True)
class HotScene:
    fine_kelvin: np.ndarray  # 30 m "truth": the real band 10 plus the synthetic hot spot
    guidance: np.ndarray  # (8, 160, 160) in the bundled models' band order
    guidance_path: str
    geotransform: tuple
    crs_wkt: str
    folder: Path

    def scene(self, scale: int) -> tuple[Scene, np.ndarray]:
        """The pipeline inputs at ``scale`` (the coarse LST is the block mean) and that coarse LST."""
        size = self.fine_kelvin.shape[0] // scale
        coarse = self.fine_kelvin.reshape(size, scale, size, scale).mean(axis=(1, 3))
        x0, dx, _, y0, _, dy = self.geotransform
        coarse_gt = (x0, dx * scale, 0.0, y0, 0.0, dy * scale)
        lst_path = write_raster(
            self.folder / f"lst_x{scale}.tif", coarse.astype(np.float32), coarse_gt, self.crs_wkt, unit="K"
        )
        return Scene(
            self.folder,
            lst_path,
            self.guidance_path,
            coarse,
            self.guidance,
            self.geotransform,
            coarse_gt,
            self.crs_wkt,
        ), coarse


def excess_kelvin(values: np.ndarray, low_kelvin: np.ndarray, high_kelvin: np.ndarray) -> float:
    """How far the values go outside [low, high] at most (negative when all lie inside)."""
    return float(np.maximum(low_kelvin - values, values - high_kelvin).max())


def with_hot_spot(kelvin: np.ndarray) -> np.ndarray:
    """``kelvin`` with the synthetic hot spot added on the real field around the hottest clear pixel."""
    clear = kelvin[80:150, 10:150]
    row, col = np.unravel_index(np.argmax(clear), clear.shape)
    rows, cols = np.mgrid[: kelvin.shape[0], : kelvin.shape[1]]
    distance = np.hypot(rows - (row + 80), cols - (col + 10)) / HOT_SPOT_RADIUS_PX
    region = (distance <= 1.0) & (kelvin >= HOT_SPOT_FIELD_KELVIN)
    rim, centre = HOT_SPOT_ADD_KELVIN
    return kelvin + np.where(region, rim + (centre - rim) * (1.0 - distance), 0.0)


@pytest.fixture(scope="module")
def hot(tmp_path_factory) -> HotScene:
    folder = tmp_path_factory.mktemp("florida")
    mtl = read_mtl(DATA / "test_MTL.txt")
    thermal = gdal.Open(str(DATA / "test_B10.tif"))
    kelvin = brightness_temperature_kelvin(thermal.ReadAsArray().astype(np.float64), mtl, "10").astype(
        np.float64
    )
    reflectance = {
        name: toa_reflectance(
            gdal.Open(str(DATA / f"test_B{band}.tif")).ReadAsArray().astype(np.float64), mtl, str(band)
        )
        for name, band in REFLECTIVE_BANDS.items()
    }
    names = resolve_package("mocolsk-x4-landsat-light").card.guidance_band_names
    guidance = compute_guidance(names, reflectance)
    gt, crs = thermal.GetGeoTransform(), thermal.GetProjection()
    guidance_path = write_raster(folder / "guidance_30m.tif", guidance, gt, crs, descriptions=list(names))
    return HotScene(with_hot_spot(kelvin), guidance, guidance_path, gt, crs, folder)


def test_the_bundled_crop_is_the_one_its_source_describes():
    listed = re.findall(
        r"^([0-9a-f]{64})  (\S+)$", (DATA / "SOURCE.md").read_text().split("files here")[1], re.M
    )
    assert len(listed) == 8
    for digest, name in listed:
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_the_scene_is_cloudy_and_the_hot_spot_volcanic(hot):
    assert 380.0 < hot.fine_kelvin.max() < 395.0
    assert hot.fine_kelvin.min() < 275.0  # cold cloud tops
    assert (hot.guidance[0] > 0.12).mean() > 0.1  # bright clouds in the blue band


@pytest.mark.parametrize("model", ["mocolsk-x4-landsat-light", "mocolsk-x8-landsat-light"])
def test_hot_spot_run_is_accepted_and_stays_within_the_local_coarse_range(model, hot, tmp_path):
    scale = resolve_package(model).card.scale
    scene, coarse = hot.scene(scale)
    assert coarse.max() > 375.0
    result, lines = run_downscale(scene, tmp_path / "mocolsk.tif", method="mocolsk", model=model)
    assert result.lst_units == "kelvin"
    assert any(
        line.startswith("RMSE on ")
        and "real scenes the network never saw" in line
        and f"recommended at x{scale}" in line
        for line in lines
    )
    output = read(result.output_path).astype(np.float64)
    assert (output != OUTPUT_NODATA).all()

    valid = np.ones(coarse.shape, bool)
    low, high = detail_bounds(coarse, valid, scale)
    assert excess_kelvin(output, low, high) < 1e-3
    assert PLAUSIBLE_MIN_KELVIN <= output.min() and output.max() <= PLAUSIBLE_MAX_KELVIN
    assert max_abs_residual(output, np.ones(output.shape, bool), coarse, valid, scale) < 1e-3

    bicubic = read(run_downscale(scene, tmp_path / "bicubic.tif")[0].output_path).astype(np.float64)
    bicubic_error = np.sqrt(np.mean((bicubic - hot.fine_kelvin) ** 2))
    assert np.sqrt(np.mean((output - bicubic) ** 2)) < bicubic_error
    assert np.sqrt(np.mean((output - hot.fine_kelvin) ** 2)) < 1.1 * bicubic_error

    # The pipeline clips exactly where the network alone (one tile here) leaves the bound.
    raw = Downscaler(model, threads=1).predict_kelvin(coarse.astype(np.float32), hot.guidance)
    outside = int(((raw < low) | (raw > high)).sum())
    percent = 100 * outside / output.size
    assert result.detail_clipped_px == outside
    assert f"Detail bound: {outside} pixels ({percent:.3g} %) clipped to the local coarse range" in lines
    metadata = gdal.Open(result.output_path).GetMetadata()
    assert metadata["MOCOLSK_DETAIL_BOUND_CLIPPED_PX"] == str(outside)
    assert float(metadata["MOCOLSK_DETAIL_BOUND_CLIPPED_PERCENT"]) == pytest.approx(percent, abs=1e-6)


def test_an_exploding_network_is_held_to_the_local_coarse_range(hot, tmp_path):
    """A random network with its head amplified 1000 times stands in for a model far outside
    its training data: alone it leaves the physical range; through the pipeline it cannot."""
    package = amplified_package(tmp_path / "model", 1000.0, "exploding_x4")
    scene, coarse = hot.scene(4)
    six_bands = hot.guidance[:6]
    raw = Downscaler(package, threads=1).predict_kelvin(coarse.astype(np.float32), six_bands)
    low, high = detail_bounds(coarse, np.ones(coarse.shape, bool), 4)
    assert excess_kelvin(raw, low, high) > 50.0
    assert raw.min() < PLAUSIBLE_MIN_KELVIN or raw.max() > PLAUSIBLE_MAX_KELVIN

    result, _ = run_downscale(scene, tmp_path / "out.tif", method="mocolsk", model=str(package.card_path))
    output = read(result.output_path).astype(np.float64)
    assert excess_kelvin(output, low, high) < 1e-3
    assert result.max_conservation_residual_k < 1e-3
    assert result.detail_clipped_percent > 50.0

"""MoCoLSK without a model: the bundled package whose scale matches the LST/guidance pixel
ratio is chosen and logged (the next coarser one when none matches); a ratio no bundled package
or cascade reaches, or a given model of another scale, is an error that names the packages that
would fit."""

import numpy as np
import pytest
from osgeo import gdal

from engine.errors import InputError

from .conftest import make_scene, run_downscale

ROWS, COLS = slice(40, 168), slice(60, 156)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict:
    """The small crop of the sample with its LST averaged to x3, x4 and x8 of the 30 m guidance."""
    return {scale: make_scene(tmp_path_factory.mktemp(f"x{scale}"), ROWS, COLS, scale) for scale in (3, 4, 8)}


@pytest.mark.parametrize("model", [None, "", "auto"])
def test_a_x4_pair_without_a_model_runs_with_the_x4_bundled_package_and_logs_why(model, scenes, tmp_path):
    result, lines = run_downscale(scenes[4], tmp_path / "out.tif", method="mocolsk", model=model)
    assert (result.model_name, result.scale) == ("mocolsk-x4-landsat-light", 4)
    assert (
        "Model: mocolsk-x4-landsat-light, the bundled package for x4 (LST pixel 120 m / guidance pixel 30 m)"
        in lines
    )


def test_a_x8_pair_without_a_model_runs_with_the_x8_bundled_package(scenes, tmp_path):
    result, lines = run_downscale(scenes[8], tmp_path / "out.tif", method="mocolsk")
    assert (result.model_name, result.scale) == ("mocolsk-x8-landsat-light", 8)
    assert any(
        line.startswith("Model: mocolsk-x8-landsat-light, the bundled package for x8 (LST pixel 240 m")
        for line in lines
    )


def test_a_ratio_no_bundled_package_matches_runs_the_next_coarser_one_and_says_so(scenes, tmp_path):
    result, lines = run_downscale(scenes[3], tmp_path / "out.tif", method="mocolsk")
    assert (result.model_name, result.scale, result.warped) == ("mocolsk-x4-landsat-light", 4, True)
    assert (
        "Model: mocolsk-x4-landsat-light, the bundled package for x4 (LST pixel 90 m / guidance pixel 30 m); no "
        "bundled scale fits x3, so the LST is averaged onto the coarser 120 m grid" in lines
    )


def test_a_ratio_no_bundled_package_or_cascade_reaches_is_an_error_listing_their_scales(scenes, tmp_path):
    scene = scenes[3]
    x0, _, _, y0, _, _ = scene.coarse_geotransform
    lst = scene.write_lst("lst_20km.tif", np.full((1, 1), 300.0, np.float32), unit="K")
    gdal.Open(lst, gdal.GA_Update).SetGeoTransform((x0, 20e3, 0, y0, 0, -20e3))
    with pytest.raises(InputError) as error:
        run_downscale(scene, tmp_path / "out.tif", lst_path=lst, method="mocolsk")
    message = str(error.value)
    assert "its pixel is 667 times the guidance pixel (20000 m / 30 m) and no model was given" in message
    assert (
        "bundled: mocolsk-x2-landsat-light (x2), mocolsk-x4-landsat-light (x4), mocolsk-x8-landsat-light (x8) "
        "(up to x512 in 3 steps)" in message
    )
    assert not (tmp_path / "out.tif").exists()


def test_a_given_model_of_another_scale_names_the_bundled_package_that_fits(scenes, tmp_path):
    with pytest.raises(
        InputError,
        match=r"matches no scale model 'mocolsk-x2-landsat-light' supports \(x2\).* "
        r"use mocolsk-x4-landsat-light \(x4\) instead",
    ):
        run_downscale(scenes[4], tmp_path / "out.tif", method="mocolsk", model="mocolsk-x2-landsat-light")

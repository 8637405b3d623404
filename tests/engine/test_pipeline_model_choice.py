"""MoCoLSK without a model: the bundled package whose scale matches the LST/guidance pixel
ratio is chosen and logged; a ratio no bundled package fits, or a given model of another
scale, is an error that names the packages that would fit."""

import pytest

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


def test_a_ratio_no_bundled_package_fits_is_an_error_listing_their_scales(scenes, tmp_path):
    with pytest.raises(InputError) as error:
        run_downscale(scenes[3], tmp_path / "out.tif", method="mocolsk")
    message = str(error.value)
    assert "its pixel is 3 times the guidance pixel (90 m / 30 m) and no model was given" in message
    assert (
        "bundled: mocolsk-x2-landsat-light (x2), mocolsk-x4-landsat-light (x4), mocolsk-x8-landsat-light (x8)"
        in message
    )
    assert "resample the LST to 2, 4 or 8 times the guidance pixel, or give a model package" in message
    assert not (tmp_path / "out.tif").exists()


def test_a_given_model_of_another_scale_names_the_bundled_package_that_fits(scenes, tmp_path):
    with pytest.raises(
        InputError,
        match=r"matches no scale model 'mocolsk-x2-landsat-light' supports \(x2\).* "
        r"use mocolsk-x4-landsat-light \(x4\) instead",
    ):
        run_downscale(scenes[4], tmp_path / "out.tif", method="mocolsk", model="mocolsk-x2-landsat-light")

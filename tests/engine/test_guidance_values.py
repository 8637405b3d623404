"""Guidance values against the card's units: scaled reflectance recognised, indices run past -1..1 by
negative reflectance accepted, other values refused."""

import numpy as np
import pytest

from engine.errors import InputError
from engine.guidance_values import (
    C2_SR_OFFSET,
    C2_SR_SCALE,
    PLAIN,
    check_guidance_values,
    index_problem,
    reflectance_encoding,
)

TOA = "TOA reflectance (unitless)"
INDEX = "index (unitless)"


def reflectance_sample(seed=0, size=4000):
    """Reflectance as a real scene has it: dark water, vegetation, a few bright roofs."""
    rng = np.random.default_rng(seed)
    return np.clip(
        np.concatenate([rng.normal(0.03, 0.01, size // 10), rng.gamma(4, 0.04, size - size // 10)]),
        -0.01,
        1.1,
    )


def as_c2_sr(reflectance):
    return np.round((reflectance - C2_SR_OFFSET) / C2_SR_SCALE).astype(np.uint16)


def test_reflectance_already_in_range_is_left_as_it_is():
    assert reflectance_encoding(reflectance_sample()) is PLAIN


def test_landsat_c2_sr_integers_are_recognised_by_value_and_convert_back():
    reflectance = reflectance_sample()
    encoding = reflectance_encoding(as_c2_sr(reflectance))
    assert encoding.name == "landsat_c2_sr" and "by value range" in encoding.reason
    assert np.abs(encoding.to_reflectance(as_c2_sr(reflectance)) - reflectance).max() < 2e-5


def test_landsat_c2_sr_named_sr_b_is_recognised_by_name_even_over_dark_water():
    dark = np.clip(np.random.default_rng(1).normal(0.01, 0.02, 2000), -0.05, 0.2)
    encoding = reflectance_encoding(as_c2_sr(dark), hints=["LC08_L2SP_015040_SR_B4.TIF"])
    assert encoding.name == "landsat_c2_sr" and "by name" in encoding.reason


def test_reflectance_scaled_x10000_is_recognised():
    reflectance = reflectance_sample(2)
    encoding = reflectance_encoding(np.round(reflectance * 10000).astype(np.int16))
    assert encoding.name == "x10000"
    assert np.abs(encoding.to_reflectance(np.round(reflectance * 10000)) - reflectance).max() < 1e-4


def test_out_of_range_floats_fit_no_encoding():
    assert reflectance_encoding(reflectance_sample() * 300.0) is None


def test_check_converts_c2_sr_bands_and_reads_indices_as_they_are():
    bands = [
        ("red", TOA, as_c2_sr(reflectance_sample(3)).astype(np.float32)),
        ("nir", TOA, as_c2_sr(reflectance_sample(4)).astype(np.float32)),
        ("ndvi", INDEX, np.random.default_rng(5).uniform(-0.3, 0.9, 500)),
    ]
    assert check_guidance_values(bands, "Guidance g.tif", "model 'x4'").name == "landsat_c2_sr"


@pytest.mark.parametrize(
    ("bands", "expected"),
    [
        (
            [("red", TOA, reflectance_sample() * 300.0)],
            r"Guidance g\.tif: guidance band 'red' has values .* outside the -0\.5 to 2 that TOA reflectance",
        ),
        (
            [("red", TOA, reflectance_sample()), ("ndvi", INDEX, np.full(100, 5000.0))],
            r"guidance band 'ndvi' has values 5000 to 5000 .* lies in -1 to 1 \(only 0 % .*\); give the index itself",
        ),
        (
            [("red", TOA, np.full(500, 60000.0))],
            r"guidance band 'red' has values 6e\+04 to 6e\+04 .*Convert the band to reflectance",
        ),
    ],
)
def test_check_refuses_values_no_encoding_explains(bands, expected):
    with pytest.raises(InputError, match=expected):
        check_guidance_values(bands, "Guidance g.tif", "model 'x4'")


def test_bands_of_other_units_are_not_checked():
    bands = [("dem", "m", np.full(100, 2500.0)), ("red", TOA, reflectance_sample())]
    assert check_guidance_values(bands, "Guidance g.tif", "model 'x4'") is PLAIN


def surface_reflectance_scene(water_share, seed=0, size=20000):
    """Green, red and NIR surface reflectance of land and of clear water whose NIR undershoots zero,
    as Collection 2 Level-2 delivers them."""
    rng = np.random.default_rng(seed)
    water = rng.random(size) < water_share
    land_red, land_nir = rng.uniform(0.02, 0.2, size), rng.uniform(0.15, 0.5, size)
    land_green = land_red + rng.uniform(0.0, 0.05, size)
    green = np.where(water, rng.normal(0.05, 0.004, size), land_green)
    red = np.where(water, rng.normal(0.025, 0.004, size), land_red)
    nir = np.where(water, rng.normal(-0.008, 0.004, size), land_nir)
    return green, red, nir


def textbook_indices(green, red, nir):
    """NDVI and NDWI as a raster calculator computes them: unbounded."""
    return (nir - red) / (nir + red), (green - nir) / (green + nir)


@pytest.mark.parametrize("water_share", [0.06, 0.59, 0.7])
def test_indices_from_surface_reflectance_with_negative_water_are_accepted_however_far_they_run(water_share):
    ndvi, ndwi = textbook_indices(*surface_reflectance_scene(water_share))
    assert np.mean(np.abs(ndvi) > 1) > 0.9 * water_share and np.abs(ndvi).max() > 50
    bands = [("red", TOA, reflectance_sample()), ("ndvi", INDEX, ndvi), ("ndwi", INDEX, ndwi)]
    assert check_guidance_values(bands, "Guidance g.tif", "model 'x4'") is PLAIN


def ndvi_sample(cloud_share=0.0, seed=0, size=20000):
    """NDVI of vegetation, soil and water, with a share of clouds (NDVI near 0)."""
    rng = np.random.default_rng(seed)
    clear = np.concatenate([rng.uniform(0.3, 0.9, size // 2), rng.uniform(0.05, 0.3, size // 4)])
    clear = np.concatenate([clear, rng.uniform(-0.6, -0.05, size - clear.size)])
    return np.where(rng.random(size) < cloud_share, rng.normal(0.0, 0.01, size), clear)


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (ndvi_sample() * 100.0, "only"),
        (np.round(ndvi_sample() * 10000), "only"),
        (np.round((ndvi_sample() + 1) * 127.5), "only"),
        (np.round(ndvi_sample(cloud_share=0.4) * 100), "whole numbers"),
        (np.random.default_rng(1).uniform(0, 2500, 5000), "only"),
        (np.random.default_rng(2).uniform(280, 320, 5000), "only"),
    ],
    ids=["x100", "x10000 integers", "0-255 byte", "x100 integers of a cloudy scene", "elevation", "kelvin"],
)
def test_a_scaled_index_or_a_band_that_is_no_index_is_refused(values, says):
    assert says in index_problem(values)
    with pytest.raises(
        InputError, match=r"guidance band 'ndvi' .* lies in -1 to 1 \(.*give the index itself"
    ):
        check_guidance_values([("ndvi", INDEX, values)], "Guidance g.tif", "model 'x4'")


def test_a_scene_mostly_of_water_with_negative_nir_is_refused_with_the_way_out():
    ndvi, _ = textbook_indices(*surface_reflectance_scene(0.85))
    with pytest.raises(InputError, match="leave the band out so that model 'x4' derives it"):
        check_guidance_values([("ndvi", INDEX, ndvi)], "Guidance g.tif", "model 'x4'")

"""Guidance values against the card's units: scaled reflectance recognised, other values refused."""

import numpy as np
import pytest

from engine.errors import InputError
from engine.guidance_values import (
    C2_SR_OFFSET,
    C2_SR_SCALE,
    PLAIN,
    check_guidance_values,
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
            r"guidance band 'ndvi' has values 5000 to 5000 .* lies in -1 to 1; give the index itself",
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

"""Normalised differences bounded to -1..1 when surface reflectance is negative (water, shadow)."""

import numpy as np
import pytest

from engine.bands import DERIVED_INDICES, map_bands
from engine.guidance import GUIDANCE_BANDS
from engine.indices import (
    MIN_DENOMINATOR_REFLECTANCE,
    NORMALISED_DIFFERENCES,
    IndexBounds,
    clipped_message,
    normalized_difference,
)


def textbook(a, b):
    return (np.asarray(a, np.float64) - b) / (np.asarray(a, np.float64) + b)


def test_ordinary_pixels_get_the_textbook_ratio():
    a, b = np.array([0.3, 0.05, 0.2]), np.array([0.1, 0.25, 0.2])
    np.testing.assert_allclose(normalized_difference(a, b), textbook(a, b), rtol=1e-6)


def test_water_with_negative_nir_is_minus_one_where_the_textbook_ratio_runs_past_it():
    nir, red = np.array([-0.008, -0.02, -0.0249]), np.array([0.025, 0.025, 0.025])
    assert np.all(textbook(nir, red) < -1)
    np.testing.assert_array_equal(normalized_difference(nir, red), [-1.0, -1.0, -1.0])


def test_where_the_sum_is_negative_the_sign_follows_the_band_with_signal_not_the_flipped_ratio():
    nir, red = np.array([-0.03]), np.array([0.02])
    assert textbook(nir, red)[0] > 1  # water would read as dense vegetation
    assert normalized_difference(nir, red)[0] == -1.0


def test_pixels_darker_than_the_noise_floor_shrink_towards_zero_continuously():
    floor = MIN_DENOMINATOR_REFLECTANCE
    assert normalized_difference(np.array([floor]), np.array([0.0]))[0] == pytest.approx(1.0)
    assert normalized_difference(np.array([floor / 2]), np.array([0.0]))[0] == pytest.approx(0.5)
    assert normalized_difference(np.array([-0.01]), np.array([-0.02]))[0] == 0.0


def test_no_reflectance_pair_leaves_minus_one_to_one_and_missing_stays_missing():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-0.2, 1.0, 100_000), rng.uniform(-0.2, 1.0, 100_000)
    index = normalized_difference(a, b)
    assert index.dtype == np.float32 and np.all(np.abs(index) <= 1.0)
    assert np.isnan(normalized_difference(np.array([np.nan]), np.array([0.2]))[0])


def test_bounds_count_negative_and_dark_pixels_and_say_so():
    counter = IndexBounds("ndvi")
    counter.add(np.array([0.3, -0.01, 0.002, np.nan]), np.array([0.1, 0.03, 0.003, 0.1]))
    assert (counter.valid_px, counter.negative_px, counter.dark_px) == (3, 1, 1)
    message = counter.message()
    assert message.startswith("Index ndvi (3 pixels): 1 (33 %) with negative reflectance")
    assert "1 (33 %) darker than 0.01 in both bands shrunk towards 0" in message
    assert IndexBounds("ndvi").message() is None


def test_a_given_index_beyond_the_range_is_reported_with_its_extremes():
    message = clipped_message("ndvi", np.array([0.5, -687.0, 467.0, 0.1]), sampled=True)
    assert message.startswith("Index ndvi (4 sampled pixels): 2 (50 %) outside -1..1")
    assert "-687 to 467" in message
    assert clipped_message("ndvi", np.array([0.5, -1.0])) is None


def test_the_engine_and_the_guidance_builder_know_the_same_indices():
    built = {name for name, band in GUIDANCE_BANDS.items() if band.difference_of}
    assert built == set(NORMALISED_DIFFERENCES)
    assert set(DERIVED_INDICES) <= built
    for name, parts in DERIVED_INDICES.items():
        assert GUIDANCE_BANDS[name].difference_of == parts


def test_derived_indices_are_bounded_and_given_ones_clipped_when_told_and_every_pixel_stays_valid():
    red = np.array([[0.025, 0.1]], np.float32)
    nir = np.array([[-0.008, 0.4]], np.float32)
    given_ndwi = np.array([[2.85, -0.5]], np.float32)
    stack, valid = np.stack([red, nir, given_ndwi]), np.ones((1, 2), bool)
    mapping = map_bands(("ndvi", "ndwi", "red"), ["red", "nir", "NDWI"], "Guidance", "model")
    assert mapping.given_indices() == [1]
    unclipped, _ = mapping.compose(stack, valid)
    assert unclipped[1, 0, 0] == np.float32(2.85)
    mapping = mapping.clipping(mapping.given_indices())
    bands, joint = mapping.compose(stack, valid)
    np.testing.assert_allclose(bands[0], [[-1.0, 0.6]], rtol=1e-6)
    np.testing.assert_allclose(bands[1], [[1.0, -0.5]])
    np.testing.assert_array_equal(bands[2], red)
    assert joint.all()
    messages = mapping.index_messages(stack, valid)
    assert messages[0].startswith("Index ndvi, derived from nir and red (2 sampled pixels): 1 (50 %)")
    assert messages[1].startswith("Index ndwi (2 sampled pixels): 1 (50 %) outside -1..1")

"""The bound on a network's detail: local coarse range plus margin, bicubic always inside,
masks and NaN honoured, and conservation that keeps the means within the bound."""

from __future__ import annotations

import numpy as np
import pytest

from engine.conservation import conserve_coarse_means, max_abs_residual
from engine.detail import DETAIL_FLOOR_KELVIN, bound_detail, detail_bounds, local_coarse_range
from engine.masks import expand
from engine.resample import upsample_bicubic
from engine.units import PLAUSIBLE_MAX_KELVIN, PLAUSIBLE_MIN_KELVIN

SCALE = 4


@pytest.fixture
def coarse_kelvin() -> np.ndarray:
    """A smooth 12 x 12 field of 285-305 K with one hot coarse pixel at 380 K."""
    rows, cols = np.mgrid[:12, :12]
    coarse = 295.0 + 10.0 * np.sin(rows / 3.0) * np.cos(cols / 4.0)
    coarse[6, 6] = 380.0
    return coarse


def test_local_range_is_over_the_valid_3x3_neighbourhood():
    coarse = np.arange(9.0).reshape(3, 3) + 280.0
    valid = np.ones((3, 3), bool)
    valid[0, 0] = False
    low, high = local_coarse_range(coarse, valid)
    assert (low[1, 1], high[1, 1]) == (281.0, 288.0)
    assert (low[0, 0], high[0, 0]) == (281.0, 284.0)
    assert (low[2, 2], high[2, 2]) == (284.0, 288.0)
    low, high = local_coarse_range(coarse, np.zeros((3, 3), bool))
    assert np.isnan(low).all() and np.isnan(high).all()


def test_bounds_are_the_local_range_widened_by_its_size_plus_the_floor(coarse_kelvin):
    valid = np.ones(coarse_kelvin.shape, bool)
    low, high = detail_bounds(coarse_kelvin, valid, SCALE, range_factor=1.0, floor_kelvin=0.5)
    local_low, local_high = local_coarse_range(coarse_kelvin, valid)
    margin = (local_high - local_low) + 0.5
    bicubic = upsample_bicubic(coarse_kelvin, SCALE)
    expected_low = np.minimum(expand(local_low - margin, SCALE), bicubic)
    expected_high = np.maximum(expand(local_high + margin, SCALE), bicubic)
    np.testing.assert_allclose(low, np.maximum(expected_low, PLAUSIBLE_MIN_KELVIN))
    np.testing.assert_allclose(high, np.minimum(expected_high, PLAUSIBLE_MAX_KELVIN))
    assert (
        low.min() >= PLAUSIBLE_MIN_KELVIN and high.max() == PLAUSIBLE_MAX_KELVIN
    )  # capped beside the hot pixel


def test_a_bicubic_prediction_is_never_clipped():
    rng = np.random.default_rng(0)
    coarse = 260.0 + 60.0 * rng.random((16, 16))  # rough enough for bicubic to overshoot
    valid = rng.random((16, 16)) > 0.2
    bicubic = upsample_bicubic(coarse, SCALE)
    bounded, clipped = bound_detail(bicubic, *detail_bounds(coarse, valid, SCALE))
    assert not clipped.any()
    np.testing.assert_array_equal(bounded, bicubic.astype(np.float32))


def test_sensible_detail_is_untouched(coarse_kelvin):
    valid = np.ones(coarse_kelvin.shape, bool)
    detail = 0.9 * DETAIL_FLOOR_KELVIN * np.sin(np.arange(48))[:, None] * np.cos(np.arange(48))[None, :]
    prediction = (upsample_bicubic(coarse_kelvin, SCALE) + detail).astype(np.float32)
    bounded, clipped = bound_detail(prediction, *detail_bounds(coarse_kelvin, valid, SCALE))
    assert not clipped.any()
    np.testing.assert_array_equal(bounded, prediction)


def test_a_wildly_wrong_prediction_is_clipped_to_the_local_range(coarse_kelvin):
    valid = np.ones(coarse_kelvin.shape, bool)
    rng = np.random.default_rng(1)
    prediction = upsample_bicubic(coarse_kelvin, SCALE) + rng.normal(0.0, 80.0, (48, 48))
    low, high = detail_bounds(coarse_kelvin, valid, SCALE)
    bounded, clipped = bound_detail(prediction, low, high)
    outside = (prediction < low) | (prediction > high)
    assert outside.mean() > 0.8
    np.testing.assert_array_equal(clipped, outside)
    assert ((bounded >= low - 1e-4) & (bounded <= high + 1e-4)).all()
    assert PLAUSIBLE_MIN_KELVIN <= bounded.min() and bounded.max() <= PLAUSIBLE_MAX_KELVIN
    # Far from the hot pixel the bound is tight: within the local 285-305 K field plus its own spread.
    assert bounded[:8, :8].min() > 260.0 and bounded[:8, :8].max() < 330.0


def test_nan_and_masked_coarse_pixels(coarse_kelvin):
    coarse = coarse_kelvin.copy()
    valid = np.ones(coarse.shape, bool)
    coarse[2, 2], valid[2, 2] = np.nan, False
    valid[:, 10:] = False  # coarse column 11 has no valid neighbour
    prediction = np.full((48, 48), 350.0)
    prediction[0, 0], prediction[0, 47] = np.nan, 450.0
    low, high = detail_bounds(coarse, valid, SCALE)
    bounded, clipped = bound_detail(prediction, low, high)
    assert np.isnan(bounded[0, 0]) and not clipped[0, 0]
    assert np.isfinite(low).all() and np.isfinite(high).all()
    local_low, local_high = local_coarse_range(coarse, valid)
    inside_nan = (2 * SCALE + 1, 2 * SCALE + 1)
    assert high[inside_nan] == pytest.approx(2 * local_high[2, 2] - local_low[2, 2] + DETAIL_FLOOR_KELVIN)
    assert bounded[inside_nan] == pytest.approx(high[inside_nan]) and clipped[inside_nan]
    # Without a valid neighbour only the physical range applies.
    assert (bounded[1:, 44:] == 350.0).all() and bounded[0, 47] == PLAUSIBLE_MAX_KELVIN
    assert not clipped[1:, 44:].any() and clipped[0, 47]


def test_conservation_within_bounds_keeps_means_exact_and_every_pixel_inside(coarse_kelvin):
    valid = np.ones(coarse_kelvin.shape, bool)
    fine_valid = np.ones((48, 48), bool)
    rng = np.random.default_rng(2)
    prediction = upsample_bicubic(coarse_kelvin, SCALE) + rng.normal(0.0, 80.0, (48, 48))
    low, high = detail_bounds(coarse_kelvin, valid, SCALE)
    bounded, _ = bound_detail(prediction, low, high)

    plain = conserve_coarse_means(bounded, fine_valid, coarse_kelvin, valid, SCALE)
    assert ((plain < low - 1.0) | (plain > high + 1.0)).any()  # conservation alone leaves the bound

    kept = conserve_coarse_means(
        bounded, fine_valid, coarse_kelvin, valid, SCALE, fine_low_kelvin=low, fine_high_kelvin=high
    )
    assert max_abs_residual(kept, fine_valid, coarse_kelvin, valid, SCALE) < 1e-4
    assert ((kept >= low - 1e-4) & (kept <= high + 1e-4)).all()


def test_conservation_within_bounds_changes_nothing_when_the_plain_result_is_inside(coarse_kelvin):
    coarse_kelvin[6, 6] = 300.0
    valid = np.ones(coarse_kelvin.shape, bool)
    fine_valid = np.ones((48, 48), bool)
    fine_valid[5:9, 20:30] = False
    prediction = upsample_bicubic(coarse_kelvin, SCALE) + 0.2 * np.cos(np.arange(48))[None, :]
    low, high = detail_bounds(coarse_kelvin, valid, SCALE)
    plain = conserve_coarse_means(prediction, fine_valid, coarse_kelvin, valid, SCALE)
    assert ((plain >= low) & (plain <= high)).all()
    kept = conserve_coarse_means(
        prediction, fine_valid, coarse_kelvin, valid, SCALE, fine_low_kelvin=low, fine_high_kelvin=high
    )
    np.testing.assert_array_equal(kept, plain)

"""The uncertainty layer's pure parts: orientations and their inverse, the spread of members,
DMS's per-tree members, and the calibration figures."""

import numpy as np
import pytest

from engine.classic import Dms, coarse_samples
from engine.inference import Downscaler
from engine.resample import upsample_bicubic
from engine.uncertainty import (
    ORIENTATIONS,
    calibration,
    card_sigma_scale,
    cell_mean,
    cell_spread_kelvin,
    fit_sigma_scale,
    orient,
    oriented_predictions,
    spread_kelvin,
    unorient,
)

SCALE = 4


@pytest.mark.parametrize("k", range(ORIENTATIONS))
def test_unorient_undoes_orient_for_every_orientation_of_a_non_square_stack(k):
    stack = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    assert np.array_equal(unorient(orient(stack, k), k), stack)


def test_the_eight_orientations_are_distinct():
    tile = np.arange(16, dtype=np.float32).reshape(4, 4)
    seen = {orient(tile, k).tobytes() for k in range(ORIENTATIONS)}
    assert len(seen) == ORIENTATIONS


def test_an_orientation_equivariant_predictor_has_zero_spread():
    rng = np.random.default_rng(0)
    lst = rng.normal(300, 3, (6, 7)).astype(np.float32)
    guidance = rng.normal(0, 1, (2, 24, 28)).astype(np.float32)

    def repeat(coarse, _guidance):
        return np.kron(coarse, np.ones((SCALE, SCALE), np.float32))

    members = oriented_predictions(repeat, lst, guidance)
    assert members.shape == (ORIENTATIONS, 24, 28)
    assert np.array_equal(members[0], repeat(lst, guidance))
    assert spread_kelvin(members).max() == 0.0


def test_a_network_varies_across_orientations_and_member_zero_is_its_plain_prediction(tiny_package_x4):
    rng = np.random.default_rng(1)
    downscaler = Downscaler(tiny_package_x4, device="cpu", threads=1)
    channels = len(downscaler.guidance_band_names)
    lst = rng.normal(300, 3, (8, 8)).astype(np.float32)
    guidance = rng.normal(0.2, 0.05, (channels, 32, 32)).astype(np.float32)
    members = oriented_predictions(downscaler.predict_kelvin, lst, guidance)
    np.testing.assert_allclose(members[0], downscaler.predict_kelvin(lst, guidance), atol=1e-4)
    assert spread_kelvin(members).mean() > 1e-3


def test_spread_is_the_weighted_standard_deviation():
    members = np.array([[[1.0]], [[3.0]], [[5.0]]])
    assert spread_kelvin(members)[0, 0] == pytest.approx(np.std([1.0, 3.0, 5.0]))
    # weights 1:1:2 -> mean 3.5, variance (6.25 + 0.25 + 2 * 2.25) / 4
    assert spread_kelvin(members, np.array([1.0, 1.0, 2.0]))[0, 0] == pytest.approx(np.sqrt(11 / 4))


def test_dms_members_average_to_its_prediction_and_disagree_where_the_relation_is_unsure():
    rng = np.random.default_rng(2)
    fine = 64
    guidance = rng.uniform(0, 1, (3, fine, fine)).astype(np.float32)
    truth = 300 + 10 * np.sin(4 * guidance[0]) + 3 * guidance[1] ** 2 + rng.normal(0, 0.5, (fine, fine))
    lst = truth.reshape(fine // SCALE, SCALE, fine // SCALE, SCALE).mean(axis=(1, 3)).astype(np.float32)
    valid = np.ones((fine, fine), bool)
    coarse_valid = np.ones(lst.shape, bool)
    dms = Dms(SCALE, channels=3)
    dms.add_samples(coarse_samples(lst, coarse_valid, guidance, valid, SCALE))
    dms.finish_fit()
    members, weights = dms.predict_members(lst, coarse_valid, guidance, valid)
    assert members.shape[1:] == (fine, fine) and len(members) == len(weights) >= dms.settings.trees
    combined = np.tensordot(weights / weights.sum(), members, axes=1)
    np.testing.assert_allclose(dms.predict(lst, coarse_valid, guidance, valid), combined, atol=1e-4)
    assert spread_kelvin(members, weights).mean() > 0.01


def test_calibration_of_a_gaussian_with_its_true_sigma_is_68_and_95_percent():
    rng = np.random.default_rng(3)
    sigma = rng.uniform(0.2, 2.0, 200_000)
    error = rng.normal(0, sigma)
    result = calibration(error, sigma)
    assert result.within_1_sigma == pytest.approx(0.6827, abs=0.005)
    assert result.within_2_sigma == pytest.approx(0.9545, abs=0.005)
    assert result.pixels == 200_000
    too_small = calibration(error, sigma / 4)
    assert too_small.within_1_sigma < 0.3


def test_the_fitted_factor_recovers_how_much_too_small_sigma_is():
    rng = np.random.default_rng(4)
    sigma = rng.uniform(0.2, 2.0, 100_000)
    error = rng.normal(0, 3 * sigma)
    assert fit_sigma_scale(error, sigma) == pytest.approx(3.0, rel=0.03)
    assert calibration(error, fit_sigma_scale(error, sigma) * sigma).within_1_sigma == pytest.approx(
        0.6827, abs=0.005
    )


def test_calibration_refuses_when_nothing_can_be_scored():
    with pytest.raises(ValueError, match="no pixel"):
        calibration(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="no pixel"):
        fit_sigma_scale(np.array([1.0]), np.array([0.0]))


def test_bicubic_alone_is_equivariant_too():
    lst = np.random.default_rng(5).normal(300, 3, (8, 8))
    members = oriented_predictions(lambda c, _g: upsample_bicubic(c, SCALE), lst, np.zeros((1, 32, 32)))
    assert spread_kelvin(members).max() < 1e-3


def test_every_bundled_card_holds_a_sigma_scale_measured_on_held_out_scenes():
    from engine.package import bundled_packages, load_package

    for name, path in bundled_packages().items():
        card = load_package(path, verify=False).card
        factor = card_sigma_scale(card.uncertainty_calibration)
        assert factor is not None and factor > 1.0, name
        assert card.uncertainty_calibration["protocol"] == "native"
        assert card.uncertainty_calibration["mocolsk"]["test_scaled"]["pixels"] > 10_000, name


@pytest.mark.parametrize("scale", [3, 4])
def test_averaging_over_a_coarse_pixel_removes_a_pattern_repeating_every_coarse_pixel_and_keeps_a_ramp(scale):
    rows, cols = 10 * scale, 12 * scale
    ramp = 0.01 * np.arange(cols)[None, :] + 0.02 * np.arange(rows)[:, None]
    pattern = np.tile(np.random.default_rng(0).normal(size=(scale, scale)), (10, 12))
    pattern -= pattern.mean()
    averaged = cell_mean(ramp + pattern, np.ones((rows, cols), bool), scale)
    inner = (slice(scale, -scale), slice(scale, -scale))
    np.testing.assert_allclose(averaged[inner], ramp[inner], atol=1e-12)


def test_the_cell_spread_keeps_the_mean_variance_and_ignores_masked_pixels():
    members = np.random.default_rng(1).normal(size=(8, 24, 24))
    valid = np.ones((24, 24), bool)
    valid[:, 12:] = False
    members[:, ~valid] = 1e6
    spread = cell_spread_kelvin(members, None, valid, SCALE)
    raw = spread_kelvin(members)
    assert np.mean(spread[valid] ** 2) == pytest.approx(np.mean(raw[valid] ** 2), rel=0.05)
    assert spread[valid].max() < 10

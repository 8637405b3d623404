"""The calibration measurement behind the README's uncertainty table, on a small real crop: errors
of the written output against the truth, the spread of the members, and a factor fitted on the
validation samples only."""

import numpy as np
import pytest

from engine.uncertainty import ONE_SIGMA_SHARE
from training.datasets import sample_from_fine
from training.uncertainty import dms_method, errors_and_sigmas, measure

SCALE = 4


@pytest.fixture(scope="module")
def samples():
    from tests.conftest import LANDSAT5
    from training.landsat_scenes import read_landsat_scene

    scene = read_landsat_scene(next(LANDSAT5.glob("*_MTL.txt")))
    crops = [(slice(0, 96), slice(0, 96)), (slice(96, 192), slice(96, 192))]
    return [
        sample_from_fine(f"crop{i}", scene.lst_kelvin[r, c], scene.guidance[:, r, c], SCALE)
        for i, (r, c) in enumerate(crops)
    ]


def test_dms_errors_are_of_its_weighted_mean_and_sigmas_of_its_trees(samples):
    errors, sigmas = errors_and_sigmas(samples[:1], dms_method(SCALE))
    assert errors.shape == sigmas.shape == (int(samples[0].mask.sum()),)
    assert np.isfinite(errors).all() and (sigmas >= 0).all() and sigmas.mean() > 0


def test_the_factor_is_fitted_on_validation_and_only_measured_on_test(samples):
    result = measure(dms_method(SCALE), samples[:1], samples[1:])
    errors, sigmas = errors_and_sigmas(samples[:1], dms_method(SCALE))
    scaled = np.mean(np.abs(errors) <= result["sigma_scale"] * sigmas)
    assert scaled == pytest.approx(ONE_SIGMA_SHARE, abs=0.01)
    for key in ("validation_raw", "test_raw", "test_scaled"):
        assert 0.0 <= result[key]["within_1_sigma"] <= result[key]["within_2_sigma"] <= 1.0
    assert result["test_scaled"]["pixels"] == int(samples[1].mask.sum())

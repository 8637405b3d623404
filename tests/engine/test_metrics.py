"""Masked accuracy metrics in Kelvin: definitions, masking and SSIM against a direct computation."""

from __future__ import annotations

import numpy as np
import pytest

from engine import metrics

from .conftest import brightness_temperature_kelvin


@pytest.fixture(scope="module")
def reference():
    return brightness_temperature_kelvin().astype(np.float64)[:96, :80]


def test_a_perfect_prediction_scores_perfectly(reference):
    scores = metrics.evaluate(reference, reference)
    assert scores["rmse_k"] == scores["mae_k"] == scores["bias_k"] == scores["rsd_k"] == 0.0
    assert scores["cc"] == pytest.approx(1.0)
    assert scores["ssim"] == pytest.approx(1.0)
    assert scores["psnr_db"] == float("inf")
    assert scores["pixels"] == reference.size


def test_a_constant_offset_is_bias_not_residual_spread(reference):
    scores = metrics.evaluate(reference + 1.5, reference)
    assert scores["bias_k"] == pytest.approx(1.5)
    assert scores["rmse_k"] == pytest.approx(1.5)
    assert scores["mae_k"] == pytest.approx(1.5)
    assert scores["rsd_k"] == pytest.approx(0.0, abs=1e-9)
    assert scores["cc"] == pytest.approx(1.0)


def test_rmse_psnr_and_cc_follow_their_definitions(reference):
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.3, reference.shape)
    pred = reference + noise
    assert metrics.rmse(pred, reference) == pytest.approx(np.sqrt(np.mean(noise**2)))
    assert metrics.rsd(pred, reference) == pytest.approx(np.std(noise))
    assert metrics.cc(pred, reference) == pytest.approx(np.corrcoef(pred.ravel(), reference.ravel())[0, 1])
    peak = reference.max() - reference.min()
    assert metrics.psnr(pred, reference) == pytest.approx(20 * np.log10(peak / np.sqrt(np.mean(noise**2))))


def test_masked_and_nan_pixels_do_not_count(reference):
    pred = reference.copy()
    valid = np.ones(reference.shape, bool)
    pred[10:20, 10:20] += 50.0
    valid[10:20, 10:20] = False
    pred[0, 0] = np.nan
    scores = metrics.evaluate(pred, reference, valid)
    assert scores["rmse_k"] == 0.0
    assert scores["ssim"] == pytest.approx(1.0)
    assert scores["pixels"] == reference.size - 100 - 1


def test_ssim_equals_a_direct_gaussian_window_computation(reference):
    """Windows are truncated at the edges and renormalised, as for masked pixels."""
    rng = np.random.default_rng(1)
    ref = reference[:24, :20]
    pred = ref + rng.normal(0.0, 0.5, ref.shape)
    value_range = ref.max() - ref.min()
    c1, c2 = (0.01 * value_range) ** 2, (0.03 * value_range) ** 2
    g = np.exp(-(np.arange(-5, 6) ** 2) / (2 * 1.5**2))
    values = []
    for i in range(ref.shape[0]):
        for j in range(ref.shape[1]):
            rows, cols = slice(max(i - 5, 0), i + 6), slice(max(j - 5, 0), j + 6)
            window = np.outer(
                g[5 - (i - rows.start) :][: ref[rows].shape[0]],
                g[5 - (j - cols.start) :][: ref[:, cols].shape[1]],
            )
            window /= window.sum()
            x, y = pred[rows, cols], ref[rows, cols]
            mx, my = (window * x).sum(), (window * y).sum()
            vx, vy = (window * x * x).sum() - mx**2, (window * y * y).sum() - my**2
            cov = (window * x * y).sum() - mx * my
            values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert metrics.ssim(pred, ref) == pytest.approx(np.mean(values), rel=1e-9)
    assert metrics.ssim(pred, ref) < 0.9


def test_shape_mismatch_and_empty_masks_are_errors(reference):
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.rmse(reference, reference[:-1])
    with pytest.raises(ValueError, match="no pixel is valid"):
        metrics.rmse(reference, reference, np.zeros(reference.shape, bool))


def test_evaluate_returns_exactly_the_metrics_of_the_descriptor_table_in_its_order():
    from engine.metrics import METRIC_BY_KEY, METRICS, evaluate

    rng = np.random.default_rng(0)
    ref = (290 + rng.normal(0, 2, (32, 32))).astype(np.float32)
    values = evaluate(ref + 0.5, ref)
    assert list(values) == [metric.key for metric in METRICS]
    assert values["bias_k"] == pytest.approx(0.5, abs=1e-4)
    assert METRIC_BY_KEY["rmse_k"].heading() == "RMSE (K)"
    assert METRIC_BY_KEY["cc"].heading() == "CC"

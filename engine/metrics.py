"""Accuracy of a downscaled LST against a reference, in Kelvin, over valid pixels only.

Pure numpy over 2-D arrays: ``pred`` and ``ref`` in Kelvin and an optional ``valid`` mask;
pixels that are NaN in either array are always excluded. Shared by the CLI, training and
the benchmark so that every reported number means the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SSIM_SIGMA_PX = 1.5
SSIM_RADIUS_PX = 5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


@dataclass(frozen=True)
class Metric:
    """How one metric is named and reported everywhere: its key in result dicts and model cards,
    a short name (the Processing output's), a label and its unit ("" when unitless)."""

    key: str
    name: str
    label: str
    unit: str

    def heading(self) -> str:
        """The metric's short name with its unit, e.g. "RMSE (K)", for table headings."""
        return f"{self.name} ({self.unit})" if self.unit else self.name

    def describe(self) -> str:
        """The label with its unit, e.g. "Root-mean-square error (K)"."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


# The metrics `evaluate` returns, in the order reports list them.
METRICS = (
    Metric("rmse_k", "RMSE", "Root-mean-square error", "K"),
    Metric("mae_k", "MAE", "Mean absolute error", "K"),
    Metric("bias_k", "BIAS", "Bias (prediction minus reference)", "K"),
    Metric("cc", "CC", "Correlation coefficient", ""),
    Metric("rsd_k", "RSD", "Residual standard deviation", "K"),
    Metric("ssim", "SSIM", "Structural similarity", ""),
    Metric("psnr_db", "PSNR", "Peak signal-to-noise ratio", "dB"),
    Metric("pixels", "PIXELS", "Pixels compared", ""),
)
METRIC_BY_KEY = {metric.key: metric for metric in METRICS}


def valid_pixels(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Pixels finite in both arrays (and inside ``valid`` when given)."""
    if pred.shape != ref.shape:
        raise ValueError(f"prediction {pred.shape} and reference {ref.shape} differ in shape")
    mask = np.isfinite(pred) & np.isfinite(ref)
    return mask if valid is None else mask & valid.astype(bool)


def _pairs(pred, ref, valid) -> tuple[np.ndarray, np.ndarray]:
    mask = valid_pixels(pred, ref, valid)
    if not mask.any():
        raise ValueError("no pixel is valid in both the prediction and the reference")
    return pred[mask].astype(np.float64), ref[mask].astype(np.float64)


def rmse(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None) -> float:
    p, r = _pairs(pred, ref, valid)
    return float(np.sqrt(np.mean((p - r) ** 2)))


def mae(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None) -> float:
    p, r = _pairs(pred, ref, valid)
    return float(np.mean(np.abs(p - r)))


def bias(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean of prediction minus reference (positive: too warm)."""
    p, r = _pairs(pred, ref, valid)
    return float(np.mean(p - r))


def cc(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Pearson correlation coefficient (NaN when either side is constant)."""
    p, r = _pairs(pred, ref, valid)
    dp, dr = p - p.mean(), r - r.mean()
    denominator = np.sqrt(np.sum(dp**2) * np.sum(dr**2))
    return float(np.sum(dp * dr) / denominator) if denominator > 0 else float("nan")


def rsd(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Standard deviation of the residual (prediction minus reference): the error without bias."""
    p, r = _pairs(pred, ref, valid)
    return float(np.std(p - r))


def data_range(ref: np.ndarray, valid: np.ndarray | None = None) -> float:
    values = ref[valid_pixels(ref, ref, valid)]
    return float(values.max() - values.min()) if values.size else 0.0


def psnr(
    pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None, value_range: float | None = None
) -> float:
    """Peak signal-to-noise ratio in dB with the reference's range (max - min) as the peak."""
    value_range = data_range(ref, valid) if value_range is None else value_range
    error = rmse(pred, ref, valid)
    if error == 0:
        return float("inf")
    return float(20.0 * np.log10(value_range / error)) if value_range > 0 else float("nan")


def ssim(
    pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None, value_range: float | None = None
) -> float:
    """Mean structural similarity (Gaussian window, sigma 1.5 px) over valid pixels.

    Local statistics are normalised by the valid weight under the window, so masked pixels
    neither count nor drag the neighbourhood towards a fill value.
    """
    mask = valid_pixels(pred, ref, valid)
    if not mask.any():
        raise ValueError("no pixel is valid in both the prediction and the reference")
    value_range = data_range(ref, mask) if value_range is None else value_range
    c1, c2 = (SSIM_K1 * value_range) ** 2, (SSIM_K2 * value_range) ** 2
    weight = mask.astype(np.float64)
    x = np.where(mask, pred, 0.0).astype(np.float64)
    y = np.where(mask, ref, 0.0).astype(np.float64)
    norm = _gaussian(weight)
    with np.errstate(invalid="ignore", divide="ignore"):

        def local(a):
            return _gaussian(a) / norm

        mu_x, mu_y = local(x), local(y)
        var_x = local(x * x) - mu_x**2
        var_y = local(y * y) - mu_y**2
        cov = local(x * y) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
            (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        )
    return float(np.mean(ssim_map[mask]))


def evaluate(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """All metrics at once: RMSE, MAE, bias, CC, RSD (K), SSIM, PSNR (dB), and the pixel count."""
    mask = valid_pixels(pred, ref, valid)
    values = {
        "rmse_k": rmse(pred, ref, mask),
        "mae_k": mae(pred, ref, mask),
        "bias_k": bias(pred, ref, mask),
        "cc": cc(pred, ref, mask),
        "rsd_k": rsd(pred, ref, mask),
        "ssim": ssim(pred, ref, mask),
        "psnr_db": psnr(pred, ref, mask),
        "pixels": int(mask.sum()),
    }
    return {metric.key: values[metric.key] for metric in METRICS}


def _gaussian(a: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter with zero padding (the caller normalises by the filtered mask)."""
    offsets = np.arange(-SSIM_RADIUS_PX, SSIM_RADIUS_PX + 1)
    kernel = np.exp(-(offsets**2) / (2 * SSIM_SIGMA_PX**2))
    kernel /= kernel.sum()
    for axis in (0, 1):
        padded = np.pad(a, [(SSIM_RADIUS_PX, SSIM_RADIUS_PX) if i == axis else (0, 0) for i in range(2)])
        size = a.shape[axis]
        a = sum(w * np.take(padded, np.arange(k, k + size), axis=axis) for k, w in enumerate(kernel))
    return a

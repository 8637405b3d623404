"""Per-pixel uncertainty of a downscaled LST, in Kelvin, and how well it is calibrated.

- MoCoLSK: test-time augmentation. The network sees the tile in the 8 orientations of the
  square (4 rotations, each also mirrored); every prediction is turned back, and the spread
  of the 8 is the uncertainty. The output itself stays the unaugmented prediction.
- DMS: the spread of its bagged regression trees, each tree weighted as in the prediction.

Each member goes through the same detail bound and coarse-pixel conservation as the output
before the spread is taken, so the uncertainty describes what is written; the variance is then
averaged over one coarse pixel around each fine pixel (`cell_spread_kelvin`), which removes a
lattice of the coarse grid that the network's up-projection puts into the raw spread. A card may hold a
``sigma_scale`` fitted on validation blocks (never test scenes) that makes 68 % of the errors
fall within one sigma; the raw spread is multiplied by it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

ORIENTATIONS = 8
ONE_SIGMA_SHARE = 0.6827
TWO_SIGMA_SHARE = 0.9545


def orient(array: np.ndarray, k: int) -> np.ndarray:
    """``array`` (..., H, W) in orientation ``k`` (0-7): rotated by 90 degrees ``k % 4`` times,
    then mirrored left-right when ``k >= 4``."""
    out = np.rot90(array, k % 4, axes=(-2, -1))
    if k >= 4:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


def unorient(array: np.ndarray, k: int) -> np.ndarray:
    """The inverse of ``orient``: ``unorient(orient(a, k), k) == a``."""
    if k >= 4:
        array = array[..., ::-1]
    return np.ascontiguousarray(np.rot90(array, -(k % 4), axes=(-2, -1)))


def oriented_predictions(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray], lst_kelvin: np.ndarray, guidance: np.ndarray
) -> np.ndarray:
    """(8, H, W): ``predict(lst, guidance)`` on each orientation of the coarse LST (h, w) and the
    guidance (C, H, W), turned back to the input's orientation; member 0 is the plain prediction."""
    return np.stack(
        [unorient(predict(orient(lst_kelvin, k), orient(guidance, k)), k) for k in range(ORIENTATIONS)]
    )


def spread_kelvin(members: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted standard deviation over the first axis of ``members`` (M, H, W), float32.

    ``weights`` (M,) need not sum to one; equal weights when omitted."""
    members = members.astype(np.float64)
    w = np.ones(len(members)) if weights is None else np.asarray(weights, np.float64)
    w = (w / w.sum())[:, None, None]
    mean = (w * members).sum(axis=0)
    variance = (w * (members - mean) ** 2).sum(axis=0)
    return np.sqrt(np.maximum(variance, 0.0)).astype(np.float32)


def cell_window(scale: int) -> np.ndarray:
    """Weights of a window one coarse pixel wide centred on a fine pixel: ``scale`` ones for an
    odd scale, else ``scale - 1`` ones between two halves. Either sums one period of any pattern
    that repeats every coarse pixel, so the pattern averages out."""
    if scale % 2:
        return np.ones(scale)
    return np.concatenate([[0.5], np.ones(scale - 1), [0.5]])


def cell_mean(values: np.ndarray, valid: np.ndarray, scale: int) -> np.ndarray:
    """Mean of ``values`` (H, W) over the valid pixels of the coarse-pixel-wide window centred on
    each pixel (`cell_window`, both axes); NaN where the window holds no valid pixel."""
    kernel = cell_window(scale)
    total, weight = np.where(valid, values, 0.0).astype(np.float64), valid.astype(np.float64)
    for axis in (0, 1):
        total, weight = (_correlate(a, kernel, axis) for a in (total, weight))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan)


def _correlate(values: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """``values`` correlated with a symmetric odd-length ``kernel`` along ``axis``, zero outside."""
    half = len(kernel) // 2
    size = values.shape[axis]
    widths = [(0, 0), (0, 0)]
    widths[axis] = (half, half)
    padded = np.pad(values, widths)
    return sum(
        weight * np.take(padded, range(offset, offset + size), axis=axis)
        for offset, weight in enumerate(kernel)
    )


def cell_spread_kelvin(
    members: np.ndarray, weights: np.ndarray | None, valid: np.ndarray, scale: int
) -> np.ndarray:
    """The members' spread (`spread_kelvin`) as the root of their variance averaged over a coarse
    pixel around each fine pixel (`cell_mean`), float32.

    A network's up-projection treats each position within a coarse pixel differently, and its
    orientations disagree more on the coarse-pixel edges than inside: the raw spread shows the
    coarse grid as a lattice that says nothing about the LST. Averaging the variance over one coarse
    pixel removes any pattern that repeats every coarse pixel and keeps the mean variance."""
    variance = spread_kelvin(members, weights).astype(np.float64) ** 2
    return np.sqrt(cell_mean(variance, valid, scale)).astype(np.float32)


@dataclass(frozen=True)
class Calibration:
    """Share of absolute errors within one and two sigma, over ``pixels`` scored pixels;
    a calibrated Gaussian uncertainty gives about 0.683 and 0.954."""

    within_1_sigma: float
    within_2_sigma: float
    pixels: int

    def to_dict(self) -> dict:
        return asdict(self)


def calibration(error_kelvin: np.ndarray, sigma_kelvin: np.ndarray) -> Calibration:
    """How often |error| <= sigma and <= 2 sigma, over the finite pairs."""
    error, sigma = np.abs(np.ravel(error_kelvin)), np.ravel(sigma_kelvin)
    usable = np.isfinite(error) & np.isfinite(sigma)
    if not usable.any():
        raise ValueError("no pixel has both an error and an uncertainty")
    error, sigma = error[usable], sigma[usable]
    return Calibration(float(np.mean(error <= sigma)), float(np.mean(error <= 2 * sigma)), int(usable.sum()))


def fit_sigma_scale(error_kelvin: np.ndarray, sigma_kelvin: np.ndarray) -> float:
    """The single factor that puts ``ONE_SIGMA_SHARE`` of the |errors| within factor x sigma."""
    error, sigma = np.abs(np.ravel(error_kelvin)), np.ravel(sigma_kelvin)
    usable = np.isfinite(error) & np.isfinite(sigma) & (sigma > 0)
    if not usable.any():
        raise ValueError("no pixel has both an error and a positive uncertainty")
    return float(np.quantile(error[usable] / sigma[usable], ONE_SIGMA_SHARE))


def card_sigma_scale(uncertainty_calibration: dict, method: str = "mocolsk") -> float | None:
    """The factor a card's ``uncertainty_calibration`` fitted for ``method``, or None if never measured."""
    factor = uncertainty_calibration.get(method, {}).get("sigma_scale")
    return float(factor) if factor else None

"""Coarse-pixel conservation: make the fine LST average back to the coarse LST it came from.

The residual of each coarse pixel is first spread smoothly (bilinear) a few times, which
removes most of it without block edges, then what remains is added block-wise, which
makes the means exact up to float rounding. Given per-pixel bounds (engine.detail), the
block-wise step keeps every pixel within them and the means still exact.
"""

from __future__ import annotations

import numpy as np

from .masks import block_mean, expand
from .resample import upsample_bilinear

SMOOTH_ITERATIONS = 4
# Halvings of the search for a bounded block shift: enough for float64 precision on any LST range.
BOUNDED_SHIFT_ITERATIONS = 60


def coarse_residual(
    fine_kelvin: np.ndarray,
    fine_valid: np.ndarray,
    coarse_kelvin: np.ndarray,
    coarse_valid: np.ndarray,
    scale: int,
    dtype: type = np.float64,
) -> np.ndarray:
    """Coarse LST minus the mean of its valid fine pixels (summed in ``dtype``); zero where either
    side has nothing."""
    mean, count = block_mean(fine_kelvin, fine_valid, scale, dtype)
    usable = coarse_valid & (count > 0)
    return np.where(usable, coarse_kelvin - np.where(usable, mean, 0.0), 0.0)


def conserve_coarse_means(
    fine_kelvin: np.ndarray,
    fine_valid: np.ndarray,
    coarse_kelvin: np.ndarray,
    coarse_valid: np.ndarray,
    scale: int,
    smooth_iterations: int = SMOOTH_ITERATIONS,
    fine_low_kelvin: np.ndarray | None = None,
    fine_high_kelvin: np.ndarray | None = None,
) -> np.ndarray:
    """Correct ``fine_kelvin`` so that each valid coarse pixel's fine mean equals its LST.

    Shapes: fine (h*scale, w*scale), coarse (h, w); returns float32. With bounds (fine
    shape, each coarse LST strictly inside the range of its block's bounds), the result
    lies within them.
    """
    # The smoothing only has to remove most of the residual, so it runs in float32 (half the
    # memory traffic); the block-wise step that makes the means exact runs in float64.
    smooth = fine_kelvin.astype(np.float32)
    for _ in range(smooth_iterations):
        residual = coarse_residual(smooth, fine_valid, coarse_kelvin, coarse_valid, scale, np.float32)
        smooth += upsample_bilinear(residual, scale, np.float32)
    fine = smooth.astype(np.float64)
    shifted = fine + expand(coarse_residual(fine, fine_valid, coarse_kelvin, coarse_valid, scale), scale)
    if fine_low_kelvin is None or fine_high_kelvin is None:
        return shifted.astype(np.float32)
    outside = fine_valid & ((shifted < fine_low_kelvin) | (shifted > fine_high_kelvin))
    if not outside.any():
        return shifted.astype(np.float32)
    return _bounded_block_shift(
        fine, fine_valid, coarse_kelvin, coarse_valid, scale, fine_low_kelvin, fine_high_kelvin
    ).astype(np.float32)


def max_abs_residual(
    fine_kelvin: np.ndarray,
    fine_valid: np.ndarray,
    coarse_kelvin: np.ndarray,
    coarse_valid: np.ndarray,
    scale: int,
) -> float:
    """Largest |coarse LST - mean of its valid fine pixels| over coarse pixels that have both."""
    residual = coarse_residual(fine_kelvin, fine_valid, coarse_kelvin, coarse_valid, scale)
    return float(np.abs(residual).max()) if residual.size else 0.0


def _bounded_block_shift(
    fine_kelvin: np.ndarray,
    fine_valid: np.ndarray,
    coarse_kelvin: np.ndarray,
    coarse_valid: np.ndarray,
    scale: int,
    fine_low_kelvin: np.ndarray,
    fine_high_kelvin: np.ndarray,
) -> np.ndarray:
    """clip(fine + shift, low, high) with one shift per coarse pixel, found by bisection, that
    makes the block means equal the coarse LST (the clipped mean grows monotonically with the shift)."""
    usable = coarse_valid & (block_mean(fine_kelvin, fine_valid, scale)[1] > 0)
    low = np.where(fine_valid, fine_low_kelvin - fine_kelvin, np.inf)
    high = np.where(fine_valid, fine_high_kelvin - fine_kelvin, -np.inf)
    height, width = coarse_kelvin.shape
    shift_low = np.where(usable, low.reshape(height, scale, width, scale).min(axis=(1, 3)), 0.0)
    shift_high = np.where(usable, high.reshape(height, scale, width, scale).max(axis=(1, 3)), 0.0)
    target = np.where(usable, coarse_kelvin, 0.0)
    for _ in range(BOUNDED_SHIFT_ITERATIONS):
        shift = (shift_low + shift_high) / 2
        mean = block_mean(
            np.clip(fine_kelvin + expand(shift, scale), fine_low_kelvin, fine_high_kelvin), fine_valid, scale
        )[0]
        too_cold = usable & (mean < target)
        shift_low, shift_high = np.where(too_cold, shift, shift_low), np.where(too_cold, shift_high, shift)
    shift = np.where(usable, (shift_low + shift_high) / 2, 0.0)
    return np.clip(fine_kelvin + expand(shift, scale), fine_low_kelvin, fine_high_kelvin)

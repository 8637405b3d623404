"""Coarse-pixel conservation: make the fine LST average back to the coarse LST it came from.

The residual of each coarse pixel is first spread smoothly (bilinear) a few times, which
removes most of it without block edges, then what remains is added block-wise, which
makes the means exact up to float rounding.
"""
from __future__ import annotations

import numpy as np

from .masks import block_mean, expand
from .resample import upsample_bilinear

SMOOTH_ITERATIONS = 4


def coarse_residual(
    fine_kelvin: np.ndarray, fine_valid: np.ndarray, coarse_kelvin: np.ndarray, coarse_valid: np.ndarray, scale: int
) -> np.ndarray:
    """Coarse LST minus the mean of its valid fine pixels; zero where either side has nothing."""
    mean, count = block_mean(fine_kelvin, fine_valid, scale)
    usable = coarse_valid & (count > 0)
    return np.where(usable, coarse_kelvin - np.where(usable, mean, 0.0), 0.0)


def conserve_coarse_means(
    fine_kelvin: np.ndarray,
    fine_valid: np.ndarray,
    coarse_kelvin: np.ndarray,
    coarse_valid: np.ndarray,
    scale: int,
    smooth_iterations: int = SMOOTH_ITERATIONS,
) -> np.ndarray:
    """Correct ``fine_kelvin`` so that each valid coarse pixel's fine mean equals its LST.

    Shapes: fine (h*scale, w*scale), coarse (h, w); returns float32.
    """
    fine = fine_kelvin.astype(np.float64)
    for _ in range(smooth_iterations):
        fine += upsample_bilinear(coarse_residual(fine, fine_valid, coarse_kelvin, coarse_valid, scale), scale)
    fine += expand(coarse_residual(fine, fine_valid, coarse_kelvin, coarse_valid, scale), scale)
    return fine.astype(np.float32)


def max_abs_residual(
    fine_kelvin: np.ndarray, fine_valid: np.ndarray, coarse_kelvin: np.ndarray, coarse_valid: np.ndarray, scale: int
) -> float:
    """Largest |coarse LST - mean of its valid fine pixels| over coarse pixels that have both."""
    residual = coarse_residual(fine_kelvin, fine_valid, coarse_kelvin, coarse_valid, scale)
    return float(np.abs(residual).max()) if residual.size else 0.0

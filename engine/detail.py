"""Bounding the detail a deep network adds to the coarse LST by the local coarse range.

A network trained on ordinary land can add wild detail to inputs outside its training
distribution (volcanic hot spots, cold cloud tops beside warm land). Each fine pixel is kept
within the range of the coarse pixels around it, widened by a margin, and within the
plausible physical range. A bicubic interpolation of the coarse LST lies within the bounds
unless it overshoots the physical range, so the bound clips only detail the network adds.
"""

from __future__ import annotations

import numpy as np

from .masks import expand
from .resample import upsample_bicubic
from .units import PLAUSIBLE_MAX_KELVIN, PLAUSIBLE_MIN_KELVIN

# A fine pixel is part of a coarse mean and can lie beyond its neighbours' means, further where
# they differ more (a sub-pixel hot spot peaks far above every coarse value). With the margin
# equal to the local range, under 0.1 % of the real 30 m thermal pixels of the shared Landsat 5
# and 8 scenes degraded x2-x8 fall outside the bound (half the range: up to 0.8 %).
DETAIL_RANGE_FACTOR = 1.0
# Margin in a flat neighbourhood, about the sub-pixel variation of uniform land.
DETAIL_FLOOR_KELVIN = 0.5


def local_coarse_range(coarse_kelvin: np.ndarray, coarse_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of the valid coarse pixels in each 3x3 neighbourhood, in Kelvin.

    Pixels past the array's edge count as invalid; a neighbourhood without a valid pixel
    gets NaN.
    """
    height, width = coarse_kelvin.shape
    values = np.pad(np.where(coarse_valid, coarse_kelvin, np.nan), 1, constant_values=np.nan)
    stack = np.stack([values[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)])
    empty = np.isnan(stack).all(axis=0)
    stack[:, empty] = 0.0
    return np.where(empty, np.nan, np.nanmin(stack, axis=0)), np.where(
        empty, np.nan, np.nanmax(stack, axis=0)
    )


def detail_bounds(
    coarse_kelvin: np.ndarray,
    coarse_valid: np.ndarray,
    scale: int,
    range_factor: float = DETAIL_RANGE_FACTOR,
    floor_kelvin: float = DETAIL_FLOOR_KELVIN,
) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest LST (Kelvin) each fine pixel may take, shape (h*scale, w*scale).

    [min - margin, max + margin] of the valid coarse pixels in the 3x3 neighbourhood of the
    fine pixel's coarse pixel, margin = ``range_factor`` * (max - min) + ``floor_kelvin``,
    widened to include the bicubic interpolation of ``coarse_kelvin`` where that lies
    outside, no bound where no neighbour is valid, and all within the plausible range.
    Masked coarse pixels may hold any value (filled or NaN); they only enter the bicubic.
    """
    low_kelvin, high_kelvin = local_coarse_range(coarse_kelvin.astype(np.float64), coarse_valid)
    margin_kelvin = range_factor * (high_kelvin - low_kelvin) + floor_kelvin
    bicubic_kelvin = upsample_bicubic(coarse_kelvin, scale)
    unbounded = expand(np.isnan(low_kelvin), scale)
    fine_low = np.where(
        unbounded, -np.inf, np.fmin(expand(low_kelvin - margin_kelvin, scale), bicubic_kelvin)
    )
    fine_high = np.where(
        unbounded, np.inf, np.fmax(expand(high_kelvin + margin_kelvin, scale), bicubic_kelvin)
    )
    return np.maximum(fine_low, PLAUSIBLE_MIN_KELVIN), np.minimum(fine_high, PLAUSIBLE_MAX_KELVIN)


def bound_detail(
    fine_kelvin: np.ndarray, low_kelvin: np.ndarray, high_kelvin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``fine_kelvin`` clipped to [low, high] as float32, and the mask of pixels that changed (NaN stays NaN)."""
    fine = fine_kelvin.astype(np.float64)
    bounded = np.clip(fine, low_kelvin, high_kelvin)
    return bounded.astype(np.float32), np.isfinite(fine) & (bounded != fine)

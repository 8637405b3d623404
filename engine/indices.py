"""Normalised-difference indices (NDVI, NDWI, ...) from reflectance, bounded to -1..1.

Surface reflectance is slightly negative over water and in shadow: atmospheric correction
undershoots on dark pixels (Landsat Collection 2 SR, DN x 0.0000275 - 0.2, goes below zero there).
The plain ratio (a - b) / (a + b) then leaves -1..1 (by hundreds where a + b is near zero) and
flips sign where a + b < 0, so that water reads as dense vegetation. Two rules bound it:

- a negative reflectance is read as 0, as the sensor's physics says it is. Where a + b > 0 this is
  exactly clipping the ratio to -1..1; where a + b <= 0 it keeps the sign of the band that holds
  signal (water stays NDVI -1 instead of jumping to +1).
- the denominator is at least ``MIN_DENOMINATOR_REFLECTANCE``. The index's noise is about
  2 sigma / (a + b) for a reflectance noise sigma; with sigma ~0.005 over dark targets it spans
  the whole -1..1 below a + b = 0.01. There the index shrinks towards 0 (no information) in
  proportion to the signal instead of amplifying noise to +-1; it stays continuous at 0.01.

The pixel stays valid: setting it invalid would blank the output temperature over every dark
water body (NDMI and NDBI are dark over all water), which users downscale on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_DENOMINATOR_REFLECTANCE = 0.01
INDEX_LIMIT = 1.0
# Every normalised difference of two reflectances the engine knows by name (their range is -1..1).
NORMALISED_DIFFERENCES = ("ndvi", "ndwi", "mndwi", "ndbi", "ndmi")


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b) bounded to -1..1 (see the module's rules), float32, NaN where an input is NaN."""
    a_signal = np.maximum(np.asarray(a, np.float32), np.float32(0))
    b_signal = np.maximum(np.asarray(b, np.float32), np.float32(0))
    total = np.maximum(a_signal + b_signal, np.float32(MIN_DENOMINATOR_REFLECTANCE))
    return ((a_signal - b_signal) / total).astype(np.float32)


def clip_index(values: np.ndarray) -> np.ndarray:
    """A given index band clipped to -1..1 (NaN kept): its excess comes from negative reflectance."""
    return np.clip(values, -INDEX_LIMIT, INDEX_LIMIT)


@dataclass
class IndexBounds:
    """How many pixels of one index the bounds changed, out of how many valid ones."""

    name: str
    valid_px: int = 0
    negative_px: int = 0  # a band below zero: the plain ratio left -1..1 or flipped sign
    dark_px: int = 0  # both bands together darker than MIN_DENOMINATOR_REFLECTANCE: shrunk towards 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        """Count the pixels of reflectances ``a`` and ``b`` (NaN where missing)."""
        valid = np.isfinite(a) & np.isfinite(b)
        a, b = a[valid], b[valid]
        self.valid_px += int(valid.sum())
        self.negative_px += int(np.count_nonzero((a < 0) | (b < 0)))
        signal = np.maximum(a, 0) + np.maximum(b, 0)
        self.dark_px += int(np.count_nonzero(signal < MIN_DENOMINATOR_REFLECTANCE))

    def message(self, sampled: bool = False) -> str | None:
        """One log line when the bounds changed any pixel, else None."""
        parts = []
        if self.negative_px:
            parts.append(
                f"{self.negative_px:,} ({_percent(self.negative_px, self.valid_px)}) with negative reflectance "
                "(water, shadow) bounded to -1..1"
            )
        if self.dark_px:
            parts.append(
                f"{self.dark_px:,} ({_percent(self.dark_px, self.valid_px)}) darker than "
                f"{MIN_DENOMINATOR_REFLECTANCE:g} in both bands shrunk towards 0"
            )
        if not parts:
            return None
        return f"Index {self.name} ({self.valid_px:,} {_pixels(sampled)}): {'; '.join(parts)}."


def clipped_message(name: str, values: np.ndarray, sampled: bool = False) -> str | None:
    """One log line for a given index band whose valid ``values`` leave -1..1 (they are clipped), else None."""
    finite = values[np.isfinite(values)]
    outside = int(np.count_nonzero(np.abs(finite) > INDEX_LIMIT))
    if not outside:
        return None
    return (
        f"Index {name} ({finite.size:,} {_pixels(sampled)}): {outside:,} ({_percent(outside, finite.size)}) "
        "outside -1..1 (negative reflectance over water or shadow; "
        f"{np.min(finite):.4g} to {np.max(finite):.4g}): clipped to -1..1."
    )


def _pixels(sampled: bool) -> str:
    return "sampled pixels" if sampled else "pixels"


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / max(whole, 1):.2g} %"

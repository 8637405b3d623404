"""Separable interpolation of coarse arrays onto a grid ``scale`` times finer (pure numpy).

Fine pixel centres sit at ``(i + 0.5) / scale - 0.5`` in coarse pixel coordinates, the same
convention as GDAL's area-aligned resampling; borders replicate the edge pixel.
"""

from __future__ import annotations

import numpy as np

# Keys' cubic convolution parameter, as in GDAL's and most libraries' "bicubic".
KEYS_A = -0.5


def upsample_bilinear(coarse: np.ndarray, scale: int, dtype: type = np.float64) -> np.ndarray:
    """Bilinear interpolation of the last two axes by an integer factor, computed in ``dtype``."""
    return _separable(coarse, scale, _linear_taps, dtype)


def upsample_bicubic(coarse: np.ndarray, scale: int) -> np.ndarray:
    """Cubic-convolution (Keys, a = -0.5) interpolation of the last two axes by an integer factor."""
    return _separable(coarse, scale, _cubic_taps)


def _separable(coarse: np.ndarray, scale: int, taps, dtype: type = np.float64) -> np.ndarray:
    out = coarse.astype(dtype)
    for axis in (-2, -1):
        out = _upsample_axis(out, scale, taps, axis)
    return out


def _upsample_axis(values: np.ndarray, scale: int, taps, axis: int) -> np.ndarray:
    """Fine pixel ``i * scale + r`` lies at coarse ``i + base_r + t_r``: each phase ``r`` is a
    weighted sum of shifted slices of the edge-padded array, and the phases interleave (stacked
    just after ``axis``, so the final reshape needs no copy)."""
    size = values.shape[axis]
    pad = 2
    widths = [(0, 0)] * values.ndim
    widths[axis] = (pad, pad)
    padded = np.pad(values, widths, mode="edge")
    lead = (slice(None),) * (values.ndim + axis)
    phases = []
    for r in range(scale):
        position = (r + 0.5) / scale - 0.5
        base = int(np.floor(position))
        offsets, weights = taps(np.array(position - base))
        phase = 0
        for offset, weight in zip(offsets, weights):
            start = base + offset + pad
            phase = phase + padded[(*lead, slice(start, start + size))] * float(weight)
        phases.append(phase)
    shape = list(values.shape)
    shape[axis] = size * scale
    return np.stack(phases, axis=axis).reshape(shape)


def _linear_taps(t: np.ndarray):
    return (0, 1), (1.0 - t, t)


def _cubic_taps(t: np.ndarray):
    return (-1, 0, 1, 2), (_keys(t + 1.0), _keys(t), _keys(1.0 - t), _keys(2.0 - t))


def _keys(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    a = KEYS_A
    near = (a + 2) * x**3 - (a + 3) * x**2 + 1
    far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))

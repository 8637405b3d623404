"""Separable interpolation of coarse arrays onto a grid ``scale`` times finer (pure numpy).

Fine pixel centres sit at ``(i + 0.5) / scale - 0.5`` in coarse pixel coordinates, the same
convention as GDAL's area-aligned resampling; borders replicate the edge pixel.
"""

from __future__ import annotations

import numpy as np

# Keys' cubic convolution parameter, as in GDAL's and most libraries' "bicubic".
KEYS_A = -0.5


def upsample_bilinear(coarse: np.ndarray, scale: int) -> np.ndarray:
    """Bilinear interpolation of the last two axes by an integer factor."""
    return _separable(coarse, scale, _linear_taps)


def upsample_bicubic(coarse: np.ndarray, scale: int) -> np.ndarray:
    """Cubic-convolution (Keys, a = -0.5) interpolation of the last two axes by an integer factor."""
    return _separable(coarse, scale, _cubic_taps)


def _separable(coarse: np.ndarray, scale: int, taps) -> np.ndarray:
    out = coarse.astype(np.float64)
    for axis in (-2, -1):
        indices, weights = taps(out.shape[axis], scale)
        shape = [1] * out.ndim
        shape[axis] = -1
        out = sum(np.take(out, idx, axis=axis) * w.reshape(shape) for idx, w in zip(indices, weights))
    return out


def _positions(size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    position = (np.arange(size * scale) + 0.5) / scale - 0.5
    base = np.floor(position).astype(np.int64)
    return base, position - base


def _linear_taps(size: int, scale: int):
    base, t = _positions(size, scale)
    indices = [np.clip(base + k, 0, size - 1) for k in (0, 1)]
    return indices, [1.0 - t, t]


def _cubic_taps(size: int, scale: int):
    base, t = _positions(size, scale)
    indices = [np.clip(base + k, 0, size - 1) for k in (-1, 0, 1, 2)]
    weights = [_keys(t + 1.0), _keys(t), _keys(1.0 - t), _keys(2.0 - t)]
    return indices, weights


def _keys(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    a = KEYS_A
    near = (a + 2) * x**3 - (a + 3) * x**2 + 1
    far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))

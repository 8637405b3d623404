"""Validity masks on the coarse and fine grids, and filling masked pixels for the network.

Masked pixels are filled only so that convolutions see plausible values; the output is
nodata wherever the coarse LST or the guidance is masked.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

QA_MASK_KINDS = ("auto", "nonzero", "landsat_qa_pixel", "modis_qc")
# Landsat Collection 2 QA_PIXEL bits that make an LST pixel unusable:
# fill, dilated cloud, cirrus, cloud, cloud shadow.
LANDSAT_QA_PIXEL_REJECT_BITS = (0, 1, 2, 3, 4)
# MODIS MOD11/MOD21 and VIIRS VNP21 QC: the mandatory QA in bits 0-1 (00 good, 01 other quality,
# 10 not produced for clouds, 11 not produced for other reasons).
MODIS_QC_MANDATORY_MASK = 0b11
MODIS_QC_NOT_PRODUCED = 0b10


def qa_invalid(qa: np.ndarray, kind: str) -> np.ndarray:
    """Pixels a cloud/QA raster marks as unusable."""
    if kind == "nonzero":
        return qa != 0
    if kind == "landsat_qa_pixel":
        reject = sum(1 << bit for bit in LANDSAT_QA_PIXEL_REJECT_BITS)
        return (qa.astype(np.int64) & reject) != 0
    if kind == "modis_qc":
        return (qa.astype(np.int64) & MODIS_QC_MANDATORY_MASK) >= MODIS_QC_NOT_PRODUCED
    raise InputError(f"Unknown QA mask kind {kind!r}; use one of {', '.join(QA_MASK_KINDS)}.")


def grow_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` grown by ``pixels`` in every direction (square neighbourhood), clipped at the edges.

    Clouds grown a few pixels also cover the cloud edges and thin cirrus that a QA band misses.
    """
    grown = mask.astype(bool)
    for axis in (0, 1):
        length = grown.shape[axis]
        padded = np.pad(grown, [(pixels, pixels) if a == axis else (0, 0) for a in (0, 1)])
        grown = np.logical_or.reduce(
            [padded.take(range(shift, shift + length), axis=axis) for shift in range(2 * pixels + 1)]
        )
    return grown


def block_sum(values: np.ndarray, scale: int) -> np.ndarray:
    """Sum over each ``scale`` x ``scale`` block of the last two axes (their sizes divide by scale)."""
    *lead, height, width = values.shape
    rows = values.reshape(*lead, height // scale, scale, width).sum(axis=-2)
    return rows.reshape(*lead, height // scale, width // scale, scale).sum(axis=-1)


def block_mean(
    values: np.ndarray, valid: np.ndarray, scale: int, dtype: type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the valid fine pixels of each coarse block, and their count (mean NaN if none),
    summed in ``dtype``."""
    if valid.all():
        height, width = valid.shape[-2] // scale, valid.shape[-1] // scale
        count = np.full((*valid.shape[:-2], height, width), float(scale * scale))
        return block_sum(values.astype(dtype, copy=False), scale) / count, count
    count = block_sum(valid.astype(np.float64), scale)
    total = block_sum(np.where(valid, values, 0.0).astype(dtype, copy=False), scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean, count


def expand(coarse: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upsampling by an integer factor on the last two axes."""
    if scale == 1:
        return coarse.copy()
    *lead, height, width = coarse.shape
    spread = np.broadcast_to(coarse[..., :, None, :, None], (*lead, height, scale, width, scale))
    return spread.reshape(*lead, height * scale, width * scale)


def fill_invalid(values: np.ndarray, valid: np.ndarray, local_steps: int = 0) -> np.ndarray:
    """Fill invalid pixels smoothly from the valid ones.

    First ``local_steps`` rounds of growing the valid area by the mean of its 3x3 valid
    neighbours: a pixel filled in round k depends only on data within k pixels, so tiles
    that see that neighbourhood fill it alike. Whatever is left is filled by a push-pull
    pyramid. Every filled value is a weighted mean of valid values, so a fill never leaves
    the range of the data around it; with no valid pixel at all the result is zero.
    """
    values = values.astype(np.float64)
    if valid.all():
        return values.astype(np.float32)
    if not valid.any():
        return np.zeros(values.shape, np.float32)
    values, valid = values.copy(), valid.copy()
    for _ in range(local_steps):
        total = _box_sum(np.where(valid, values, 0.0))
        count = _box_sum(valid.astype(np.float64))
        grown = ~valid & (count > 0)
        if not grown.any():
            break
        values[grown] = total[grown] / count[grown]
        valid |= grown
    if valid.all():
        return values.astype(np.float32)
    sums = [np.where(valid, values, 0.0)]
    weights = [valid.astype(np.float64)]
    while (weights[-1] == 0).any() and min(weights[-1].shape) > 1:
        sums.append(_halve(sums[-1]))
        weights.append(_halve(weights[-1]))
    filled = _safe_divide(sums[-1], weights[-1], fallback=float(sums[0].sum() / weights[0].sum()))
    for level in range(len(sums) - 2, -1, -1):
        height, width = sums[level].shape
        coarser = _box_sum(expand(filled, 2)[:height, :width]) / 9.0
        filled = np.where(weights[level] > 0, _safe_divide(sums[level], weights[level], 0.0), coarser)
    return np.where(valid, values, filled).astype(np.float32)


def _halve(a: np.ndarray) -> np.ndarray:
    height, width = a.shape
    padded = np.pad(a, ((0, height % 2), (0, width % 2)))
    return block_sum(padded, 2)


def _safe_divide(total: np.ndarray, weight: np.ndarray, fallback: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), fallback)


def _box_sum(a: np.ndarray) -> np.ndarray:
    """3x3 sum; the edge is replicated."""
    padded = np.pad(a, 1, mode="edge")
    height, width = a.shape
    return sum(padded[i : i + height, j : j + width] for i in range(3) for j in range(3))

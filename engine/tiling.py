"""Overlapping tiles on the coarse grid and the weights that blend them seamlessly.

Tiles are planned in coarse pixels so that every tile covers whole coarse pixels. Each tile
is read with a halo of context, predicts its core plus a blend margin, and the blend
weights form a partition of unity: raised-cosine ramps across each internal tile border,
constant within a coarse pixel so that blending keeps coarse means that each tile kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Span:
    """One axis of a tile, in coarse pixels: core [start, stop), read window and blend margin."""

    start: int
    stop: int
    read_start: int
    read_stop: int
    margin: int
    size: int

    @property
    def write_start(self) -> int:
        return max(self.start - self.margin, 0) if self.start > 0 else 0

    @property
    def write_stop(self) -> int:
        return min(self.stop + self.margin, self.size) if self.stop < self.size else self.size

    def weights(self) -> np.ndarray:
        """Blend weight of each coarse pixel in [write_start, write_stop)."""
        centres = np.arange(self.write_start, self.write_stop) + 0.5
        weight = np.ones(centres.size)
        if self.start > 0 and self.margin > 0:
            weight *= _ramp_up((centres - (self.start - self.margin)) / (2 * self.margin))
        if self.stop < self.size and self.margin > 0:
            weight *= 1.0 - _ramp_up((centres - (self.stop - self.margin)) / (2 * self.margin))
        return weight


@dataclass(frozen=True)
class Tile:
    index: int
    rows: Span
    cols: Span

    def weights(self) -> np.ndarray:
        """Blend weights on the coarse grid over the tile's write window."""
        return np.outer(self.rows.weights(), self.cols.weights())


def plan_axis(size: int, core: int, halo: int) -> list[Span]:
    """Split ``size`` coarse pixels into near-equal cores of at most ``core`` pixels.

    Every read window has the same length (the largest core plus both halos, or the whole
    axis if shorter); windows at the scene edge shift inwards instead of shrinking, so all
    tiles have one shape and the memory a tile needs does not depend on the scene.
    """
    count = max(1, math.ceil(size / max(core, 1)))
    edges = [round(i * size / count) for i in range(count + 1)]
    lengths = [b - a for a, b in zip(edges, edges[1:])]
    margin = 0 if count == 1 else max(1, min(halo // 2, min(lengths) // 2))
    window = min(size, max(lengths) + 2 * halo)
    spans = []
    for a, b in zip(edges, edges[1:]):
        read_start = min(max(a - halo, 0), size - window)
        spans.append(Span(a, b, read_start, read_start + window, margin, size))
    return spans


def plan_tiles(width: int, height: int, core: int, halo: int) -> list[Tile]:
    """Tiles covering a ``width`` x ``height`` coarse grid, row by row."""
    tiles = []
    for rows in plan_axis(height, core, halo):
        for cols in plan_axis(width, core, halo):
            tiles.append(Tile(len(tiles), rows, cols))
    return tiles


@dataclass(frozen=True)
class Block:
    """A window of a raster in pixels, for streaming a whole raster in bounded memory."""

    x0: int
    y0: int
    width: int
    height: int


def blocks(width: int, height: int, block_px: int) -> Iterator[Block]:
    """Non-overlapping windows of at most ``block_px`` square covering a raster, row by row."""
    for y0 in range(0, height, block_px):
        for x0 in range(0, width, block_px):
            yield Block(x0, y0, min(block_px, width - x0), min(block_px, height - y0))


def _ramp_up(t: np.ndarray) -> np.ndarray:
    """Raised cosine from 0 (t <= 0) to 1 (t >= 1)."""
    t = np.clip(t, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)

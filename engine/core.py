"""The downscaling step on numpy arrays: one window of coarse LST and fine guidance to fine LST.

`predict_window` is the one place where a method turns a window into output: masked pixels are
filled, the method predicts, a network's detail is bounded by the local coarse range, the coarse
means are restored, and, when asked, the same is done to every ensemble member and their spread
is the uncertainty. `downscale_arrays` runs it over overlapping tiles of whole arrays and blends
them exactly as the scene pipeline does. The scene pipeline (`engine.scene.tiles`) only moves
windows between rasters and this module; training's evaluation, uncertainty calibration and
fine-tuning call it too, so what they measure is what users run.

Imports numpy and the engine's array modules only, never GDAL, so it runs where GDAL is missing
(a GPU machine).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .classic import Sharpener, coarse_samples
from .conservation import conserve_coarse_means
from .detail import bound_detail, detail_bounds
from .errors import Cancelled
from .masks import expand, fill_invalid
from .tiling import Tile, plan_tiles
from .uncertainty import cell_spread_kelvin, oriented_predictions

# Context read around each tile, in fine pixels; the network pools globally, so be generous.
HALO_FINE_PX = 96
# The classic methods reach a few coarse pixels (cubic support, conservation's smoothing), and
# every method gets at least this much: halo read is pure overhead, 1.9x the work at 512 px.
MIN_HALO_COARSE_PX = 8
MIN_CORE_COARSE_PX = 2
# Masked pixels within this many pixels of data are filled from their neighbourhood only,
# so that overlapping tiles fill them alike (the coarse LST uses the halo minus the blend margin).
GUIDANCE_FILL_STEPS_COARSE_PX = 2
DEFAULT_TILE_SIZE_PX = 512


class NetworkSharpener(Sharpener):
    """MoCoLSK (anything with ``scale`` and ``predict_kelvin(lst, guidance)``, e.g. the engine's
    Downscaler) with the tile interface of the classic methods."""

    name = "mocolsk"

    def __init__(self, downscaler):
        super().__init__(downscaler.scale)
        self.downscaler = downscaler

    def predict(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        return self.downscaler.predict_kelvin(lst_coarse, guidance)

    def predict_members(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        """The 8 orientations' predictions (test-time augmentation), equally weighted; member 0 is ``predict``'s."""
        return oriented_predictions(self.downscaler.predict_kelvin, lst_coarse, guidance), None


class WindowMethod(Protocol):
    """What the core needs of a method: its predictor, scale, whether its detail is bounded, and
    the factor on its raw ensemble spread (``engine.scene.method.Method`` is one)."""

    predictor: Sharpener
    scale: int
    sigma_scale: float

    @property
    def bounds_detail(self) -> bool: ...


@dataclass(frozen=True)
class ArrayMethod:
    """A `WindowMethod` for callers without a scene: a sharpener (a network through
    `NetworkSharpener`), and the factor on its raw ensemble spread (1: the raw spread). ``bounded``
    says whether its detail is bounded when the predictor's type cannot (a peer network's output)."""

    predictor: Sharpener
    sigma_scale: float = 1.0
    bounded: bool | None = None

    @property
    def scale(self) -> int:
        return self.predictor.scale

    @property
    def bounds_detail(self) -> bool:
        return bounds_detail(self.predictor) if self.bounded is None else self.bounded


def bounds_detail(predictor: Sharpener) -> bool:
    """Whether the predictor's detail is bounded by the local coarse range (the network's is)."""
    return isinstance(predictor, NetworkSharpener)


@dataclass(frozen=True)
class WindowPrediction:
    """What `predict_window` returns, on the window's fine grid (h*s, w*s)."""

    fine_kelvin: np.ndarray  # float32, NaN where there is no output
    fine_valid: np.ndarray  # where there is output: valid guidance under a valid coarse pixel
    sigma_kelvin: np.ndarray | None  # one sigma (spread x sigma scale), NaN off fine_valid; None if not asked
    clipped: np.ndarray | None  # pixels whose detail the bound clipped; None for unbounded methods


def predict_window(
    method: WindowMethod,
    coarse_kelvin: np.ndarray,
    coarse_valid: np.ndarray,
    guidance: np.ndarray,
    guidance_valid: np.ndarray,
    coarse_fill_steps: int | None = None,
    conserve: bool = True,
    uncertainty: bool = False,
) -> WindowPrediction:
    """The fine LST in Kelvin over one window, and with ``uncertainty`` its one-sigma uncertainty.

    ``coarse_kelvin`` (h, w) may hold anything where ``coarse_valid`` is False; ``guidance``
    (C, h*s, w*s) is in the order the method needs, ``guidance_valid`` False also past the raster's
    edge. Masked coarse pixels are filled ``coarse_fill_steps`` steps from their neighbours, then
    smoothly (by default as a scene run's tiles fill them); masked guidance
    ``GUIDANCE_FILL_STEPS_COARSE_PX`` coarse pixels. With ``uncertainty`` the output is the
    ensemble's (`ensemble_output`) and the uncertainty the spread of its members, each bounded and
    conserved like the output, averaged over a coarse pixel (``engine.uncertainty.cell_spread_kelvin``),
    times the method's sigma scale."""
    scale, predictor = method.scale, method.predictor
    fine_valid = guidance_valid & expand(coarse_valid, scale)
    if not coarse_valid.any():
        nothing = np.full(fine_valid.shape, np.nan, np.float32)
        return WindowPrediction(nothing, fine_valid, nothing.copy() if uncertainty else None, None)
    if coarse_fill_steps is None:
        coarse_fill_steps = fill_steps(halo_coarse_px(scale, method.bounds_detail))
    lst = fill_invalid(coarse_kelvin, coarse_valid, coarse_fill_steps)
    if len(guidance) and not guidance_valid.all():
        steps = GUIDANCE_FILL_STEPS_COARSE_PX * scale
        guidance = np.stack([fill_invalid(band, guidance_valid, steps) for band in guidance])
    low = high = None
    if method.bounds_detail:
        low, high = detail_bounds(lst, coarse_valid, scale)

    def finished(prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        clipped = None
        if low is not None:
            prediction, clipped = bound_detail(prediction, low, high)
        if conserve:
            prediction = conserve_coarse_means(
                prediction,
                fine_valid,
                coarse_kelvin,
                coarse_valid,
                scale,
                fine_low_kelvin=low,
                fine_high_kelvin=high,
            )
        return prediction, clipped

    sigma = None
    if uncertainty:
        members, weights = predictor.predict_members(lst, coarse_valid, guidance, guidance_valid)
        fine, clipped = finished(ensemble_output(members, weights))
        finished_members = np.stack([finished(m.astype(np.float32))[0] for m in members])
        sigma = cell_spread_kelvin(finished_members, weights, fine_valid, scale)
        sigma = np.where(fine_valid, sigma * method.sigma_scale, np.nan).astype(np.float32)
    else:
        fine, clipped = finished(predictor.predict(lst, coarse_valid, guidance, guidance_valid))
    return WindowPrediction(np.where(fine_valid, fine, np.nan), fine_valid, sigma, clipped)


def ensemble_output(members: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """The prediction an ensemble stands for, float32: member 0 (MoCoLSK's plain prediction) when
    unweighted, else the weighted mean (DMS's trees)."""
    raw = members[0] if weights is None else np.tensordot(weights / weights.sum(), members, axes=1)
    return raw.astype(np.float32)


@dataclass(frozen=True)
class TilePlan:
    """Tiles of at most ``core`` coarse pixels read with ``halo`` coarse pixels of context."""

    tiles: list[Tile]
    core: int
    halo: int
    scale: int

    @property
    def coarse_fill_steps(self) -> int:
        return fill_steps(self.halo)


def fill_steps(halo_coarse_px: int) -> int:
    """Local fill steps of the coarse LST in a tile: the halo minus the blend margin, so that
    overlapping tiles fill alike where they are blended."""
    return halo_coarse_px - halo_coarse_px // 2


def halo_coarse_px(scale: int, network: bool) -> int:
    """Context read around each tile, in coarse pixels."""
    return max(MIN_HALO_COARSE_PX, math.ceil(HALO_FINE_PX / scale) if network else 0)


def plan_window_tiles(
    coarse_width: int, coarse_height: int, scale: int, tile_size_px: int, network: bool = True
) -> TilePlan:
    """Tiles for a network (``HALO_FINE_PX`` of context) or a classic method (the minimum)."""
    halo = halo_coarse_px(scale, network)
    core = max(MIN_CORE_COARSE_PX, tile_size_px // scale)
    return TilePlan(plan_tiles(coarse_width, coarse_height, core, halo), core, halo, scale)


def tile_core(tile: Tile, scale: int) -> tuple[slice, slice]:
    """The tile's core within its read window, in fine pixels: tile cores partition the grid, so
    counting there counts every output pixel once."""
    rows, cols = tile.rows, tile.cols
    return (
        slice((rows.start - rows.read_start) * scale, (rows.stop - rows.read_start) * scale),
        slice((cols.start - cols.read_start) * scale, (cols.stop - cols.read_start) * scale),
    )


def weighted_write_window(fine: np.ndarray, tile: Tile, scale: int) -> tuple[np.ndarray, int, int]:
    """The part of a tile's read-window array it writes (core plus blend margin), times its blend
    weights, and where it goes on the fine grid (x0, y0); the caller clips it at the grid's edge."""
    rows, cols = tile.rows, tile.cols
    r0, r1 = (rows.write_start - rows.read_start) * scale, (rows.write_stop - rows.read_start) * scale
    c0, c1 = (cols.write_start - cols.read_start) * scale, (cols.write_stop - cols.read_start) * scale
    return (
        fine[r0:r1, c0:c1] * expand(tile.weights(), scale),
        cols.write_start * scale,
        rows.write_start * scale,
    )


@dataclass
class BlendStats:
    """What the tile loop counted: valid output pixels and those whose detail was clipped."""

    valid_px: int = 0
    detail_clipped_px: int = 0

    @property
    def detail_clipped_percent(self) -> float:
        return 100.0 * self.detail_clipped_px / max(self.valid_px, 1)

    def add(self, prediction: WindowPrediction, tile: Tile, scale: int) -> None:
        """Count a tile's core."""
        core = tile_core(tile, scale)
        self.valid_px += int(prediction.fine_valid[core].sum())
        if prediction.clipped is not None:
            self.detail_clipped_px += int((prediction.clipped & prediction.fine_valid)[core].sum())


@dataclass(frozen=True)
class ArrayResult:
    """`downscale_arrays`' output on the fine grid (H, W): LST and uncertainty in K, NaN where none."""

    fine_kelvin: np.ndarray
    sigma_kelvin: np.ndarray | None
    stats: BlendStats
    tiles: int
    fit_log: str | None  # the fitted method's log line; None when nothing was fitted


def downscale_arrays(
    method: WindowMethod,
    coarse_kelvin: np.ndarray,
    guidance: np.ndarray,
    coarse_valid: np.ndarray | None = None,
    guidance_valid: np.ndarray | None = None,
    tile_size_px: int = DEFAULT_TILE_SIZE_PX,
    conserve: bool = True,
    uncertainty: bool = False,
    is_cancelled: Callable[[], bool] = lambda: False,
) -> ArrayResult:
    """What the scene pipeline computes, on arrays already on aligned grids: ``coarse_kelvin``
    (h, w) and ``guidance`` (C, H, W) in the method's band order, with H <= h*s and W <= w*s (a
    fine grid with partial coarse pixels at its edges). Validity defaults to the finite values.
    A method that fits a scene-wide regression is fitted here, on these arrays' tiles."""
    scale = method.scale
    height, width = guidance.shape[-2:]
    coarse_h, coarse_w = coarse_kelvin.shape
    if not (
        coarse_h * scale - scale < height <= coarse_h * scale
        and coarse_w * scale - scale < width <= coarse_w * scale
    ):
        raise ValueError(
            f"guidance {width}x{height} px is not the x{scale} grid of the coarse LST {coarse_w}x{coarse_h} px"
        )
    coarse_valid = (
        np.isfinite(coarse_kelvin) if coarse_valid is None else coarse_valid & np.isfinite(coarse_kelvin)
    )
    if guidance_valid is None:
        guidance_valid = np.isfinite(guidance).all(axis=0)
    padded = np.zeros((len(guidance), coarse_h * scale, coarse_w * scale), np.float32)
    padded[:, :height, :width] = np.where(np.isfinite(guidance), guidance, 0.0)
    padded_valid = np.zeros(padded.shape[1:], bool)
    padded_valid[:height, :width] = guidance_valid
    lst = np.where(coarse_valid, coarse_kelvin, np.nan).astype(np.float32)

    def window(row0: int, row1: int, col0: int, col1: int):
        fine_rows, fine_cols = slice(row0 * scale, row1 * scale), slice(col0 * scale, col1 * scale)
        return (
            lst[row0:row1, col0:col1],
            coarse_valid[row0:row1, col0:col1],
            padded[:, fine_rows, fine_cols],
            padded_valid[fine_rows, fine_cols],
        )

    plan = plan_window_tiles(coarse_w, coarse_h, scale, tile_size_px, network=method.bounds_detail)
    fit_log = None
    if method.predictor.needs_fit:
        for tile in plan_tiles(coarse_w, coarse_h, plan.core, 0):
            method.predictor.add_samples(
                coarse_samples(
                    *window(tile.rows.start, tile.rows.stop, tile.cols.start, tile.cols.stop), scale
                )
            )
        fit_log = method.predictor.finish_fit()
    blended = np.zeros(padded.shape[1:], np.float32)
    spread = np.zeros(padded.shape[1:], np.float32) if uncertainty else None
    stats = BlendStats()
    for tile in plan.tiles:
        if is_cancelled():
            raise Cancelled("Downscaling cancelled.")
        read = window(tile.rows.read_start, tile.rows.read_stop, tile.cols.read_start, tile.cols.read_stop)
        prediction = predict_window(method, *read, plan.coarse_fill_steps, conserve, uncertainty)
        stats.add(prediction, tile, scale)
        for target, values in ((blended, prediction.fine_kelvin), (spread, prediction.sigma_kelvin)):
            if target is not None:
                weighted, x0, y0 = weighted_write_window(values, tile, scale)
                rows, cols = slice(y0, y0 + weighted.shape[0]), slice(x0, x0 + weighted.shape[1])
                target[rows, cols] = (target[rows, cols] + weighted).astype(np.float32)
    crop = (slice(0, height), slice(0, width))
    return ArrayResult(
        blended[crop], None if spread is None else spread[crop], stats, len(plan.tiles), fit_log
    )

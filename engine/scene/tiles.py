"""The tile loop: overlapping tiles on the coarse grid, predicted and blended into a scratch raster.

Each tile is read with a halo of context: masked pixels are filled, the method predicts, the
network's detail is bounded by the local coarse range, the coarse means are restored, and the
tile's core plus blend margin is added, weighted, into the blended raster. Methods with a
scene-wide regression first collect coarse samples tile by tile and fit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bands import BandMapping
from ..classic import Sharpener, coarse_samples
from ..conservation import conserve_coarse_means
from ..detail import bound_detail, detail_bounds
from ..grids import Grid
from ..guidance_values import ReflectanceEncoding
from ..masks import expand, fill_invalid
from ..raster import (
    SCRATCH_CREATION_OPTIONS,
    create_geotiff,
    gdal_failures_logged,
    read_bands_window,
    valid_mask,
)
from ..tiling import Tile, plan_tiles
from ..uncertainty import spread_kelvin
from .context import RunContext
from .inputs import Guidance
from .method import Method

# Context read around each tile, in fine pixels; the network pools globally, so be generous.
HALO_FINE_PX = 96
# The classic methods reach a few coarse pixels (cubic support, conservation's smoothing), and
# every method gets at least this much: halo read is pure overhead, 1.9x the work at 512 px.
MIN_HALO_COARSE_PX = 8
MIN_CORE_COARSE_PX = 2
# Masked pixels within this many pixels of data are filled from their neighbourhood only,
# so that overlapping tiles fill them alike (the coarse LST uses the halo minus the blend margin).
GUIDANCE_FILL_STEPS_COARSE_PX = 2

# Called with the share of the stage done, 0..1 (after each tile; a stage may report finer).
StageProgress = Callable[[float], None]
# Share of a tile's work done after each of its steps, so that a run of a few large tiles moves too.
TILE_READ_SHARE = 0.1
TILE_PREDICTED_SHARE = 0.85
# At most one "tile done" log line per this many seconds (and always the last); the time left is
# estimated once a run has taken this long.
TILE_LOG_EVERY_S = 5.0


@dataclass(frozen=True)
class TilePlan:
    """Tiles of at most ``core`` coarse pixels read with ``halo`` coarse pixels of context."""

    tiles: list[Tile]
    core: int
    halo: int
    scale: int

    @property
    def coarse_fill_steps(self) -> int:
        return self.halo - self.halo // 2


def plan_scene_tiles(coarse_grid: Grid, scale: int, tile_size_px: int, network: bool = True) -> TilePlan:
    """Tiles for a network (``HALO_FINE_PX`` of context) or a classic method (the minimum)."""
    halo = max(MIN_HALO_COARSE_PX, math.ceil(HALO_FINE_PX / scale) if network else 0)
    core = max(MIN_CORE_COARSE_PX, tile_size_px // scale)
    return TilePlan(plan_tiles(coarse_grid.width, coarse_grid.height, core, halo), core, halo, scale)


@dataclass
class Window:
    lst: np.ndarray  # (h, w) Kelvin, NaN where masked
    coarse_valid: np.ndarray
    guidance: np.ndarray  # (C, h*s, w*s) in the order the method needs
    guidance_valid: np.ndarray  # (h*s, w*s), False also past the raster's edge


class TileReader:
    """Reads aligned coarse LST and fine guidance windows given in coarse pixels."""

    def __init__(
        self,
        guidance: Guidance,
        mapping: BandMapping,
        coarse_band,
        scale: int,
        conversions: dict[int, ReflectanceEncoding] | None = None,
    ):
        self.guidance = guidance
        # Input band index -> how its stored values become reflectance (Landsat C2 SR, x10000).
        self.conversions = conversions or {}
        self.mapping = mapping
        self.coarse_band = coarse_band
        self.scale = scale
        sources = {i for src in mapping.sources for i in (src if isinstance(src, tuple) else (src,))}
        # Methods that use no guidance values (bicubic) still honour every band's nodata.
        self.needs_values = bool(sources)
        self.used = sorted(sources) if sources else list(range(len(guidance.bands)))
        # The used bands grouped by dataset, as (dataset, [(flat index, 1-based band number)]).
        first, self.reads = 0, []
        for dataset in guidance.datasets:
            own = [(i, i - first + 1) for i in self.used if first <= i < first + dataset.RasterCount]
            if own:
                self.reads.append((dataset, own))
            first += dataset.RasterCount

    def read_tile(self, tile: Tile) -> Window:
        """The window a tile predicts from (its core plus halo); callable from a worker thread."""
        with gdal_failures_logged():
            return self.read(
                tile.rows.read_start, tile.rows.read_stop, tile.cols.read_start, tile.cols.read_stop
            )

    def read(self, row0: int, row1: int, col0: int, col1: int) -> Window:
        s = self.scale
        lst = self.coarse_band.ReadAsArray(col0, row0, col1 - col0, row1 - row0).astype(np.float32)
        coarse_valid = np.isfinite(lst)
        height, width = (row1 - row0) * s, (col1 - col0) * s
        stack = np.zeros((len(self.guidance.bands), height, width), np.float32)
        valid = np.ones((height, width), bool)
        for dataset, own in self.reads:
            values, inside = read_bands_window(
                dataset, [n for _, n in own], col0 * s, row0 * s, width, height
            )
            valid &= inside
            for (i, _), band in zip(own, values):
                valid &= valid_mask(band, self.guidance.nodata[i])
                if self.needs_values:
                    stack[i] = self.conversions[i].to_reflectance(band) if i in self.conversions else band
        guidance, guidance_valid = self.mapping.compose(stack, valid)
        return Window(lst, coarse_valid, guidance, guidance_valid)


def fit_scene(
    predictor: Sharpener,
    reader: TileReader,
    coarse_grid: Grid,
    plan: TilePlan,
    context: RunContext,
    progress: StageProgress,
) -> None:
    """Collect coarse samples over the whole scene (tiles without halo) and fit the regression."""
    tiles = plan_tiles(coarse_grid.width, coarse_grid.height, plan.core, 0)
    for done, tile in enumerate(tiles, 1):
        context.check_cancelled()
        window = reader.read(tile.rows.start, tile.rows.stop, tile.cols.start, tile.cols.stop)
        predictor.add_samples(
            coarse_samples(
                window.lst, window.coarse_valid, window.guidance, window.guidance_valid, reader.scale
            )
        )
        progress(done / len(tiles))
    context.log(predictor.finish_fit())


@dataclass
class BlendStats:
    """What the tile loop counted: valid output pixels and those whose detail was clipped."""

    valid_px: int = 0
    detail_clipped_px: int = 0

    @property
    def detail_clipped_percent(self) -> float:
        return 100.0 * self.detail_clipped_px / max(self.valid_px, 1)


def predict_tiles(
    plan: TilePlan,
    reader: TileReader,
    method: Method,
    grid: Grid,
    conserve: bool,
    scratch: Path,
    context: RunContext,
    progress: StageProgress,
    uncertainty: bool = False,
):
    """Predict every tile and blend it into a scratch raster on ``grid``; the raster, the counts and,
    with ``uncertainty``, a second scratch raster of the per-pixel uncertainty in K (else None)."""
    blended = create_geotiff(scratch / "blended.tif", grid, SCRATCH_CREATION_OPTIONS)
    band = blended.GetRasterBand(1)
    spread = (
        create_geotiff(scratch / "uncertainty.tif", grid, SCRATCH_CREATION_OPTIONS) if uncertainty else None
    )
    stats = BlendStats()
    count = len(plan.tiles)
    started = last_log = time.perf_counter()
    # The next tile's window is read while this one is predicted: GDAL reads and numpy release the GIL.
    # Only the reading thread touches the input datasets during the loop.
    with ThreadPoolExecutor(1, "mocolsk-read") as prefetch:
        pending = prefetch.submit(reader.read_tile, plan.tiles[0]) if count else None
        for done, tile in enumerate(plan.tiles, 1):
            context.check_cancelled()
            window = pending.result()
            pending = prefetch.submit(reader.read_tile, plan.tiles[done]) if done < count else None

            def within_tile(share: float, done: int = done) -> None:
                progress((done - 1 + share) / count)

            fine, sigma = predict_tile(
                tile, window, method, plan.coarse_fill_steps, conserve, stats, within_tile, uncertainty
            )
            blend_tile(fine, tile, band, grid, plan.scale)
            if spread is not None:
                blend_tile(sigma, tile, spread.GetRasterBand(1), grid, plan.scale)
            progress(done / count)
            now = time.perf_counter()
            if done == count or now - last_log >= TILE_LOG_EVERY_S:
                context.log(tile_done_line(done, count, now - started))
                last_log = now
    blended.FlushCache()
    if spread is not None:
        spread.FlushCache()
    return blended, stats, spread


def tile_done_line(done: int, count: int, elapsed_s: float) -> str:
    """E.g. "Tiles: 12/40 done in 31 s, about 1 min 12 s left" (the time left once the run is long)."""
    line = f"Tiles: {done}/{count} done in {format_duration(elapsed_s)}"
    if done < count and elapsed_s >= TILE_LOG_EVERY_S:
        line += f", about {format_duration(elapsed_s / done * (count - done))} left"
    return line


def format_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def predict_tile(
    tile: Tile,
    window: Window,
    method: Method,
    coarse_fill_steps: int,
    conserve: bool,
    stats: BlendStats,
    progress: StageProgress = lambda _: None,
    uncertainty: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The fine LST in Kelvin over a tile's read window, NaN where there is no output; ``progress`` gets the
    share of the tile done after reading and after predicting. With ``uncertainty``, also the spread of the
    method's members (engine.uncertainty), each bounded and conserved like the output, times the method's
    sigma scale."""
    scale, predictor = method.scale, method.predictor
    rows, cols = tile.rows, tile.cols
    progress(TILE_READ_SHARE)
    fine_valid = window.guidance_valid & expand(window.coarse_valid, scale)
    # Tile cores partition the grid, so counting there counts every output pixel once.
    core = (
        slice((rows.start - rows.read_start) * scale, (rows.stop - rows.read_start) * scale),
        slice((cols.start - cols.read_start) * scale, (cols.stop - cols.read_start) * scale),
    )
    stats.valid_px += int(fine_valid[core].sum())
    if window.coarse_valid.any():
        lst = fill_invalid(window.lst, window.coarse_valid, coarse_fill_steps)
        guidance = window.guidance
        if len(guidance) and not window.guidance_valid.all():
            steps = GUIDANCE_FILL_STEPS_COARSE_PX * scale
            guidance = np.stack([fill_invalid(band, window.guidance_valid, steps) for band in guidance])
        low = high = None
        if method.bounds_detail:
            low, high = detail_bounds(lst, window.coarse_valid, scale)

        def finished(prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            clipped = None
            if low is not None:
                prediction, clipped = bound_detail(prediction, low, high)
            if conserve:
                prediction = conserve_coarse_means(
                    prediction,
                    fine_valid,
                    window.lst,
                    window.coarse_valid,
                    scale,
                    fine_low_kelvin=low,
                    fine_high_kelvin=high,
                )
            return prediction, clipped

        if uncertainty:
            members, weights = predictor.predict_members(
                lst, window.coarse_valid, guidance, window.guidance_valid
            )
            raw = members[0] if weights is None else np.tensordot(weights / weights.sum(), members, axes=1)
            fine, clipped = finished(raw.astype(np.float32))
            sigma = spread_kelvin(np.stack([finished(m.astype(np.float32))[0] for m in members]), weights)
            sigma = np.where(fine_valid, sigma * method.sigma_scale, np.nan)
        else:
            fine, clipped = finished(
                predictor.predict(lst, window.coarse_valid, guidance, window.guidance_valid)
            )
            sigma = None
        progress(TILE_PREDICTED_SHARE)
        if clipped is not None:
            stats.detail_clipped_px += int((clipped & fine_valid)[core].sum())
    else:
        fine = np.zeros(fine_valid.shape, np.float32)
        sigma = np.full(fine_valid.shape, np.nan, np.float32) if uncertainty else None
    return np.where(fine_valid, fine, np.nan), sigma


def blend_tile(fine: np.ndarray, tile: Tile, blended, grid: Grid, scale: int) -> None:
    """Add a tile's write window, weighted by its blend weights, into the blended band."""
    rows, cols = tile.rows, tile.cols
    r0, r1 = (rows.write_start - rows.read_start) * scale, (rows.write_stop - rows.read_start) * scale
    c0, c1 = (cols.write_start - cols.read_start) * scale, (cols.write_stop - cols.read_start) * scale
    weighted = fine[r0:r1, c0:c1] * expand(tile.weights(), scale)
    x0, y0 = cols.write_start * scale, rows.write_start * scale
    width, height = min(c1 - c0, grid.width - x0), min(r1 - r0, grid.height - y0)
    current = blended.ReadAsArray(x0, y0, width, height)
    blended.WriteArray((current + weighted[:height, :width]).astype(np.float32), x0, y0)

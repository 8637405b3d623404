"""The tile loop: overlapping tiles on the coarse grid, predicted and blended into a scratch raster.

This stage only moves windows: it reads each tile's window (core plus halo) from the rasters,
hands it to the array core (`engine.core.predict_window`: fill, predict, bound the detail,
restore the coarse means, ensemble spread), and adds the tile's core plus blend margin,
weighted, into the scratch rasters. Methods with a scene-wide regression first collect coarse
samples tile by tile and fit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bands import BandMapping
from ..classic import Sharpener, coarse_samples
from ..core import (
    BlendStats,
    TilePlan,
    WindowPrediction,
    plan_window_tiles,
    predict_window,
    weighted_write_window,
)
from ..grids import Grid
from ..guidance_values import ReflectanceEncoding
from ..raster import (
    SCRATCH_CREATION_OPTIONS,
    band_count,
    band_of,
    create_geotiff,
    flush,
    gdal_failures_logged,
    read_bands_window,
    read_window,
    valid_mask,
    write_window,
)
from ..tiling import Block, Tile, plan_tiles
from .context import RunContext
from .inputs import Guidance
from .method import Method

# Called with the share of the stage done, 0..1 (after each tile; a stage may report finer).
StageProgress = Callable[[float], None]
# Share of a tile's work done after each of its steps, so that a run of a few large tiles moves too.
TILE_READ_SHARE = 0.1
TILE_PREDICTED_SHARE = 0.85
# At most one "tile done" log line per this many seconds (and always the last); the time left is
# estimated once a run has taken this long.
TILE_LOG_EVERY_S = 5.0


def plan_scene_tiles(coarse_grid: Grid, scale: int, tile_size_px: int, network: bool = True) -> TilePlan:
    """The tiles of a coarse grid (``engine.core.plan_window_tiles``)."""
    return plan_window_tiles(coarse_grid.width, coarse_grid.height, scale, tile_size_px, network)


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
            count = band_count(dataset)
            own = [(i, i - first + 1) for i in self.used if first <= i < first + count]
            if own:
                self.reads.append((dataset, own))
            first += count

    def read_tile(self, tile: Tile) -> Window:
        """The window a tile predicts from (its core plus halo); callable from a worker thread."""
        with gdal_failures_logged():
            return self.read(
                tile.rows.read_start, tile.rows.read_stop, tile.cols.read_start, tile.cols.read_stop
            )

    def read(self, row0: int, row1: int, col0: int, col1: int) -> Window:
        s = self.scale
        lst = read_window(self.coarse_band, Block(col0, row0, col1 - col0, row1 - row0)).astype(np.float32)
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
    band = band_of(blended)
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

            prediction = predict_tile(
                window, method, plan.coarse_fill_steps, conserve, within_tile, uncertainty
            )
            stats.add(prediction, tile, plan.scale)
            blend_tile(prediction.fine_kelvin, tile, band, grid, plan.scale)
            if spread is not None:
                blend_tile(prediction.sigma_kelvin, tile, band_of(spread), grid, plan.scale)
            progress(done / count)
            now = time.perf_counter()
            if done == count or now - last_log >= TILE_LOG_EVERY_S:
                context.log(tile_done_line(done, count, now - started))
                last_log = now
    flush(blended)
    if spread is not None:
        flush(spread)
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
    window: Window,
    method: Method,
    coarse_fill_steps: int,
    conserve: bool,
    progress: StageProgress = lambda _: None,
    uncertainty: bool = False,
) -> WindowPrediction:
    """The core's prediction over a tile's read window; ``progress`` gets the share of the tile done
    after reading and after predicting."""
    progress(TILE_READ_SHARE)
    prediction = predict_window(
        method,
        window.lst,
        window.coarse_valid,
        window.guidance,
        window.guidance_valid,
        coarse_fill_steps,
        conserve,
        uncertainty,
    )
    progress(TILE_PREDICTED_SHARE)
    return prediction


def blend_tile(fine: np.ndarray, tile: Tile, blended, grid: Grid, scale: int) -> None:
    """Add a tile's write window, weighted by its blend weights, into the blended band."""
    weighted, x0, y0 = weighted_write_window(fine, tile, scale)
    width, height = min(weighted.shape[1], grid.width - x0), min(weighted.shape[0], grid.height - y0)
    current = read_window(blended, Block(x0, y0, width, height))
    write_window(blended, (current + weighted[:height, :width]).astype(np.float32), x0, y0)

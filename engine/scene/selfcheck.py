"""The *auto* method: each scene picks the method that best rebuilds its own LST.

Classic sharpeners assume scale invariance; so does this choice. The coarse LST is
area-averaged once more by the scale, the guidance is area-averaged onto the LST grid, and
every candidate method downscales the former back to the latter through this same pipeline.
The method whose result is closest to the LST itself (RMSE in K over the self-check window)
runs on the scene. A network that would invent detail on this scene's kind of land cover
loses here to the classic methods, so the plugin falls back instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import EngineError
from ..grids import Grid
from ..masks import block_mean, expand
from ..raster import average_onto, open_raster, read_band_values, read_bands_window, write_stack
from .context import RunContext
from .request import DownscaleRequest

AUTO_METHOD = "auto"
ALL_METHODS = ("blend", "mocolsk", "bicubic", "tsharp", "dms")
WITH_UNCERTAINTY = ("blend", "mocolsk", "dms")
# The self-check reads a central window of the coarse grid at most this many pixels a side.
MAX_WINDOW_COARSE_PX = 768
# Coarser cells (fully valid) the self-check needs; fewer and the choice would be noise.
MIN_CHECK_CELLS = 16
NODATA = -9999.0


@dataclass(frozen=True)
class SelfCheck:
    """What the self-check measured and chose."""

    chosen: str
    rmse_k: dict[str, float]
    cells: int
    reason: str

    def summary(self) -> str:
        scores = ", ".join(f"{m} {v:.3f} K" for m, v in sorted(self.rmse_k.items(), key=lambda kv: kv[1]))
        return f"{self.chosen} ({self.reason}{'; ' + scores if scores else ''})"


def candidates(uncertainty: bool, network: bool, blend: bool) -> tuple[str, ...]:
    """The methods the self-check compares: those with an uncertainty layer when one is asked for,
    MoCoLSK only when its package and runtime are there, the blend only when its card has weights."""
    pool = WITH_UNCERTAINTY if uncertainty else ALL_METHODS
    return tuple(m for m in pool if (network or m != "mocolsk") and (blend or m != "blend"))


def central_window(grid: Grid, scale: int, max_px: int = MAX_WINDOW_COARSE_PX) -> tuple[Grid, int, int]:
    """The central window of ``grid``, at most ``max_px`` a side and a whole number of ``scale``
    cells, with its column and row offsets."""
    width = min(grid.width, max_px) // scale * scale
    height = min(grid.height, max_px) // scale * scale
    col0, row0 = (grid.width - width) // 2, (grid.height - height) // 2
    x0, dx, _, y0, _, dy = grid.geotransform
    window = Grid(grid.crs_wkt, (x0 + col0 * dx, dx, 0.0, y0 + row0 * dy, 0.0, dy), width, height)
    return window, col0, row0


def coarser_copy(lst_kelvin: np.ndarray, scale: int) -> np.ndarray:
    """The LST area-averaged by ``scale``; a cell with any invalid pixel is invalid (NaN)."""
    valid = np.isfinite(lst_kelvin)
    mean, count = block_mean(np.nan_to_num(lst_kelvin), valid, scale)
    return np.where(count == scale * scale, mean, np.nan).astype(np.float32)


def rmse_on(prediction: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> float:
    keep = scored & np.isfinite(prediction) & np.isfinite(truth)
    return float(np.sqrt(np.mean((prediction[keep].astype(np.float64) - truth[keep]) ** 2)))


def self_check(
    request: DownscaleRequest,
    coarse_path: str,
    coarse_grid: Grid,
    scale: int,
    methods: tuple[str, ...],
    fallback: str,
    scratch: Path,
    context: RunContext,
) -> SelfCheck:
    """Run every method in ``methods`` on the scene's own LST, one scale coarser, and choose."""
    from ..pipeline import downscale_scene

    window, col0, row0 = central_window(coarse_grid, scale)
    # The coarse scratch raster is Kelvin with NaN where masked; only the window is read.
    values, _ = read_bands_window(
        open_raster(coarse_path, "coarse LST"), [1], col0, row0, window.width, window.height
    )
    truth = values[0].astype(np.float32)
    coarser = coarser_copy(truth, scale) if window.width and window.height else np.zeros((0, 0))
    cells = int(np.isfinite(coarser).sum())
    if cells < MIN_CHECK_CELLS or len(methods) < 2:
        why = (
            f"only {cells} coarser cells to check on, fewer than {MIN_CHECK_CELLS}"
            if cells < MIN_CHECK_CELLS
            else "no other method to compare with"
        )
        return SelfCheck(fallback, {}, cells, f"{why}: the default for this scale")
    folder = scratch / "selfcheck"
    folder.mkdir()
    lst_path = write_stack(
        folder / "lst_coarser.tif", window.coarsened(scale), np.nan_to_num(coarser, nan=NODATA), nodata=NODATA
    )
    guidance = [
        str(average_onto(path, folder / f"guidance_{index}.tif", window))
        for index, path in enumerate(request.guidance_paths)
    ]
    scored = expand(np.isfinite(coarser), scale)
    rmse = {}
    for method in methods:
        context.check_cancelled()
        sub_request = replace(
            request,
            lst_path=str(lst_path),
            lst_band=1,
            lst_units="kelvin",
            qa_mask_path=None,
            qa_mask_grow_px=0,
            guidance_paths=guidance,
            output_path=str(folder / f"{method}.tif"),
            method=method,
            output_units="kelvin",
            overwrite=True,
            cog=False,
            uncertainty_path=None,
        )
        try:
            downscale_scene(sub_request, is_cancelled=context.is_cancelled)
        except EngineError as error:
            context.log(f"Auto: {method} left out of the self-check ({error})")
            continue
        prediction, _ = read_band_values(sub_request.output_path, layer=f"self-check {method}")
        rmse[method] = rmse_on(prediction, truth, scored)
    if not rmse:
        return SelfCheck(fallback, {}, cells, "no method ran on the self-check: the default for this scale")
    chosen = min(rmse, key=rmse.__getitem__)
    return SelfCheck(
        chosen,
        rmse,
        cells,
        f"lowest RMSE rebuilding the LST from a x{scale} coarser copy over {cells} cells",
    )

"""Raster grids: the fine guidance grid, the coarse grid it implies, and how they relate.

Pure geotransform arithmetic; CRS comparison and warping live in `engine.raster`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from .errors import InputError

# A resolution ratio this far from an integer scale (relative) is refused, nearer is warped.
SCALE_TOLERANCE = 0.15
# An LST matching no scale is averaged onto a coarser grid, at most this many times its pixel.
MAX_COARSENING = 2.0
# Bundled packages run in turn (e.g. 960 m -> 240 m -> 30 m) at most this many times.
MAX_CASCADE_STEPS = 3
# Pixel sizes and origins equal within this fraction of a pixel need no warp.
ALIGNMENT_TOLERANCE_PX = 1e-3


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, GDAL geotransform and size in pixels."""

    crs_wkt: str
    geotransform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    @property
    def origin_x(self) -> float:
        return self.geotransform[0]

    @property
    def origin_y(self) -> float:
        return self.geotransform[3]

    @property
    def pixel_width(self) -> float:
        return self.geotransform[1]

    @property
    def pixel_height(self) -> float:
        """Positive pixel height (north-up rasters store it negative)."""
        return -self.geotransform[5]

    @property
    def is_north_up(self) -> bool:
        return self.geotransform[2] == 0 and self.geotransform[4] == 0 and self.geotransform[5] < 0

    def coarsened(self, scale: int) -> Grid:
        """The grid whose pixel is exactly ``scale`` x ``scale`` of ours, sharing the origin."""
        x0, dx, _, y0, _, dy = self.geotransform
        return Grid(
            self.crs_wkt,
            (x0, dx * scale, 0.0, y0, 0.0, dy * scale),
            math.ceil(self.width / scale),
            math.ceil(self.height / scale),
        )


def require_north_up(grid: Grid, layer: str) -> None:
    if not grid.is_north_up:
        raise InputError(
            f"{layer} has a rotated or south-up geotransform {grid.geotransform}; warp it to a "
            f"north-up grid first (e.g. gdalwarp without -rotate)."
        )


def choose_scale(ratio: float, supported: tuple[int, ...], layer: str, what: str) -> int:
    """The supported scale for a coarse/fine resolution ratio (``coarse_scale``), or an error.

    ``what`` names the supported scales for the message, e.g. "model 'x4' supports x4".
    """
    scale = coarse_scale(ratio, supported)
    if scale is None:
        listed = ", ".join(f"x{s}" for s in supported)
        raise InputError(
            f"{layer}: its pixel is {ratio:.3g} times the guidance pixel, which matches no scale "
            f"{what} supports ({listed}) at or up to {MAX_COARSENING:g} times coarser than the LST; "
            f"resample the LST to a supported multiple of the guidance pixel or choose another model."
        )
    return scale


def matching_scale(ratio: float, supported: tuple[int, ...]) -> int | None:
    """The supported integer scale within ``SCALE_TOLERANCE`` of a resolution ratio, or None."""
    if not supported:
        return None
    nearest = min(supported, key=lambda s: abs(ratio - s))
    return nearest if abs(ratio / nearest - 1.0) <= SCALE_TOLERANCE else None


def coarse_scale(ratio: float, supported: tuple[int, ...]) -> int | None:
    """The scale whose coarse grid an LST of this pixel ratio is averaged onto, or None.

    The matching scale when there is one; else the smallest coarser one (the LST is averaged onto
    coarser pixels, never interpolated onto finer ones), up to ``MAX_COARSENING`` times the LST pixel.
    """
    if ratio < 1.0 + SCALE_TOLERANCE:
        return None
    matching = matching_scale(ratio, supported)
    if matching is not None:
        return matching
    coarser = [s for s in supported if ratio < s <= ratio * MAX_COARSENING]
    return min(coarser) if coarser else None


def scale_steps(
    ratio: float, supported: tuple[int, ...], max_steps: int = MAX_CASCADE_STEPS
) -> tuple[int, ...]:
    """The scales to run in turn, coarsest first, whose product is ``coarse_scale`` of the reachable totals.

    One step when a supported scale fits; else a cascade of up to ``max_steps`` (the fewest steps, the
    largest scale last, on the finest grid). Empty when no total fits.
    """
    sequences: dict[int, tuple[int, ...]] = {}
    for count in range(1, max_steps + 1):
        for steps in itertools.combinations_with_replacement(sorted(set(supported)), count):
            sequences.setdefault(math.prod(steps), steps)
    total = coarse_scale(ratio, tuple(sorted(sequences)))
    return sequences[total] if total is not None else ()


def is_aligned(grid: Grid, target: Grid) -> bool:
    """True when ``grid`` has ``target``'s pixel size and its pixel edges (same CRS assumed)."""
    if not (
        math.isclose(grid.pixel_width, target.pixel_width, rel_tol=1e-6)
        and math.isclose(grid.pixel_height, target.pixel_height, rel_tol=1e-6)
    ):
        return False
    shift_x = (grid.origin_x - target.origin_x) / target.pixel_width
    shift_y = (target.origin_y - grid.origin_y) / target.pixel_height
    return all(abs(s - round(s)) <= ALIGNMENT_TOLERANCE_PX for s in (shift_x, shift_y))


def same_shape_and_transform(a: Grid, b: Grid) -> bool:
    """Pixel-for-pixel identical grids (same CRS assumed)."""
    return (
        (a.width, a.height) == (b.width, b.height)
        and is_aligned(a, b)
        and math.isclose(a.origin_x, b.origin_x, abs_tol=ALIGNMENT_TOLERANCE_PX * a.pixel_width)
        and math.isclose(a.origin_y, b.origin_y, abs_tol=ALIGNMENT_TOLERANCE_PX * a.pixel_height)
    )


def shared_corner_scale(coarse: Grid, fine: Grid) -> int | None:
    """The integer ratio (2 or more) of ``coarse``'s pixel to ``fine``'s when both grids share their
    upper-left corner, else None."""
    ratio = coarse.pixel_width / fine.pixel_width
    scale = round(ratio)
    tolerance = 1e-6 * abs(coarse.pixel_width)
    same_corner = math.isclose(
        coarse.origin_x, fine.origin_x, rel_tol=1e-5, abs_tol=tolerance
    ) and math.isclose(coarse.origin_y, fine.origin_y, rel_tol=1e-5, abs_tol=tolerance)
    if scale < 2 or abs(ratio - scale) > 1e-6 or not same_corner:
        return None
    return scale

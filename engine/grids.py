"""Raster grids: the fine guidance grid, the coarse grid it implies, and how they relate.

Pure geotransform arithmetic; CRS comparison and warping live in `engine.raster`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InputError

# A resolution ratio this far from an integer scale (relative) is refused, nearer is warped.
SCALE_TOLERANCE = 0.15
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
    """The supported integer scale nearest to a coarse/fine resolution ratio, or an error.

    ``what`` names the supported scales for the message, e.g. "model 'x4' supports x4".
    """
    nearest = matching_scale(ratio, supported)
    if nearest is None:
        listed = ", ".join(f"x{s}" for s in supported)
        raise InputError(
            f"{layer}: its pixel is {ratio:.3g} times the guidance pixel, which matches no scale "
            f"{what} supports ({listed}); resample the LST to a supported multiple of the guidance "
            f"pixel or choose another model."
        )
    return nearest


def matching_scale(ratio: float, supported: tuple[int, ...]) -> int | None:
    """The supported integer scale within ``SCALE_TOLERANCE`` of a resolution ratio, or None."""
    if not supported:
        return None
    nearest = min(supported, key=lambda s: abs(ratio - s))
    return nearest if abs(ratio / nearest - 1.0) <= SCALE_TOLERANCE else None


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

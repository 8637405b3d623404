"""Coordinate reference systems: comparison, labels, transformations and pixel sizes across CRSs."""

from __future__ import annotations

import numpy as np

from ..grids import Grid
from .session import osr, require_gdal


def same_crs(wkt_a: str, wkt_b: str) -> bool:
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


def crs_label(wkt: str) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    code = srs.GetAuthorityCode(None)
    return f"{srs.GetAuthorityName(None)}:{code}" if code else (srs.GetName() or "unknown CRS")


def pixel_size_label(grid: Grid, size: float | None = None) -> str:
    """A pixel size (``grid``'s own unless given, in its CRS) with its linear unit, e.g. "120 m"."""
    srs = osr.SpatialReference()
    srs.ImportFromWkt(grid.crs_wkt)
    unit = (
        "m"
        if srs.IsProjected() and srs.GetLinearUnits() == 1.0
        else ("deg" if srs.IsGeographic() else srs.GetLinearUnitsName())
    )
    return f"{grid.pixel_width if size is None else size:g} {unit}"


def _transformation(source_wkt: str, target_wkt: str) -> osr.CoordinateTransformation:
    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromWkt(source_wkt)
    target.ImportFromWkt(target_wkt)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(source, target)


def pixel_size_in(grid: Grid, target: Grid) -> tuple[float, float]:
    """Size (width, height) of ``grid``'s pixel measured in ``target``'s CRS, at target's centre."""
    to_grid, to_target = (
        _transformation(target.crs_wkt, grid.crs_wkt),
        _transformation(grid.crs_wkt, target.crs_wkt),
    )
    tx0, tdx, _, ty0, _, tdy = target.geotransform
    cx, cy = to_grid.TransformPoint(tx0 + tdx * target.width / 2, ty0 + tdy * target.height / 2)[:2]
    dx, dy = grid.geotransform[1], grid.geotransform[5]
    centre = np.array(to_target.TransformPoint(cx, cy)[:2])
    right = np.array(to_target.TransformPoint(cx + dx, cy)[:2])
    down = np.array(to_target.TransformPoint(cx, cy + dy)[:2])
    return float(np.linalg.norm(right - centre)), float(np.linalg.norm(down - centre))


def window_covering(grid: Grid, target: Grid, pad_px: int = 2) -> tuple[Grid, int, int] | None:
    """The part of ``grid`` that covers ``target``'s extent (plus ``pad_px``), as a grid and its
    pixel offsets in ``grid``; None when they do not overlap."""
    to_grid = _transformation(target.crs_wkt, grid.crs_wkt)
    tx0, tdx, _, ty0, _, tdy = target.geotransform
    steps = np.linspace(0.0, 1.0, 33)
    edge_x = np.concatenate([steps, steps, np.zeros_like(steps), np.ones_like(steps)]) * target.width
    edge_y = np.concatenate([np.zeros_like(steps), np.ones_like(steps), steps, steps]) * target.height
    points = [to_grid.TransformPoint(tx0 + tdx * c, ty0 + tdy * r)[:2] for c, r in zip(edge_x, edge_y)]
    xs, ys = np.array(points).T
    gx0, gdx, _, gy0, _, gdy = grid.geotransform
    cols, rows = (xs - gx0) / gdx, (ys - gy0) / gdy
    col0, col1 = (
        max(int(np.floor(cols.min())) - pad_px, 0),
        min(int(np.ceil(cols.max())) + pad_px, grid.width),
    )
    row0, row1 = (
        max(int(np.floor(rows.min())) - pad_px, 0),
        min(int(np.ceil(rows.max())) + pad_px, grid.height),
    )
    if col0 >= col1 or row0 >= row1:
        return None
    sub = Grid(
        grid.crs_wkt, (gx0 + col0 * gdx, gdx, 0.0, gy0 + row0 * gdy, 0.0, gdy), col1 - col0, row1 - row0
    )
    return sub, col0, row0


def epsg_wkt(code: int) -> str:
    """The WKT of an EPSG coordinate reference system."""
    require_gdal()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(code)
    return srs.ExportToWkt()


def metres_per_unit(grid: Grid) -> float | None:
    """Metres per unit of ``grid``'s projected CRS (1 for metres), or None for a geographic or unknown one."""
    srs = osr.SpatialReference()
    if not grid.crs_wkt or srs.ImportFromWkt(grid.crs_wkt) != 0 or not srs.IsProjected():
        return None
    return float(srs.GetLinearUnits())

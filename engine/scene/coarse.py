"""The coarse LST: the LST band in Kelvin on the coarse grid, NaN where masked.

The LST is converted block by block (nodata, QA mask and units applied) over the part that
covers the guidance, then put on the coarse grid whose pixel is exactly ``scale`` guidance
pixels: copied when it is already there, else warped with area averaging, masking coarse
pixels with too little valid source area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..grids import Grid, is_aligned
from ..raster import (
    SCRATCH_CREATION_OPTIONS,
    band_nodata,
    band_of,
    create_geotiff,
    crs_label,
    decide_lst_units,
    flush,
    get_band,
    open_raster,
    open_scratch_for_update,
    pixel_size_label,
    read_window,
    same_crs,
    valid_mask,
    warp_to_grid,
    window_covering,
    write_window,
)
from ..tiling import Block, blocks
from ..units import KelvinRange, LstUnits, check_plausible_kelvin, to_kelvin_where_valid
from .context import RunContext
from .inputs import LstInput, open_qa_mask
from .request import DownscaleRequest

# A warped coarse LST pixel needs this share of valid source area, else it is masked.
MIN_VALID_FRACTION = 0.5


@dataclass
class CoarseLst:
    """The scratch raster of the coarse LST in Kelvin and how it was made."""

    path: str
    units: LstUnits
    warped: bool
    warp_reason: str


def prepare_coarse_lst(
    request: DownscaleRequest,
    lst: LstInput,
    coarse_grid: Grid,
    scale: int,
    scratch: Path,
    context: RunContext,
    block_px: int,
) -> CoarseLst:
    """Write the LST in Kelvin on the coarse grid (NaN where masked) and say what was done."""
    layer = lst.layer
    band = get_band(lst.dataset, request.lst_band, layer)
    units = decide_lst_units(lst.dataset, band, request.lst_path, request.lst_units, layer)
    context.log(f"LST units: {units.name} ({units.reason})")
    qa = open_qa_mask(request, lst.grid, context)
    covering = window_covering(lst.grid, coarse_grid)
    if covering is None:
        raise InputError(
            f"{layer} does not overlap the guidance extent; check that both cover the same area."
        )
    lst_grid, col0, row0 = covering

    native = create_geotiff(
        scratch / "lst_kelvin.tif", lst_grid, SCRATCH_CREATION_OPTIONS, nodata=float("nan")
    )
    fraction = create_geotiff(scratch / "lst_valid.tif", lst_grid, SCRATCH_CREATION_OPTIONS)
    nodata = band_nodata(band)
    seen = KelvinRange()
    grown_px = 0
    for block in blocks(lst_grid.width, lst_grid.height, block_px):
        context.check_cancelled()
        x0, y0, width, height = block.x0, block.y0, block.width, block.height
        values = read_window(band, Block(col0 + x0, row0 + y0, width, height))
        valid = valid_mask(values, nodata)
        if qa is not None:
            cloud, grown = qa.read_invalid(col0 + x0, row0 + y0, width, height)
            grown_px += int((valid & ~cloud & grown).sum())
            valid &= ~grown
        kelvin = to_kelvin_where_valid(values, valid, units)
        seen.add(kelvin)
        write_window(band_of(native), kelvin, x0, y0)
        write_window(band_of(fraction), np.isfinite(kelvin).astype(np.float32), x0, y0)
    native, fraction = None, None
    if request.qa_mask_grow_px:
        context.log(f"QA mask grown by {request.qa_mask_grow_px} px: {grown_px} more LST pixels masked")
    if seen.is_empty:
        raise InputError(
            f"{layer} has no valid pixels over the guidance (all nodata or masked); check the band, "
            f"its nodata value, the mask and that the LST covers the guidance."
        )
    check_plausible_kelvin(seen.low_kelvin, seen.high_kelvin, layer, units)

    coarse_path = str(scratch / "lst_coarse.tif")
    warped, reason = _to_coarse_grid(lst_grid, coarse_grid, scale, scratch, coarse_path, block_px)
    context.log(reason)
    _check_coverage(coarse_path, coarse_grid, request.lst_path, block_px)
    return CoarseLst(coarse_path, units, warped, reason)


def _to_coarse_grid(
    lst_grid: Grid, coarse_grid: Grid, scale: int, scratch: Path, coarse_path: str, block_px: int
) -> tuple[bool, str]:
    """Put the Kelvin scratch raster on the coarse grid; whether it was warped, and why."""
    crs_matches = same_crs(lst_grid.crs_wkt, coarse_grid.crs_wkt)
    coarse_size = pixel_size_label(coarse_grid)
    if crs_matches and is_aligned(lst_grid, coarse_grid):
        warp_to_grid(str(scratch / "lst_kelvin.tif"), coarse_path, coarse_grid, "near", float("nan"))
        return False, f"LST already on the x{scale} coarse grid ({coarse_size}); no warp"
    if not crs_matches:
        why = f"its CRS {crs_label(lst_grid.crs_wkt)} differs from the guidance's {crs_label(coarse_grid.crs_wkt)}"
    elif lst_grid.pixel_width < coarse_grid.pixel_width * (1 - 1e-6):
        why = (
            f"its pixel of {pixel_size_label(lst_grid)} is finer than the coarse pixel of {coarse_size} (each "
            "coarse pixel is the area mean of the LST in it, and the output conserves those means)"
        )
    elif not math.isclose(lst_grid.pixel_width, coarse_grid.pixel_width, rel_tol=1e-6):
        why = f"its pixel of {pixel_size_label(lst_grid)} differs from the coarse pixel of {coarse_size}"
    else:
        why = "its pixel edges are shifted from the guidance grid's"
    warp_to_grid(str(scratch / "lst_kelvin.tif"), coarse_path, coarse_grid, "average", float("nan"))
    fraction_path = str(scratch / "lst_valid_coarse.tif")
    warp_to_grid(str(scratch / "lst_valid.tif"), fraction_path, coarse_grid, "average", -1.0)
    _mask_sparse_pixels(coarse_path, fraction_path, coarse_grid, block_px)
    return True, (
        f"LST warped onto the x{scale} coarse grid of the guidance ({coarse_size}) with "
        f"area averaging because {why}"
    )


def _mask_sparse_pixels(coarse_path: str, fraction_path: str, grid: Grid, block_px: int) -> None:
    """Mask coarse pixels whose share of valid source area is under ``MIN_VALID_FRACTION``."""
    coarse = open_scratch_for_update(coarse_path)
    fraction = open_raster(fraction_path, "coarse LST valid fraction")
    for block in blocks(grid.width, grid.height, block_px):
        values = read_window(band_of(coarse), block)
        share = read_window(band_of(fraction), block)
        values[~(share >= MIN_VALID_FRACTION)] = np.nan
        write_window(band_of(coarse), values, block.x0, block.y0)
    flush(coarse)


def _check_coverage(coarse_path: str, grid: Grid, lst_path: str, block_px: int) -> None:
    dataset = open_raster(coarse_path, "coarse LST")
    band = band_of(dataset)
    for block in blocks(grid.width, grid.height, block_px):
        if np.isfinite(read_window(band, block)).any():
            return
    raise InputError(
        f"LST {lst_path} does not overlap the guidance extent (or is masked wherever it "
        f"does); check that both cover the same area."
    )

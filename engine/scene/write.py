"""Writing the output: from the blended scratch raster to the final GeoTIFF (or COG).

The output is staged in the scratch folder, described (band, units, run metadata) and moved
into place atomically, so that a failed or cancelled run leaves no half-written output.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..conservation import max_abs_residual
from ..errors import InputError
from ..grids import Grid
from ..raster import (
    OUTPUT_BLOCK_PX,
    OUTPUT_CREATION_OPTIONS,
    band_of,
    create_geotiff,
    describe_band,
    flush,
    gdal_failure_mark,
    output_driver,
    read_window,
    require_no_gdal_failures_since,
    translate_to_cog,
    translate_to_format,
    write_metadata,
    write_window,
)
from ..tiling import Block, blocks
from ..units import kelvin_to
from .context import RunContext
from .request import DownscaleRequest, DownscaleResult

OUTPUT_NODATA = -9999.0
# Write blocks of about this many fine pixels square, a multiple of the output block and the scale.
WRITE_BLOCK_TARGET_PX = 512
# Progress once the GeoTIFF is written, before its conversion to a COG.
COG_START_PERCENT = 95


@dataclass
class StagedOutput:
    """The output raster written in the scratch folder, open for its description, and the largest
    coarse residual measured while writing it."""

    path: Path
    final: Path  # the folder of the final files, so that no output name can clash with a scratch file
    dataset: object
    max_conservation_residual_k: float
    failure_mark: int


def stage_output(
    request: DownscaleRequest,
    blended,
    coarse_band,
    grid: Grid,
    scale: int,
    scratch: Path,
    context: RunContext,
) -> StagedOutput:
    """Write the output values from the blended scratch raster into the scratch folder, measuring
    coarse conservation; `publish_output` then describes it and moves it into place."""
    output = Path(request.output_path).resolve()
    driver = output_driver(output)
    final = scratch / "final"
    final.mkdir()
    staged = final / output.name if driver == "GTiff" and not request.cog else scratch / "staged.tif"
    mark = gdal_failure_mark()
    dataset = create_geotiff(staged, grid, OUTPUT_CREATION_OPTIONS, nodata=OUTPUT_NODATA)
    residual_k = _write_values(request, band_of(blended), coarse_band, band_of(dataset), grid, scale, context)
    context.log(
        "Largest difference between the output averaged onto the coarse grid and the input LST: "
        f"{residual_k:.4f} K" + ("" if request.conserve_coarse_means else " (coarse-pixel conservation off)")
    )
    return StagedOutput(staged, final, dataset, residual_k, mark)


def publish_output(
    request: DownscaleRequest, staged: StagedOutput, result: DownscaleResult, context: RunContext
) -> None:
    """Describe the staged output (band, units, run metadata), convert it (COG, other formats) and
    move it into place atomically."""
    output, final = Path(request.output_path).resolve(), staged.final
    dataset = staged.dataset
    describe(request, dataset, band_of(dataset), result)
    flush(dataset)
    staged.dataset = dataset = None
    require_no_gdal_failures_since(staged.failure_mark, output)
    files = [staged.path]
    if request.cog:
        context.progress(COG_START_PERCENT)
        translate_to_cog(str(staged.path), str(final / output.name))
        staged.path.unlink()
        files = [final / output.name]
    elif output_driver(output) != "GTiff":
        files = translate_to_format(str(staged.path), final, output.name, output_driver(output))
    require_no_gdal_failures_since(staged.failure_mark, output)
    context.check_cancelled()
    for written in files:
        os.replace(written, output if written.name == output.name else output.parent / written.name)
    context.log(f"Wrote {output}")


def _write_values(
    request: DownscaleRequest,
    blended_band,
    coarse_band,
    out_band,
    grid: Grid,
    scale: int,
    context: RunContext,
) -> float:
    """Copy the blended values in the output units; the largest coarse residual, in Kelvin."""
    step = math.lcm(OUTPUT_BLOCK_PX, scale) * max(
        1, WRITE_BLOCK_TARGET_PX // math.lcm(OUTPUT_BLOCK_PX, scale)
    )
    worst, valid_px = 0.0, 0
    for block in blocks(grid.width, grid.height, step):
        context.check_cancelled()
        x0, y0, width, height = block.x0, block.y0, block.width, block.height
        fine = read_window(blended_band, block)
        coarse_w, coarse_h = math.ceil(width / scale), math.ceil(height / scale)
        coarse = read_window(coarse_band, Block(x0 // scale, y0 // scale, coarse_w, coarse_h))
        padded = np.full((coarse_h * scale, coarse_w * scale), np.nan, np.float32)
        padded[:height, :width] = fine
        worst = max(worst, max_abs_residual(padded, np.isfinite(padded), coarse, np.isfinite(coarse), scale))
        values = kelvin_to(fine, request.output_units)
        valid_px += int(np.isfinite(values).sum())
        write_window(
            out_band, np.where(np.isfinite(values), values, OUTPUT_NODATA).astype(np.float32), x0, y0
        )
    if valid_px == 0:
        raise InputError(
            f"Every output pixel would be nodata: the LST {request.lst_path} and the guidance "
            f"{', '.join(request.guidance_paths)} have no valid pixel in common (each band's nodata, NaN and the "
            "QA mask taken together); check their nodata values, the mask and that they cover the same area. "
            "Nothing was written."
        )
    return worst


def describe(request: DownscaleRequest, dataset, band, result: DownscaleResult) -> None:
    """Band description and unit, and the run's inputs, choices and measures as metadata."""
    celsius = request.output_units == "celsius"
    clipped_px, clipped_percent = result.detail_clipped_px, result.detail_clipped_percent
    describe_band(
        band, f"Land surface temperature ({'degC' if celsius else 'K'})", "degC" if celsius else "K"
    )
    write_metadata(
        dataset,
        {
            "MOCOLSK_ENGINE_VERSION": __version__,
            "MOCOLSK_METHOD": result.method,
            "MOCOLSK_BLEND_WEIGHTS": result.blend_weights,
            "MOCOLSK_MODEL": result.model_name,
            "MOCOLSK_MODEL_VERSION": result.model_version,
            "MOCOLSK_SCALE": str(result.scale),
            "MOCOLSK_LST": f"{Path(request.lst_path).resolve()} band {request.lst_band}",
            "MOCOLSK_LST_UNITS": f"{result.lst_units} ({result.lst_units_reason})",
            "MOCOLSK_QA_MASK": str(Path(request.qa_mask_path).resolve()) if request.qa_mask_path else "",
            "MOCOLSK_QA_MASK_GROW_PX": str(request.qa_mask_grow_px),
            "MOCOLSK_GUIDANCE": ";".join(str(Path(p).resolve()) for p in request.guidance_paths),
            "MOCOLSK_GUIDANCE_BANDS": result.guidance_mapping,
            "MOCOLSK_WARP": result.warp_reason,
            "MOCOLSK_CONSERVE_COARSE_MEANS": "yes" if request.conserve_coarse_means else "no",
            "MOCOLSK_MAX_CONSERVATION_RESIDUAL_K": f"{result.max_conservation_residual_k:.6f}",
            "MOCOLSK_DETAIL_BOUND_CLIPPED_PX": "" if clipped_px is None else str(clipped_px),
            "MOCOLSK_DETAIL_BOUND_CLIPPED_PERCENT": ""
            if clipped_percent is None
            else f"{clipped_percent:.6f}",
            "MOCOLSK_OUTPUT_UNITS": request.output_units,
            "MOCOLSK_DEVICE": result.device,
        },
    )


def stage_uncertainty(
    request: DownscaleRequest, spread, grid: Grid, result: DownscaleResult, scratch: Path, context: RunContext
) -> Path:
    """Write the uncertainty GeoTIFF (K, one sigma) into the scratch folder; the caller moves it into
    place once the LST output is written, so that a failed run leaves neither."""
    name = Path(request.uncertainty_path).name
    staged = scratch / f"staged-uncertainty-{name}"
    dataset = create_geotiff(staged, grid, OUTPUT_CREATION_OPTIONS, nodata=OUTPUT_NODATA)
    band = band_of(dataset)
    source = band_of(spread)
    for block in blocks(grid.width, grid.height, WRITE_BLOCK_TARGET_PX):
        context.check_cancelled()
        values = read_window(source, block)
        write_window(
            band, np.where(np.isfinite(values), values, OUTPUT_NODATA).astype(np.float32), block.x0, block.y0
        )
    describe_band(band, "Uncertainty of the land surface temperature (K, one sigma)", "K")
    scale = result.uncertainty_sigma_scale
    write_metadata(
        dataset,
        {
            "MOCOLSK_ENGINE_VERSION": __version__,
            "MOCOLSK_METHOD": result.method,
            "MOCOLSK_BLEND_WEIGHTS": result.blend_weights,
            "MOCOLSK_MODEL": result.model_name,
            "MOCOLSK_UNCERTAINTY": {
                "mocolsk": "spread of the 8 orientations of the input (test-time augmentation)",
                "blend": "weighted spread of the blended methods",
            }.get(result.method, "spread of the bagged regression trees"),
            "MOCOLSK_UNCERTAINTY_SIGMA_SCALE": "" if scale is None else f"{scale:.4f}",
            "MOCOLSK_LST_OUTPUT": str(Path(request.output_path).resolve()),
        },
    )
    flush(dataset)
    dataset = band = None
    if request.cog:
        translate_to_cog(str(staged), str(scratch / f"cog-uncertainty-{name}"))
        staged.unlink()
        staged = scratch / f"cog-uncertainty-{name}"
    return staged

"""Scene pipeline: downscale an LST raster on disk to the guidance grid, tile by tile.

One entry point, `downscale_scene`, serves the QGIS plugin and the command line. It runs the
stages of `engine.scene` in order:

1. `request`: check the request before anything is read;
2. `inputs`: open the guidance (the output grid) and the LST, and measure their pixel ratio;
3. `method`: choose the predictor (MoCoLSK package or a classic sharpener) and its scale;
4. `coarse`: convert the LST to Kelvin and put it on the coarse grid whose pixel is exactly
   ``scale`` guidance pixels (warping with area averaging when it is not there already);
5. `tiles`: for methods with a scene-wide regression, collect coarse samples tile by tile and
   fit; then stream overlapping tiles: read window -> fill masked pixels -> predict -> bound
   the network's detail by the local coarse range -> restore the coarse means -> blend into a
   scratch raster;
6. `write`: write the compressed GeoTIFF (or COG) with metadata, and move it into place atomically.

Memory stays bounded by the tile size: every read and write is windowed and GDAL's block
cache is capped. A cancelled or failed run removes all scratch files and never touches
an existing output unless ``overwrite`` is set.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import traceback
from dataclasses import replace
from pathlib import Path

from .auto_model import AUTO_MODEL, AutoModel, PixelRatio, auto_model, choose_auto_model
from .blend import BlendSharpener
from .errors import EngineError, InputError
from .package import bundled_scales
from .raster import average_onto, band_of, gdal_session, grid_of, io_errors, open_raster, pixel_size_label
from .scene.coarse import prepare_coarse_lst
from .scene.context import CancelCheck, LogCallback, ProgressCallback, RunContext
from .scene.inputs import Guidance, lst_pixel_ratio, native_pixel, open_guidance, open_lst
from .scene.method import open_method
from .scene.request import METHODS, DownscaleRequest, DownscaleResult, validate_request
from .scene.scratch import SCRATCH_PREFIX, scratch_folder
from .scene.selfcheck import AUTO_METHOD, candidates, self_check
from .scene.tiles import TileReader, fit_scene, plan_scene_tiles, predict_tiles
from .scene.write import OUTPUT_NODATA, publish_output, stage_output, stage_uncertainty

__all__ = [
    "CONVERSION_BLOCK_PX",
    "METHODS",
    "OUTPUT_NODATA",
    "DownscaleRequest",
    "DownscaleResult",
    "auto_model_for",
    "downscale_scene",
]

# Whole-raster passes (unit conversion, masking, coverage) read blocks of this many pixels square.
CONVERSION_BLOCK_PX = 512
# Percent of the progress bar reached at the end of each stage.
PREPARED_PERCENT = 5
FITTED_PERCENT = 15
TILES_DONE_PERCENT = 90
# Methods that run the bundled packages, and so cascade them when no single one fits the pixel ratio.
CASCADE_METHODS = ("mocolsk", "blend")
# The network's smallest input, in coarse pixels a side.
MIN_NETWORK_COARSE_PX = 2


def downscale_scene(
    request: DownscaleRequest,
    progress: ProgressCallback | None = None,
    is_cancelled: CancelCheck | None = None,
    log: LogCallback | None = None,
) -> DownscaleResult:
    """Downscale ``request.lst_path`` onto the guidance grid and write ``request.output_path``."""
    context = RunContext(
        progress or (lambda _: None), is_cancelled or (lambda: False), log or (lambda _: None)
    )
    validate_request(request)
    with gdal_session(), io_errors(input_layers(request), request.output_path):
        with contextlib.ExitStack() as folders:
            output = Path(request.output_path).resolve()
            scratch = folders.enter_context(
                scratch_folder(output.parent, scratch_prefix(output), context.log)
            )
            # The uncertainty is staged beside its own output, so that moving it into place cannot fail
            # across disks once the LST output is in place.
            uncertainty = Path(request.uncertainty_path or request.output_path).resolve()
            uncertainty_scratch = (
                scratch
                if uncertainty.parent == output.parent
                else folders.enter_context(
                    scratch_folder(uncertainty.parent, scratch_prefix(uncertainty), context.log)
                )
            )
            try:
                return _run(request, context, scratch, uncertainty_scratch=uncertainty_scratch)
            except BaseException as exc:
                # Drop the failed frames' GDAL datasets so that their scratch files can be deleted (Windows).
                traceback.clear_frames(exc.__traceback__)
                raise


def auto_model_for(lst_path: str, guidance_path: str, native_pixel_m: float | None = None) -> AutoModel:
    """What Model "auto" runs for an LST file over a guidance file, measured and decided as
    ``downscale_scene`` does (the native pixel given, else from the LST's name, metadata or MTL); the
    Downscale LST dialog shows its label. Engine errors when a file does not open or has no grid."""
    layers = {lst_path: f"LST {lst_path}", guidance_path: f"Guidance {guidance_path}"}
    with gdal_session(), io_errors(layers, ""):
        lst = open_lst(lst_path)
        guidance_grid = grid_of(open_raster(guidance_path, layers[guidance_path]), layers[guidance_path])
        return auto_model(lst.grid, guidance_grid, bundled_scales(), native_pixel(lst, native_pixel_m))


def scratch_prefix(output_path: str | os.PathLike) -> str:
    """The name of a run's scratch folder beside its output, up to tempfile's random suffix: it
    names the output, so that a rerun can find what a killed run left (engine.distributed)."""
    return f"{SCRATCH_PREFIX}{Path(output_path).name}."


def input_layers(request: DownscaleRequest) -> dict[str, str]:
    """Each input file and its layer label, for the messages of failed reads."""
    layers = {path: f"Guidance {path}" for path in request.guidance_paths}
    if request.qa_mask_path:
        layers[request.qa_mask_path] = f"QA mask {request.qa_mask_path}"
    layers[request.lst_path] = f"LST {request.lst_path}"
    return layers


def open_auto_method(request: DownscaleRequest, guidance, pixels: PixelRatio, context: RunContext):
    """The default the self-check starts from: the blend where the package carries weights, else
    MoCoLSK where its package and runtime can run here, else a classic method; with the methods
    the self-check will compare."""
    uncertainty = bool(request.uncertainty_path)
    for default, network, blend in (("blend", True, True), ("mocolsk", True, False)):
        try:
            method = open_method(replace(request, method=default), guidance, pixels, context)
        except EngineError as error:
            context.log(f"Auto: {default} cannot run on these inputs ({error})")
            continue
        if method.predictor.name == default:
            return method, candidates(uncertainty, network, blend)
    fallback = "dms" if uncertainty else "bicubic"
    method = open_method(replace(request, method=fallback), guidance, pixels, context)
    return method, candidates(uncertainty, network=False, blend=False)


def require_network_extent(request: DownscaleRequest, method, coarse_grid, lst_pixel: str) -> None:
    """The network needs at least 2 x 2 coarse pixels over the guidance; refuse a smaller area up front."""
    if method.bounds_detail and min(coarse_grid.width, coarse_grid.height) < MIN_NETWORK_COARSE_PX:
        side = MIN_NETWORK_COARSE_PX * method.scale
        raise InputError(
            f"LST {request.lst_path}: over the guidance it covers only {coarse_grid.width}x{coarse_grid.height} "
            f"coarse pixel(s) of {lst_pixel}; MoCoLSK needs at least {MIN_NETWORK_COARSE_PX}x"
            f"{MIN_NETWORK_COARSE_PX}. Give an LST and guidance covering at least {side}x{side} guidance pixels, "
            "or use the bicubic method (TsHARP and DMS need at least 10 coarse pixels)."
        )


def _run(
    request: DownscaleRequest,
    context: RunContext,
    scratch: Path,
    earlier: tuple[DownscaleResult, ...] = (),
    origin: DownscaleRequest | None = None,
    uncertainty_scratch: Path | None = None,
) -> DownscaleResult:
    """One downscaling step; in a cascade, ``earlier`` holds the results of the coarser steps and ``origin``
    the request as given, which the output's metadata and the result describe too. The uncertainty is
    staged in ``uncertainty_scratch`` (beside its output; ``scratch`` by default)."""
    timings = context.timings_s
    start = time.perf_counter()
    context.progress(0)
    guidance = open_guidance(request)
    lst = open_lst(request.lst_path)
    pixels = lst_pixel_ratio(request, lst, guidance.grid, context)
    lst_pixel = pixels.lst_pixel
    if request.method in CASCADE_METHODS and request.model in (None, "", AUTO_MODEL):
        models = choose_auto_model(pixels, bundled_scales())
        if len(models.required_steps(f"LST {request.lst_path}")) > 1:
            return _run_cascade(request, context, scratch, guidance, models, uncertainty_scratch)
    auto = request.method == AUTO_METHOD
    if auto:
        method, pool = open_auto_method(request, guidance, pixels, context)
    else:
        method = open_method(request, guidance, pixels, context)
        request = replace(request, method=method.predictor.name)
    scale = method.scale
    coarse_grid = guidance.grid.coarsened(scale)
    if not auto:
        require_network_extent(request, method, coarse_grid, lst_pixel)
    context.check_cancelled()
    coarse = prepare_coarse_lst(request, lst, coarse_grid, scale, scratch, context, CONVERSION_BLOCK_PX)
    check = None
    if auto:
        fallback = method.predictor.name
        check = self_check(request, coarse.path, coarse_grid, scale, pool, fallback, scratch, context)
        context.log(f"Auto: {check.summary()}")
        request = replace(request, method=check.chosen)
        if check.chosen != fallback:
            # On the coarse grid the default chose (a coarser one when no bundled package matches the ratio).
            method = open_method(request, guidance, replace(pixels, ratio=float(scale)), context)
        require_network_extent(request, method, coarse_grid, lst_pixel)
    mapping = method.mapping
    note = method.recommendation_note(request.method)
    if note:
        context.log(note)
    context.log(
        f"Method {request.method}, scale x{scale}; guidance bands mapped {mapping.how}: "
        f"{', '.join(mapping.names) or 'none used'}"
    )
    timings["prepare_s"] = time.perf_counter() - start
    context.progress(PREPARED_PERCENT)

    plan = plan_scene_tiles(coarse_grid, scale, request.tile_size_px, network=method.bounds_detail)
    coarse_dataset = open_raster(coarse.path, "coarse LST")
    coarse_band = band_of(coarse_dataset)
    reader = TileReader(guidance, mapping, coarse_band, scale, method.guidance_conversions)
    if method.predictor.needs_fit:
        start = time.perf_counter()
        fit_scene(
            method.predictor,
            reader,
            coarse_grid,
            plan,
            context,
            _between(context, PREPARED_PERCENT, FITTED_PERCENT),
        )
        timings["fit_s"] = time.perf_counter() - start
    context.progress(FITTED_PERCENT)

    start = time.perf_counter()
    uncertainty = bool(request.uncertainty_path)
    blended, stats, spread = predict_tiles(
        plan,
        reader,
        method,
        guidance.grid,
        request.conserve_coarse_means,
        scratch,
        context,
        _between(context, FITTED_PERCENT, TILES_DONE_PERCENT),
        uncertainty,
    )
    timings["tiles_s"] = time.perf_counter() - start
    context.log(
        f"Predicted {len(plan.tiles)} tile(s) of up to {plan.core * scale} px (halo {plan.halo * scale} px) on "
        f"{method.device}"
    )
    if method.bounds_detail:
        context.log(
            f"Detail bound: {stats.detail_clipped_px} pixels ({stats.detail_clipped_percent:.3g} %) clipped to "
            "the local coarse range"
        )

    start = time.perf_counter()
    staged = stage_output(request, blended, coarse_band, guidance.grid, scale, scratch, context)
    result = DownscaleResult(
        output_path=str(Path(request.output_path).resolve()),
        method=request.method,
        model_name=method.model_name,
        model_version=method.model_version,
        device=method.device,
        scale=scale,
        lst_units=coarse.units.name,
        lst_units_reason=coarse.units.reason,
        warped=coarse.warped,
        warp_reason=coarse.warp_reason,
        guidance_mapping=f"{mapping.how}: {', '.join(mapping.names)}" if mapping.names else mapping.how,
        max_conservation_residual_k=staged.max_conservation_residual_k,
        tiles=len(plan.tiles),
        timings_s=timings,
        detail_clipped_px=stats.detail_clipped_px if method.bounds_detail else None,
        detail_clipped_percent=stats.detail_clipped_percent if method.bounds_detail else None,
        uncertainty_path=str(Path(request.uncertainty_path).resolve()) if uncertainty else None,
        uncertainty_sigma_scale=method.sigma_scale if uncertainty and method.sigma_calibrated else None,
        self_check=check.summary() if check else "",
        scale_steps=(scale,),
        blend_weights=method.predictor.describe() if isinstance(method.predictor, BlendSharpener) else "",
        blend_members=tuple(method.predictor.weights) if isinstance(method.predictor, BlendSharpener) else (),
    )
    if earlier:
        result = cascade_result(result, earlier)
    if origin is not None:
        request = replace(
            request,
            lst_path=origin.lst_path,
            lst_band=origin.lst_band,
            qa_mask_path=origin.qa_mask_path,
            qa_mask_grow_px=origin.qa_mask_grow_px,
        )
    if uncertainty:
        staged_uncertainty = stage_uncertainty(
            request, spread, guidance.grid, result, uncertainty_scratch or scratch, context
        )
    publish_output(request, staged, result, context)
    if uncertainty:
        os.replace(staged_uncertainty, result.uncertainty_path)
        context.log(f"Wrote {result.uncertainty_path} ({uncertainty_note(request.method, result)})")
    timings["write_s"] = time.perf_counter() - start
    context.progress(100)
    return result


def _run_cascade(
    request: DownscaleRequest,
    context: RunContext,
    scratch: Path,
    guidance: Guidance,
    models: AutoModel,
    uncertainty_scratch: Path | None = None,
) -> DownscaleResult:
    """Run bundled packages in turn (e.g. 960 m -> 240 m with x4, then 240 m -> 30 m with x8): each step
    downscales onto the guidance area-averaged to its grid, and the last onto the guidance itself; each
    conserves its coarse means, so the output averages back to the LST on the coarsest grid."""
    steps, scales, pixels = models.steps, models.scales, models.pixels
    grids = [guidance.grid.coarsened(math.prod(scales[i + 1 :])) for i in range(len(steps))]
    path = " -> ".join(
        [pixel_size_label(grids[0].coarsened(scales[0])), *(pixel_size_label(grid) for grid in grids)]
    )
    context.log(
        f"Model: cascade of the bundled packages {' then '.join(f'{name} (x{s})' for name, s in steps)} "
        f"for x{models.total_scale} (LST pixel {pixels.lst_pixel} / guidance pixel {pixels.guidance_pixel}): "
        f"{path}{models.coarser_note}"
    )
    lst_path, results = request.lst_path, []
    for index, ((name, _), grid) in enumerate(zip(steps, grids)):
        first, last = index == 0, index == len(steps) - 1
        folder = scratch / f"step{index + 1}"
        folder.mkdir()
        guidance_paths = list(request.guidance_paths)
        if not last:
            guidance_paths = []
            for number, source in enumerate(request.guidance_paths):
                # The file keeps its name, which the guidance-units check reads (e.g. SR_B4).
                (folder / str(number)).mkdir()
                averaged = folder / str(number) / Path(source).name
                average_onto(source, averaged.with_suffix(".tif"), grid)
                guidance_paths.append(str(averaged.with_suffix(".tif")))
        step = replace(
            request,
            lst_path=lst_path,
            guidance_paths=guidance_paths,
            output_path=request.output_path if last else str(folder / "lst_kelvin.tif"),
            model=name,
            lst_units=request.lst_units if first else "kelvin",
            lst_band=request.lst_band if first else 1,
            qa_mask_path=request.qa_mask_path if first else None,
            qa_mask_grow_px=request.qa_mask_grow_px if first else 0,
            native_pixel_m=request.native_pixel_m if first else None,
            output_units=request.output_units if last else "kelvin",
            cog=request.cog and last,
            uncertainty_path=request.uncertainty_path if last else None,
        )
        context.log(f"Cascade step {index + 1}/{len(steps)}: {name} onto {pixel_size_label(grid)}")
        step_context = RunContext(
            _between(context, 100 * index / len(steps), 100 * (index + 1) / len(steps)),
            context.is_cancelled,
            context.log,
            context.timings_s,
        )
        work = folder / "work"
        work.mkdir()
        results.append(
            _run(
                step,
                step_context,
                work,
                tuple(results),
                request if last else None,
                uncertainty_scratch if last else None,
            )
        )
        lst_path = step.output_path
    return results[-1]


def cascade_result(last: DownscaleResult, earlier: tuple[DownscaleResult, ...]) -> DownscaleResult:
    """The result of a cascade's last step, describing the whole cascade: its models, the total scale, and
    how the LST was read and put on the coarsest grid."""
    first = earlier[0]
    steps = (*(s for result in earlier for s in result.scale_steps), *last.scale_steps)
    return replace(
        last,
        model_name=" then ".join(result.model_name for result in (*earlier, last)),
        blend_weights=" then ".join(r.blend_weights for r in (*earlier, last) if r.blend_weights),
        blend_members=tuple(dict.fromkeys(m for r in (*earlier, last) for m in r.blend_members)),
        scale=math.prod(steps),
        scale_steps=steps,
        lst_units=first.lst_units,
        lst_units_reason=first.lst_units_reason,
        warped=first.warped,
        warp_reason=first.warp_reason,
    )


def uncertainty_note(method: str, result: DownscaleResult) -> str:
    """What the uncertainty layer holds, for the log."""
    what = {
        "mocolsk": "spread of MoCoLSK over the 8 orientations of its input",
        "blend": "weighted spread of the blended methods (how much they disagree)",
    }.get(method, "spread of DMS's regression trees")
    if result.uncertainty_sigma_scale is None:
        return f"{what}, not calibrated: see the README before reading it as one sigma"
    return f"{what} x {result.uncertainty_sigma_scale:.2f}, the factor the model card fitted on validation blocks"


def _between(context: RunContext, start_percent: float, end_percent: float):
    """A stage's progress (a share 0..1) as the run's percent between two marks."""
    return lambda share: context.progress(start_percent + (end_percent - start_percent) * share)

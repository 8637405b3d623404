"""Fine-tune a model package on one scene without any fine LST (self-supervised).

The user's LST raster is the target; its guidance is the fine guidance area-averaged
onto the LST grid, and the network's input is the LST aggregated once more by the model's
scale. This assumes the LST-guidance relation holds across scales, as classic sharpeners
(TsHARP, DMS) do. A bounded number of steps with progress and cancel, then a new package.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.errors import Cancelled, InputError
from engine.model import MoCoLSKConfig, MoCoLSKNet
from engine.package import CARD_SUFFIX, ModelPackage, resolve_package
from engine.units import PLAUSIBLE_MAX_KELVIN, PLAUSIBLE_MIN_KELVIN

from .datasets import Normalizer, ScenePatches, held_out_samples
from .evaluate import predict_classic, predict_samples, score_predictions
from .loop import masked_l1
from .scenes import BandInfo, Scene, read_band, to_kelvin
from .splits import block_split

MAX_STEPS = 5000
MIN_TRAINING_BLOCKS = 5


def guidance_on_grid(guidance_path: str | Path, lst_path: str | Path) -> np.ndarray:
    """The guidance raster area-averaged onto the LST raster's grid (any CRS or ratio)."""
    from osgeo import gdal

    lst = gdal.Open(str(lst_path))
    guidance = gdal.Open(str(guidance_path))
    if guidance is None:
        raise InputError(f"Guidance raster {guidance_path} cannot be opened.")
    x0, dx, _, y0, _, dy = lst.GetGeoTransform()
    bounds = (x0, y0 + dy * lst.RasterYSize, x0 + dx * lst.RasterXSize, y0)
    warped = gdal.Warp("", guidance, format="MEM", outputBounds=bounds, width=lst.RasterXSize, height=lst.RasterYSize,
                       dstSRS=lst.GetProjection(), resampleAlg="average", dstNodata=np.nan, outputType=gdal.GDT_Float32)
    return np.stack([warped.GetRasterBand(i + 1).ReadAsArray() for i in range(warped.RasterCount)]).astype(np.float32)


def scene_for_finetuning(lst_path: str | Path, guidance_path: str | Path, package: ModelPackage, lst_units: str) -> Scene:
    """The self-supervised scene on the LST grid, checked against the model's bands and units."""
    from osgeo import gdal

    if gdal.Open(str(lst_path)) is None:
        raise InputError(f"LST raster {lst_path} cannot be opened.")
    lst, _ = read_band(lst_path)
    try:
        lst_kelvin = to_kelvin(lst, lst_units, f"LST {Path(lst_path).name}")
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    low, high = np.nanpercentile(lst_kelvin, [1, 99]) if np.isfinite(lst_kelvin).any() else (np.nan, np.nan)
    if not (PLAUSIBLE_MIN_KELVIN <= low and high <= PLAUSIBLE_MAX_KELVIN):
        raise InputError(
            f"LST {Path(lst_path).name}: values {low:.1f}..{high:.1f} are outside the plausible "
            f"{PLAUSIBLE_MIN_KELVIN:.0f}-{PLAUSIBLE_MAX_KELVIN:.0f} K that Downscale LST accepts "
            f"after reading it as {lst_units}; set the LST units (kelvin or celsius) or convert the raster first."
        )
    guidance = guidance_on_grid(guidance_path, lst_path)
    bands = package.card.guidance_bands
    if guidance.shape[0] != len(bands):
        raise InputError(
            f"Guidance {Path(guidance_path).name} has {guidance.shape[0]} band(s) but model {package.name!r} expects "
            f"{len(bands)}: {', '.join(package.card.guidance_band_names)}, in that order."
        )
    infos = tuple(BandInfo(b.name, b.units, b.description) for b in bands)
    return Scene(Path(lst_path).stem, lst_kelvin, guidance, infos, notes="self-supervised fine-tuning scene")


def finetune_split(scene: Scene, block_px: int, seed: int) -> list:
    """Blocks of the scene with some held out for validation when the scene is large
    enough to keep a few training blocks, else all for training."""
    try:
        blocks = block_split({scene.name: scene.shape}, block_px, 0.15, 0.0, seed)
    except ValueError:
        blocks = []
    if sum(b.role == "train" for b in blocks) < MIN_TRAINING_BLOCKS:
        blocks = block_split({scene.name: scene.shape}, block_px, 0.0, 0.0, seed, frozenset({scene.name}))
    return blocks


def finetune_on_scene(
    model: str | Path,
    lst_path: str | Path,
    guidance_path: str | Path,
    out_path: str | Path,
    steps: int = 200,
    lst_units: str = "kelvin",
    batch_size: int = 4,
    learning_rate: float = 1e-4,
    seed: int = 0,
    threads: int | None = None,
    progress: Callable[[float], None] = lambda percent: None,
    is_cancelled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda message: None,
) -> ModelPackage:
    """Fine-tune ``model`` (bundled name or package path) on the scene and write the new
    package at ``out_path`` (``NAME.json``, with ``NAME.onnx`` and ``NAME.pt`` beside it).
    Nothing is written if it fails or is cancelled; the source package is never touched."""
    from engine.export import export_package

    if not 1 <= steps <= MAX_STEPS:
        raise InputError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    package = resolve_package(model)
    if package.torch_weights_path is None:
        raise InputError(f"Model package {package.name!r} has no PyTorch weights (NAME.pt) to fine-tune; re-export it with `python -m training export`.")
    out_path = Path(out_path)
    if out_path.suffix.lower() != CARD_SUFFIX:
        out_path = out_path.with_suffix(CARD_SUFFIX)
    sources = {p.resolve() for p in (package.card_path, package.onnx_path, package.torch_weights_path)}
    if {out_path.resolve(), out_path.with_suffix(".onnx").resolve(), out_path.with_suffix(".pt").resolve()} & sources:
        raise InputError(f"The output {out_path} would overwrite the model being fine-tuned; choose another name.")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    card = package.card
    scale = card.scale
    scene = scene_for_finetuning(lst_path, guidance_path, package, lst_units)
    normalizer = Normalizer(card.lst_mean_kelvin, card.lst_std_kelvin,
                            tuple(b.mean for b in card.guidance_bands), tuple(b.std for b in card.guidance_bands))
    patch_px = max(8 * scale, 32)
    if min(scene.shape) < patch_px:
        raise InputError(
            f"LST {Path(lst_path).name} is {scene.shape[1]}x{scene.shape[0]} pixels; fine-tuning x{scale} needs at "
            f"least {patch_px}x{patch_px} LST pixels (patches of {patch_px // scale}x{patch_px // scale} after aggregation)."
        )
    blocks = finetune_split(scene, patch_px, seed)
    validation = held_out_samples([scene], blocks, "val", scale)
    try:
        sampler = ScenePatches([scene], blocks, scale, patch_px, normalizer)
    except ValueError as exc:
        raise InputError(f"LST {Path(lst_path).name}: {exc}; too much of the scene is nodata.") from exc

    network = MoCoLSKNet(MoCoLSKConfig.from_dict(card.hyperparameters))
    network.load_state_dict(torch.load(package.torch_weights_path, map_location="cpu", weights_only=True))
    before = score_predictions(validation, predict_samples(network, validation, normalizer)) if validation else None
    log(f"Fine-tuning {package.name} (x{scale}) on {scene.name} ({scene.shape[1]}x{scene.shape[0]} LST pixels) for {steps} steps"
        + (f"; validation on {len(validation)} held-out block(s): RMSE {before['rmse_k']:.3f} K before" if before else ""))
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-5)
    network.train()
    for step in range(1, steps + 1):
        if is_cancelled():
            raise Cancelled(f"fine-tuning stopped at step {step - 1} of {steps}; no model package was written.")
        batch = sampler.batch(batch_size, np.random.default_rng([seed, step]))
        loss = masked_l1(network(batch["lst"], batch["guidance"]), batch["target"], batch["mask"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        progress(90.0 * step / steps)
        if step % max(steps // 10, 1) == 0 or step == steps:
            log(f"step {step}/{steps}: masked L1 {loss.item():.4f} (normalised LST)")
    network.eval()
    metrics = dict(card.metrics)
    if validation:
        after = score_predictions(validation, predict_samples(network, validation, normalizer))
        bicubic = score_predictions(validation, predict_classic("bicubic", validation, scene.band_names, scale))
        metrics["fine_tune_validation"] = {
            "what": f"self-supervised: the scene's LST recovered from its x{scale} aggregate on held-out blocks",
            "before": before, "after": after, "bicubic": bicubic,
        }
        log(f"validation RMSE {before['rmse_k']:.3f} K before, {after['rmse_k']:.3f} K after fine-tuning (bicubic {bicubic['rmse_k']:.3f} K)")
    if is_cancelled():
        raise Cancelled("fine-tuning was cancelled before the package was written; nothing was written.")
    training = {
        **card.training,
        "fine_tuned_from": {"name": card.name, "version": card.version, "weights_sha256": card.weights_sha256},
        "fine_tuning": {"scene_lst": Path(lst_path).name, "scene_guidance": Path(guidance_path).name, "steps": steps,
                        "batch_size": batch_size, "learning_rate": learning_rate, "patch_px": patch_px, "seed": seed},
    }
    result = export_package(
        network, out_path.parent, out_path.stem, f"{card.version}+ft", card.guidance_bands, card.lst_mean_kelvin,
        card.lst_std_kelvin, training=training, metrics=metrics,
        description=f"{card.description} Fine-tuned on {Path(lst_path).name} for {steps} steps (self-supervised).".strip(),
    )
    progress(100.0)
    log(f"Wrote model package {result.card_path}")
    return result

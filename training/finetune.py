"""Fine-tune a model package on one scene without any fine LST (self-supervised).

The user's LST raster is the target; its guidance is the fine guidance area-averaged
onto the LST grid, and the network's input is the LST aggregated once more by the model's
scale. This assumes the LST-guidance relation holds across scales, as classic sharpeners
(TsHARP, DMS) do.

Validation is the only check available without fine LST: a few blocks of the LST grid are
held out, with a guard band between them and the training area, and on them the network,
the parent package and bicubic recover the held-out LST from its aggregate, each run as the
plugin runs it (``engine.core``: fills, the network's detail bound, coarse-mean conservation).
Training keeps the best step, stops early when validation stops improving, and writes a package
only if that step beats the parent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.errors import Cancelled, EngineError, InputError
from engine.model import MoCoLSKConfig, MoCoLSKNet
from engine.package import CARD_SUFFIX, WEIGHTS_SUFFIX, ModelPackage, resolve_package
from engine.raster import gdal_session, read_lst_kelvin, warp_stack_onto
from engine.units import LST_UNITS, PLAUSIBLE_MAX_KELVIN, PLAUSIBLE_MIN_KELVIN

from .datasets import Normalizer, Sample, ScenePatches, held_out_samples, sample_from_fine
from .evaluate import as_run, network_method, predict_classic, score_predictions
from .loop import masked_l1
from .packaging import TORCH_WEIGHTS_SUFFIX, export_package
from .scenes import BandInfo, Scene
from .splits import Block

MAX_STEPS = 5000
MIN_GAIN = 0.02
VALIDATION_FRACTION = 0.25
MIN_VALIDATION_BLOCKS = 2
MAX_VALIDATION_BLOCKS = 16
MIN_SCORED_FRACTION = 0.5
MIN_GUARD_PX = 2
VALIDATION_CHECKS = 20
PATIENCE_CHECKS = 5


def validation_meaning(scale: int) -> str:
    """What the fine-tuning validation measures, in the words every summary uses."""
    return (
        f"self-supervised: recovering the coarse LST from a x{scale} coarser copy on held-out blocks; "
        "no 30 m truth exists"
    )


class NoGainOverParent(EngineError):
    """The best fine-tuned model did not beat its parent on the validation blocks; nothing was written."""


def scene_for_finetuning(
    lst_path: str | Path, guidance_path: str | Path, package: ModelPackage, lst_units: str
) -> Scene:
    """The self-supervised scene on the LST grid, checked against the model's bands and units.

    The LST is read as Downscale LST reads it (any of its units, "auto" included); the guidance is
    area-averaged onto the LST grid (any CRS or ratio)."""
    layer = f"LST {Path(lst_path).name}"
    with gdal_session():
        lst_kelvin, lst_grid, units = read_lst_kelvin(lst_path, 1, lst_units, layer)
        guidance = warp_stack_onto(guidance_path, lst_grid, f"Guidance {Path(guidance_path).name}")
    low, high = np.nanpercentile(lst_kelvin, [1, 99]) if np.isfinite(lst_kelvin).any() else (np.nan, np.nan)
    if not (PLAUSIBLE_MIN_KELVIN <= low and high <= PLAUSIBLE_MAX_KELVIN):
        raise InputError(
            f"{layer}: values {low:.1f}..{high:.1f} are outside the plausible "
            f"{PLAUSIBLE_MIN_KELVIN:.0f}-{PLAUSIBLE_MAX_KELVIN:.0f} K that Downscale LST accepts "
            f"after reading it as {units.name} ({units.reason}); set the LST units (one of "
            f"{', '.join(LST_UNITS)}) or convert the raster first."
        )
    bands = package.card.guidance_bands
    if guidance.shape[0] != len(bands):
        raise InputError(
            f"Guidance {Path(guidance_path).name} has {guidance.shape[0]} band(s) but model "
            f"{package.name!r} expects "
            f"{len(bands)}: {', '.join(package.card.guidance_band_names)}, in that order."
        )
    infos = tuple(BandInfo(b.name, b.units, b.description) for b in bands)
    return Scene(Path(lst_path).stem, lst_kelvin, guidance, infos, notes="self-supervised fine-tuning scene")


def guard_px(scale: int) -> int:
    """Width of the band between training and validation areas, in LST pixels: one pixel of
    the network's input grid, and never fewer than two LST pixels."""
    return max(MIN_GUARD_PX, scale)


def area_blocks(area: np.ndarray, scene: str, role: str) -> list[Block]:
    """An arbitrary area of a scene as blocks: one per run of pixels along each row."""
    blocks = []
    for row, line in enumerate(area):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], line.astype(np.int8), [0]])))
        blocks.extend(
            Block(scene, row, int(start), 1, int(stop - start), role)
            for start, stop in zip(edges[::2], edges[1::2])
        )
    return blocks


def finetune_split(
    scene: Scene, scale: int, patch_px: int, normalizer: Normalizer, seed: int
) -> tuple[ScenePatches, list[Block]]:
    """The training sampler and the held-out validation blocks of the scene.

    Validation blocks are ``patch_px`` squares, at least half scoreable, drawn at random;
    each is kept only if ``patch_px`` training patches still fit outside the validation
    blocks and their guard band."""
    rows, cols = scene.shape
    guard = guard_px(scale)
    candidates = [
        Block(scene.name, r, c, patch_px, patch_px, "val")
        for r in range(0, rows - patch_px + 1, patch_px)
        for c in range(0, cols - patch_px + 1, patch_px)
    ]
    candidates = [b for b in candidates if scored_fraction(scene, b, scale) >= MIN_SCORED_FRACTION]
    wanted = min(
        MAX_VALIDATION_BLOCKS, max(MIN_VALIDATION_BLOCKS, round(VALIDATION_FRACTION * len(candidates)))
    )
    excluded = np.zeros(scene.shape, bool)
    validation: list[Block] = []
    sampler = None
    for index in np.random.default_rng(seed).permutation(len(candidates)):
        if len(validation) == wanted:
            break
        block = candidates[index]
        trial = excluded.copy()
        trial[
            max(block.row - guard, 0) : block.row + block.rows + guard,
            max(block.col - guard, 0) : block.col + block.cols + guard,
        ] = True
        try:
            trial_sampler = ScenePatches(
                [scene], area_blocks(~trial, scene.name, "train"), scale, patch_px, normalizer
            )
        except ValueError:
            continue
        excluded, sampler = trial, trial_sampler
        validation.append(block)
    if len(validation) < MIN_VALIDATION_BLOCKS:
        raise InputError(
            f"LST {scene.name} ({cols}x{rows} pixels, {scene.valid.mean():.0%} valid) is too small or too "
            "masked to "
            f"fine-tune x{scale}: it must hold out at least {MIN_VALIDATION_BLOCKS} validation blocks of "
            f"{patch_px}x{patch_px} LST pixels, each at least {MIN_SCORED_FRACTION:.0%} valid, behind a "
            f"{guard}-pixel "
            f"guard band, and still leave room for {patch_px}x{patch_px} training patches (found "
            f"{len(validation)}). Use a larger LST raster (about {3 * patch_px}x{3 * patch_px} pixels or "
            "more) or "
            f"mask fewer pixels."
        )
    return sampler, validation


def scored_fraction(scene: Scene, block: Block, scale: int) -> float:
    """Share of the block's pixels that validation can score (valid under a valid aggregate)."""
    rows, cols = block.window()
    return float(
        sample_from_fine("", scene.lst_kelvin[rows, cols], scene.guidance[:, rows, cols], scale).mask.mean()
    )


def validation_scores(
    network: torch.nn.Module, samples: list[Sample], normalizer: Normalizer
) -> dict[str, float]:
    """The network on each validation sample as the plugin runs a package (``engine.core``: detail bound,
    coarse-mean conservation, tiles), scored against the held-out LST."""
    method = network_method(network, normalizer)
    return score_predictions(samples, [as_run(method, sample).fine_kelvin for sample in samples])


def output_paths(out_path: Path) -> tuple[Path, Path, Path]:
    return out_path, out_path.with_suffix(WEIGHTS_SUFFIX), out_path.with_suffix(TORCH_WEIGHTS_SUFFIX)


def refuse_existing_output(out_path: Path) -> None:
    existing = [p for p in output_paths(out_path) if p.exists()]
    if existing:
        raise InputError(
            f"{existing[0]} already exists and fine-tuning replaces a model package only when asked: choose "
            "another "
            "output name, or allow overwriting (--overwrite on the command line, 'Overwrite an existing "
            "model "
            f"package' in Fine-tune on this scene)."
        )


def versus_parent(gain: float) -> str:
    return f"{gain:.1%} better than the parent" if gain >= 0 else f"{-gain:.1%} worse than the parent"


def train_keeping_best(
    network: MoCoLSKNet,
    sampler: ScenePatches,
    validation: list[Sample],
    normalizer: Normalizer,
    scale: int,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    parent: dict[str, float],
    progress: Callable[[float], None],
    is_cancelled: Callable[[], bool],
    log: Callable[[str], None],
) -> dict:
    """Train, score the validation blocks every few steps, stop after ``PATIENCE_CHECKS``
    checks without a new best, and leave the best step's weights in ``network``.

    Returns that step, its validation scores and how many steps ran."""
    every = max(1, round(steps / VALIDATION_CHECKS))
    best: dict = {"step": 0, "scores": None, "state": None}
    best_rmse, checks_without_gain = float("inf"), 0
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-5)
    network.train()
    for step in range(1, steps + 1):
        if is_cancelled():
            raise Cancelled(
                f"fine-tuning stopped at step {step - 1} of {steps}; no model package was written."
            )
        batch = sampler.batch(batch_size, np.random.default_rng([seed, step]))
        loss = masked_l1(network(batch["lst"], batch["guidance"]), batch["target"], batch["mask"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        progress(90.0 * step / steps)
        if step % every and step != steps:
            continue
        scores = validation_scores(network, validation, normalizer)
        if scores["rmse_k"] < best_rmse:
            best_rmse, checks_without_gain = scores["rmse_k"], 0
            best = {
                "step": step,
                "scores": scores,
                "state": {k: v.detach().clone() for k, v in network.state_dict().items()},
            }
        else:
            checks_without_gain += 1
        log(
            f"step {step}/{steps}: training L1 {loss.item():.4f} (normalised LST); validation RMSE "
            f"{scores['rmse_k']:.3f} K (best {best_rmse:.3f} K at step {best['step']}, parent "
            f"{parent['rmse_k']:.3f} K)"
        )
        if checks_without_gain >= PATIENCE_CHECKS:
            log(
                f"Stopping early at step {step}: no better validation RMSE in the last {PATIENCE_CHECKS} "
                "checks."
            )
            break
    if best["state"] is None:
        raise NoGainOverParent(
            "Fine-tuning diverged (the validation RMSE was never finite); no model package was "
            "written. Keep using the parent package."
        )
    network.load_state_dict(best["state"])
    network.eval()
    return {**best, "steps_run": step}


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
    overwrite: bool = False,
    min_gain: float = MIN_GAIN,
    progress: Callable[[float], None] = lambda percent: None,
    is_cancelled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda message: None,
) -> ModelPackage:
    """Fine-tune ``model`` (bundled name or package path) on the scene and write the new
    package at ``out_path`` (``NAME.json``, with ``NAME.onnx`` and ``NAME.pt`` beside it).

    The package holds the step with the lowest validation RMSE and is written only if that
    RMSE is at least ``min_gain`` (a fraction) below the parent's; otherwise
    ``NoGainOverParent`` says by how much it lost. An existing package is replaced only
    with ``overwrite``. Nothing is written if it fails or is cancelled; the source package
    is never touched."""
    if not 1 <= steps <= MAX_STEPS:
        raise InputError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    package = resolve_package(model)
    if package.torch_weights_path is None:
        raise InputError(
            f"Model package {package.name!r} has no PyTorch weights (NAME.pt) to fine-tune; "
            "re-export it with `python -m training export`."
        )
    out_path = Path(out_path)
    if out_path.suffix.lower() != CARD_SUFFIX:
        out_path = out_path.with_suffix(CARD_SUFFIX)
    sources = {p.resolve() for p in (package.card_path, package.onnx_path, package.torch_weights_path)}
    if {p.resolve() for p in output_paths(out_path)} & sources:
        raise InputError(
            f"The output {out_path} would overwrite the model being fine-tuned; choose another name."
        )
    if not overwrite:
        refuse_existing_output(out_path)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    card = package.card
    scale = card.scale
    scene = scene_for_finetuning(lst_path, guidance_path, package, lst_units)
    normalizer = Normalizer.from_card(card)
    patch_px = max(8 * scale, 32)
    if min(scene.shape) < patch_px:
        raise InputError(
            f"LST {Path(lst_path).name} is {scene.shape[1]}x{scene.shape[0]} pixels; fine-tuning x{scale} "
            "needs at "
            f"least {patch_px}x{patch_px} LST pixels (patches of {patch_px // scale}x{patch_px // scale} "
            "after "
            "aggregation)."
        )
    sampler, validation_blocks = finetune_split(scene, scale, patch_px, normalizer, seed)
    validation = held_out_samples([scene], validation_blocks, "val", scale)

    network = MoCoLSKNet(MoCoLSKConfig.from_dict(card.hyperparameters))
    network.load_state_dict(torch.load(package.torch_weights_path, map_location="cpu", weights_only=True))
    parent = validation_scores(network, validation, normalizer)
    bicubic = score_predictions(validation, predict_classic("bicubic", validation, scene.band_names, scale))
    log(
        f"Fine-tuning {package.name} (x{scale}) on {scene.name} ({scene.shape[1]}x{scene.shape[0]} LST "
        "pixels) for up "
        f"to {steps} steps. Validation ({validation_meaning(scale)}): {len(validation)} blocks of "
        f"{patch_px}x{patch_px} LST pixels, {parent['pixels']} scored, {guard_px(scale)}-pixel guard band; "
        "RMSE of "
        f"the parent {parent['rmse_k']:.3f} K, of bicubic {bicubic['rmse_k']:.3f} K (both with coarse-mean "
        "conservation)."
    )

    best = train_keeping_best(
        network,
        sampler,
        validation,
        normalizer,
        scale,
        steps,
        batch_size,
        learning_rate,
        seed,
        parent,
        progress,
        is_cancelled,
        log,
    )
    tuned = best["scores"]
    gain = 1.0 - tuned["rmse_k"] / parent["rmse_k"]
    comparison = (
        f"on the {len(validation)} validation blocks ({validation_meaning(scale)}) the best fine-tuned model "
        f"(step {best['step']}) has RMSE {tuned['rmse_k']:.3f} K, the parent package {package.name} "
        f"{parent['rmse_k']:.3f} K and bicubic {bicubic['rmse_k']:.3f} K"
    )
    if gain < min_gain:
        verdict = versus_parent(gain) if gain < 0 else f"only {versus_parent(gain)}"
        raise NoGainOverParent(
            f"Fine-tuning did not help, so no model package was written: {comparison}; that is {verdict}, "
            "and a "
            f"fine-tuned package must be at least {min_gain:.1%} better. Keep using {package.name}."
        )
    log(f"Validation summary: {comparison}; {versus_parent(gain)}.")
    if is_cancelled():
        raise Cancelled("fine-tuning was cancelled before the package was written; nothing was written.")
    metrics = {
        "fine_tune_validation": {
            "what": validation_meaning(scale),
            "blocks": [
                f"{b.scene}[{b.row}:{b.row + b.rows},{b.col}:{b.col + b.cols}]" for b in validation_blocks
            ],
            "guard_px": guard_px(scale),
            "best_step": best["step"],
            "steps_run": best["steps_run"],
            "fine_tuned": tuned,
            "parent": parent,
            "bicubic": bicubic,
            "gain_over_parent": gain,
            "min_gain": min_gain,
        },
        "metric_notes": (
            f"Kelvin, on the LST grid of {Path(lst_path).name}: each validation block's LST area-averaged "
            f"x{scale} "
            "is the input and the block's LST the truth; every method gets coarse-mean conservation. These "
            "say "
            "nothing directly about accuracy at the guidance resolution. The parent package's held-out "
            "metrics "
            f"were dropped: they do not describe this model."
        ),
    }
    training = {
        **card.training,
        "fine_tuned_from": {
            "name": card.name,
            "version": card.version,
            "weights_sha256": card.weights_sha256,
        },
        "fine_tuning": {
            "scene_lst": Path(lst_path).name,
            "scene_guidance": Path(guidance_path).name,
            "steps": steps,
            "best_step": best["step"],
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "patch_px": patch_px,
            "seed": seed,
        },
    }
    if not overwrite:
        refuse_existing_output(out_path)
    result = export_package(
        network,
        out_path.parent,
        out_path.stem,
        f"{card.version}+ft",
        card.guidance_bands,
        card.lst_mean_kelvin,
        card.lst_std_kelvin,
        training=training,
        metrics=metrics,
        lst_anchor=card.lst_anchor,
        description=f"{card.description} Fine-tuned on {Path(lst_path).name} (self-supervised, best of "
        f"{best['steps_run']} steps at step {best['step']}).".strip(),
    )
    progress(100.0)
    log(f"Wrote model package {result.card_path}")
    return result

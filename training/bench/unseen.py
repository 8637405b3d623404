"""`make benchmark`: the shipped methods on every corpus scene their packages never saw.

Every method runs through the plugin's own pipeline (``training.pipeline_runs``) on three views
of each scene (``training.protocol``):

- ``native`` (primary, Wald): truth = the thermal band averaged to its sensor's native pixel;
- ``ingrid_native``: the method runs on the band as delivered on the 30 m grid (the pipeline
  averages it onto the coarse grid itself, as for a user's ``ST_B10``, so the blend uses its
  delivered-band weights), then output and truth are averaged to the native pixel before scoring
  (the detail a method adds below the native pixel cannot be checked, so it is not scored);
- ``ingrid``: the delivered band scored at 30 m (below the native pixel it is an interpolation).

Scenes come from ``training/configs/landsat-x{s}-corpus.json``; those named in the bundled
package's training config (train or validation) are left out, so every score is on a scene the
network never saw. Reported: pooled RMSE with 95 % bootstrap intervals (scenes, then blocks),
the ratio of MoCoLSK and of *auto* to the best classic method with the interval of the
difference, per-scene ratios, and how often *auto*'s self-check picked the method that truly won.

    python -m training.bench.unseen [--scales 2 4 8] [--out docs/benchmark]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

from engine.classic import CLASSIC_METHODS
from engine.errors import EngineError

from ..blend import package_with_weights
from ..config import TrainConfig
from ..datasets import sample_from_fine
from ..pipeline_runs import PipelineMethod
from ..protocol import (
    INGRID_AT_NATIVE,
    SCORED_VIEWS,
    SceneErrors,
    averaged_errors,
    block_errors,
    native_factor,
    protocol_view,
    summarise,
    truth_description,
    view_prediction,
)
from ..scenes import Scene
from ..sources import load_scenes

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "training" / "configs"
METHODS = ("blend", "mocolsk", *CLASSIC_METHODS, "auto")
CANDIDATES = ("blend", "mocolsk", *CLASSIC_METHODS)
BLOCK_COARSE_PX = 4
# RMSEs under this are float32 rounding: conservation alone reproduced the truth.
EXACT_K = 1e-3


@dataclass
class ViewScores:
    view: str
    errors: list[SceneErrors]
    summary: dict
    auto: dict


@cache
def bundled_package(scale: int):
    """The bundled package at ``scale`` (loaded and its checksums verified once per process)."""
    from engine.package import bundled_packages, load_package

    for path in bundled_packages().values():
        package = load_package(path)
        if package.card.scale == scale:
            return package
    raise ValueError(f"no bundled package at x{scale}")


def seen_in_training(scale: int) -> set[str]:
    """Names of the scenes the bundled package at ``scale`` trained or validated on."""
    scenes = bundled_package(scale).card.training["config"]["data"]["scenes"]
    return {s["name"] for s in scenes if s.get("role", "split") != "test"}


def fold_methods(scale: int, scene: str, folder: Path) -> dict[str, PipelineMethod]:
    """The methods for ``scene``: the blend (and auto, which may choose it) with the weights fitted
    without the scene's site (``training.blend``), so that no score uses its own site's fit."""
    package = bundled_package(scale)
    folds = package.card.blend.get("leave_site_out_weights", {})
    if scene not in folds:
        raise ValueError(
            f"x{scale}: the card of {package.name} has no leave-site-out blend weights for {scene}; run "
            "python -m training.blend --write-card first"
        )
    delivered = package.card.blend.get("leave_site_out_delivered_weights", {}).get(scene)
    fold = str(package_with_weights(package.card_path, folds[scene], folder / scene, delivered))
    methods = {m: PipelineMethod(m) for m in METHODS}
    methods["blend"] = PipelineMethod("blend", model=fold)
    methods["auto"] = PipelineMethod("auto", model=fold)
    return methods


def unseen_scenes(scale: int) -> tuple[list[Scene], dict[str, str]]:
    """The corpus scenes the bundled package at ``scale`` never saw, and each scene's site."""
    config = TrainConfig.load(CONFIGS / f"landsat-x{scale}-corpus.json")
    seen = seen_in_training(scale)
    scenes, _ = load_scenes(config)
    sites = {e["name"]: e.get("site", e["name"]) for e in config.data["scenes"]}
    return [s for s in scenes if s.name not in seen], sites


def score_scene(scene: Scene, scale: int, methods: dict[str, PipelineMethod]) -> dict[str, SceneErrors]:
    """Every method on ``scene`` in each scored view; the two in-grid views share one run."""
    out = {}
    for protocol in ("native", "ingrid"):
        view = protocol_view(scene, protocol)
        sample = sample_from_fine(view.name, view.lst_kelvin, view.guidance, scale)
        predictions = {
            m: view_prediction(spec, sample, view, scale, delivered=protocol == "ingrid")
            for m, spec in methods.items()
        }
        scorings = {
            protocol: partial(block_errors, sample=sample, scale=scale, block_coarse_px=BLOCK_COARSE_PX)
        }
        if protocol == "ingrid":
            scorings[INGRID_AT_NATIVE] = partial(
                averaged_errors,
                sample=sample,
                scale=scale,
                block_coarse_px=BLOCK_COARSE_PX,
                factor=native_factor(scene),
            )
        for name, score in scorings.items():
            sse, count = {}, None
            for method, prediction in predictions.items():
                sse[method], count = score(prediction)
            keep = count > 0
            out[name] = SceneErrors(
                scene.name,
                name,
                truth_description(scene, name),
                scale,
                {m: v[keep] for m, v in sse.items()},
                count[keep],
            )
    return out


def auto_record(errors: list[SceneErrors]) -> dict:
    """Per scene: the method auto ran (the candidate with its RMSE), the true winner, and the regret."""
    picks = {}
    for scene in errors:
        rmse = {m: scene.rmse(m) for m in CANDIDATES if m in scene.sse}
        chosen = min(rmse, key=lambda m: abs(rmse[m] - scene.rmse("auto")))
        best = min(rmse, key=rmse.__getitem__)
        picks[scene.scene] = {
            "chosen": chosen,
            "best": best,
            "auto_rmse_k": scene.rmse("auto"),
            "best_rmse_k": rmse[best],
        }
    hits = sum(p["chosen"] == p["best"] for p in picks.values())
    return {"picked_the_winner": hits, "scenes": len(picks), "per_scene": picks}


def run_scale(scale: int, log=print) -> list[ViewScores]:
    scenes, sites = unseen_scenes(scale)
    per_view: dict[str, list[SceneErrors]] = {v: [] for v in SCORED_VIEWS}
    folder = Path(tempfile.mkdtemp(prefix="mocolsk-folds-"))
    folds = bundled_package(scale).card.blend.get("leave_site_out_weights", {})
    for scene in scenes:
        if scene.name not in folds:
            log(
                f"x{scale} {scene.name}: left out, the blend was not fitted on it (a member cannot run there)"
            )
            continue
        start = time.perf_counter()
        try:
            scored = score_scene(scene, scale, fold_methods(scale, scene.name, folder))
        except EngineError as error:
            log(f"x{scale} {scene.name}: left out, a method cannot run on it at this scale ({error})")
            continue
        for view, errors in scored.items():
            per_view[view].append(errors)
        native = scored["native"]
        log(
            f"x{scale} {scene.name} ({sites.get(scene.name)}, {time.perf_counter() - start:.0f} s) native: "
            + ", ".join(f"{m} {native.rmse(m):.3f}" for m in METHODS)
        )
    shutil.rmtree(folder, ignore_errors=True)
    results = []
    for view in SCORED_VIEWS:
        errors = per_view[view]
        summary = summarise(errors, list(METHODS), list(CLASSIC_METHODS), reference="mocolsk")
        summary["blend"] = summarise(errors, list(METHODS), list(CLASSIC_METHODS), reference="blend")[
            "difference_to_best_classic_k"
        ]
        summary["auto"] = summarise(
            errors, list(METHODS), list(CLASSIC_METHODS), reference="auto", replicates=2000
        )["difference_to_best_classic_k"]
        summary["sites"] = {s.scene: sites.get(s.scene, s.scene) for s in errors}
        results.append(ViewScores(view, errors, summary, auto_record(errors)))
    return results


def ratio_text(rmse_k: float, reference_k: float) -> str:
    """A ratio of RMSEs, or "all exact" where conservation alone reproduces the truth (both zero)."""
    if reference_k < EXACT_K:
        return "all exact" if rmse_k < EXACT_K else "inf"
    return f"{rmse_k / reference_k:.2f}"


def format_scale(scale: int, results: list[ViewScores]) -> str:
    lines = [f"## x{scale}\n"]
    for result in results:
        s = result.summary
        best = s["best_classic"]
        lines.append(f"### {result.view}\n")
        sites = len(set(s["sites"].values()))
        lines.append(f"{s['pixels']} scored pixels in {len(s['scenes'])} scenes from {sites} sites.\n")
        lines.append("| method | RMSE (K) | 95 % interval |\n|---|---:|---|")
        for m in METHODS:
            low, high = s["methods"][m]["ci95_k"]
            lines.append(f"| {m} | {s['methods'][m]['rmse_k']:.3f} | {low:.3f}-{high:.3f} |")
        methods = s["methods"]
        parts = []
        for name, diff in (
            ("blend", s["blend"]),
            ("MoCoLSK", s["difference_to_best_classic_k"]),
            ("auto", s["auto"]),
        ):
            rmse = methods[name.lower()]["rmse_k"]
            parts.append(
                f"{name} / {best}: **{ratio_text(rmse, methods[best]['rmse_k'])}** (difference "
                f"{diff['value']:+.3f} K, 95 % interval {diff['ci95_k'][0]:+.3f} to {diff['ci95_k'][1]:+.3f})"
            )
        lines.append(
            "\n" + "; ".join(parts) + f". Auto ran the true winner on {result.auto['picked_the_winner']} of "
            f"{result.auto['scenes']} scenes.\n"
        )
        lines.append(
            "| scene | site | "
            + " | ".join(METHODS)
            + " | blend / best classic | MoCoLSK / best classic | auto ran |"
        )
        lines.append("|---|---|" + "---:|" * len(METHODS) + "---:|---:|---|")
        for errors in result.errors:
            rmse = {m: errors.rmse(m) for m in METHODS}
            classic = min(rmse[m] for m in CLASSIC_METHODS)
            pick = result.auto["per_scene"][errors.scene]
            lines.append(
                f"| {errors.scene} | {s['sites'][errors.scene]} | "
                + " | ".join(f"{rmse[m]:.3f}" for m in METHODS)
                + f" | {ratio_text(rmse['blend'], classic)} | {ratio_text(rmse['mocolsk'], classic)} | "
                f"{pick['chosen']} (winner {pick['best']}) |"
            )
        lines.append("")
    return "\n".join(lines)


def write_card_metrics(scale: int, results: list[ViewScores]) -> Path:
    """The tables in the bundled card (``metrics.unseen_scenes``) and, as its recommendation, the
    method with the lowest pooled RMSE at native resolution."""
    path = Path(bundled_package(scale).card_path)
    card = json.loads(path.read_text(encoding="utf-8"))
    views = {r.view: r.summary for r in results}
    native = views["native"]["methods"]
    card["metrics"]["unseen_scenes"] = views
    card["metrics"]["recommended_method"] = min(
        (m for m in METHODS if m != "auto"), key=lambda m: native[m]["rmse_k"]
    )
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.bench.unseen", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmark"))
    parser.add_argument(
        "--write-card",
        action="store_true",
        help="store the tables in the bundled card's metrics and recommend the method most accurate at native resolution",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for scale in args.scales:
        results = run_scale(scale)
        text = format_scale(scale, results)
        (out / f"unseen_x{scale}.md").write_text(
            f"# Shipped methods on scenes never seen in training, x{scale}\n\n"
            f"{time.strftime('%Y-%m-%d')}; `python -m training.bench.unseen --scales {scale}`. "
            "Views: see the module docstring; truths per scene in the JSON.\n\n" + text,
            encoding="utf-8",
        )
        payload = {
            r.view: {
                "summary": r.summary,
                "auto": r.auto,
                "truth": {e.scene: e.truth for e in r.errors},
            }
            for r in results
        }
        (out / f"unseen_x{scale}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        if args.write_card:
            write_card_metrics(scale, results)
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

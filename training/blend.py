"""Fitting the blend's weights (``engine.blend``) on scenes the network never saw, leave-site-out.

Each member (MoCoLSK, bicubic, TsHARP, DMS) runs through the plugin's pipeline on the native
view of every corpus scene the bundled package did not train on; non-negative least squares on
the scored pixels gives weights, normalised to sum to one. Cross-validation leaves one site out
at a time (every scene of that site), so a scene's blend never used weights fitted on its own
site. The weights written into the card are then fitted on all those scenes.

    python -m training.blend --scales 2 4 8 [--write-card]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from engine.blend import BLEND_MEMBERS
from engine.errors import EngineError

from .datasets import sample_from_fine
from .pipeline_runs import PipelineMethod, run_pipeline
from .protocol import protocol_view, view_prediction

FIT_VIEW = "native"
ONE_SIGMA = 0.6827
# Where every member agrees the spread is no measure of error; below this it counts as this.
SPREAD_FLOOR_K = 0.01


@dataclass
class MemberRun:
    """The members' conserved predictions on one scene's scored pixels."""

    scene: str
    site: str
    truth_kelvin: np.ndarray  # (n,)
    members_kelvin: np.ndarray  # (len(BLEND_MEMBERS), n)


def member_run(scene, site: str, scale: int, model: str | None = None) -> MemberRun:
    """Every member through the pipeline on the native view of ``scene``."""
    view = protocol_view(scene, FIT_VIEW)
    sample = sample_from_fine(view.name, view.lst_kelvin, view.guidance, scale)
    mask = sample.mask
    members = [
        view_prediction(PipelineMethod(m, model=model if m == "mocolsk" else None), sample, view, scale)[mask]
        for m in BLEND_MEMBERS
    ]
    return MemberRun(scene.name, site, sample.fine_kelvin[mask].astype(np.float64), np.stack(members))


def fit_weights(runs: list[MemberRun]) -> dict[str, float]:
    """Non-negative least-squares weights of the members over the pooled pixels, summing to one."""
    design = np.concatenate([r.members_kelvin.T for r in runs]).astype(np.float64)
    target = np.concatenate([r.truth_kelvin for r in runs])
    weights, _ = nnls(design, target)
    weights = weights / weights.sum()
    return {m: round(float(w), 4) for m, w in zip(BLEND_MEMBERS, weights)}


def leave_site_out(runs: list[MemberRun]) -> dict[str, dict[str, float]]:
    """Per scene, the weights fitted on every other site's scenes."""
    return {r.scene: fit_weights([o for o in runs if o.site != r.site]) for r in runs}


def blended_rmse(run: MemberRun, weights: dict[str, float]) -> float:
    mixed = np.array([weights[m] for m in BLEND_MEMBERS]) @ run.members_kelvin
    return float(np.sqrt(np.mean((mixed - run.truth_kelvin) ** 2)))


@dataclass
class BlendRun:
    """The blend as the pipeline writes it on one scene (fold weights, uncalibrated uncertainty)."""

    scene: str
    site: str
    truth_kelvin: np.ndarray
    blend_kelvin: np.ndarray
    spread_kelvin: np.ndarray

    def normalised_errors(self) -> np.ndarray:
        return np.abs(self.blend_kelvin - self.truth_kelvin) / np.maximum(self.spread_kelvin, SPREAD_FLOOR_K)


def blend_run(scene, site: str, scale: int, package: str) -> BlendRun:
    """The blend of ``package`` (whose card has no sigma factor) and its raw uncertainty, through the pipeline."""
    view = protocol_view(scene, FIT_VIEW)
    sample = sample_from_fine(view.name, view.lst_kelvin, view.guidance, scale)
    out = run_pipeline(
        PipelineMethod("blend", model=package, uncertainty=True), sample, view.band_names, view.pixel_size_m
    )
    mask = sample.mask & np.isfinite(out.fine_kelvin) & np.isfinite(out.sigma_kelvin)
    return BlendRun(
        scene.name,
        site,
        sample.fine_kelvin[mask].astype(np.float64),
        out.fine_kelvin[mask].astype(np.float64),
        out.sigma_kelvin[mask].astype(np.float64),
    )


def sigma_scale(runs: list[BlendRun]) -> float:
    """The factor on the raw spread that puts 68.3 % of the absolute errors of ``runs`` within one
    sigma (split-conformal)."""
    return float(np.quantile(np.concatenate([r.normalised_errors() for r in runs]), ONE_SIGMA))


def coverage_leave_site_out(runs: list[BlendRun]) -> dict[str, dict]:
    """Per scene: the factor fitted on the other sites and the share of its errors within 1 and 2 sigma."""
    out = {}
    for run in runs:
        factor = sigma_scale([o for o in runs if o.site != run.site])
        ratios = run.normalised_errors() / factor
        out[run.scene] = {
            "sigma_scale": round(factor, 3),
            "within_1_sigma": round(float(np.mean(ratios <= 1.0)), 3),
            "within_2_sigma": round(float(np.mean(ratios <= 2.0)), 3),
            "pixels": int(ratios.size),
        }
    return out


def package_with_weights(card_path: str | Path, weights: dict[str, float], folder: Path) -> Path:
    """A copy of a package (weights files linked, not copied) whose card carries ``weights``."""
    card_path = Path(card_path)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["blend"] = {"weights": weights, "fitted": "cross-validation fold"}
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("weights_file", "torch_weights_file"):
        if card.get(key):
            link = folder / card[key]
            if not link.exists():
                os.symlink((card_path.parent / card[key]).resolve(), link)
    out = folder / card_path.name
    out.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    from engine.package import bundled_packages, load_package

    from .bench.unseen import unseen_scenes

    parser = argparse.ArgumentParser(prog="python -m training.blend", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--write-card", action="store_true", help="store the weights in the bundled card")
    args = parser.parse_args(argv)
    cards = {load_package(p).card.scale: load_package(p).card_path for p in bundled_packages().values()}
    for scale in args.scales:
        scenes, sites = unseen_scenes(scale)
        scenes_by_name = {scene.name: scene for scene in scenes}
        runs = []
        for scene in scenes:
            try:
                runs.append(member_run(scene, sites[scene.name], scale))
            except EngineError as error:
                print(f"x{scale} {scene.name}: left out ({error})", flush=True)
        folds = leave_site_out(runs)
        print(f"x{scale}: leave-site-out blend on {len(runs)} scenes of {len({r.site for r in runs})} sites")
        for run in runs:
            rmse = {
                m: float(np.sqrt(np.mean((p - run.truth_kelvin) ** 2)))
                for m, p in zip(BLEND_MEMBERS, run.members_kelvin)
            }
            best = min(rmse[m] for m in BLEND_MEMBERS if m != "mocolsk")
            print(
                f"  {run.scene:34s} blend {blended_rmse(run, folds[run.scene]):.3f} "
                + " ".join(f"{m} {v:.3f}" for m, v in rmse.items())
                + f" | blend/best classic {blended_rmse(run, folds[run.scene]) / best:.2f}"
            )
        weights = fit_weights(runs)
        print(f"x{scale}: weights on all scenes {weights}", flush=True)
        with tempfile.TemporaryDirectory() as work:
            blends = [
                blend_run(
                    scenes_by_name[r.scene],
                    r.site,
                    scale,
                    str(package_with_weights(cards[scale], folds[r.scene], Path(work) / r.scene)),
                )
                for r in runs
            ]
        for run in blends:
            rmse = float(np.sqrt(np.mean((run.blend_kelvin - run.truth_kelvin) ** 2)))
            print(f"  {run.scene:34s} blend through the pipeline (fold weights): {rmse:.3f} K")
        coverage = coverage_leave_site_out(blends)
        pixels = sum(c["pixels"] for c in coverage.values())
        pooled = {
            k: sum(c[k] * c["pixels"] for c in coverage.values()) / pixels
            for k in ("within_1_sigma", "within_2_sigma")
        }
        factor = sigma_scale(blends)
        ratios = np.concatenate([b.normalised_errors() for b in blends]) / factor
        multiplier_95 = float(np.quantile(ratios, 0.95))
        print(
            f"x{scale}: uncertainty, leave-site-out: {pooled['within_1_sigma']:.1%} within 1 sigma, "
            f"{pooled['within_2_sigma']:.1%} within 2 (factor on all scenes {factor:.2f}; 95 % of errors within "
            f"{multiplier_95:.2f} sigma)"
        )
        for scene, c in coverage.items():
            print(
                f"  {scene:34s} {c['within_1_sigma']:.1%} / {c['within_2_sigma']:.1%} (factor {c['sigma_scale']})"
            )
        if args.write_card:
            path = Path(cards[scale])
            card = json.loads(path.read_text(encoding="utf-8"))
            card["blend"] = {
                "weights": weights,
                "fitted": (
                    f"non-negative least squares on the native view of {len(runs)} unseen scenes from "
                    f"{len({r.site for r in runs})} sites (python -m training.blend); leave-site-out "
                    "cross-validated in docs/benchmark/unseen_x{scale}.md".replace("{scale}", str(scale))
                ),
                "scenes": [r.scene for r in runs],
                "leave_site_out_weights": folds,
                "sigma_scale": round(factor, 4),
                "sigma_multiple_for_95_percent": round(multiplier_95, 2),
                "uncertainty_leave_site_out": {"pooled": pooled, "per_scene": coverage},
            }
            path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
            print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fitting the blend's weights (``engine.blend``) on scenes the network never saw, leave-site-out.

Each member (MoCoLSK, bicubic, TsHARP, DMS) runs through the plugin's pipeline on the native
view of every corpus scene the bundled package did not train on; non-negative least squares on
the scored pixels gives weights, normalised to sum to one. Cross-validation leaves one site out
at a time (every scene of that site), so a scene's blend never used weights fitted on its own
site. The weights written into the card are then fitted on all those scenes.

A second set, ``delivered_weights``, is for a band delivered on the guidance grid (Landsat
``ST_B10``): fitted on the in-grid view scored at the sensor's native pixel, where the truth is
the band the sensor blurred, with every scene weighing the same (pixel counts differ 50-fold and
the large ETM+ scenes would otherwise decide the TIRS scenes' weights). Its members are chosen
among the sets that keep bicubic: the best on average of those that stay within 10 % of the best
classic method on every scene (and at or below it on ETM+'s sharp 60 m band), leave-site-out.

    python -m training.blend --scales 2 4 8 [--write-card]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from engine.blend import BLEND_MEMBERS
from engine.errors import EngineError

from .datasets import sample_from_fine
from .pipeline_runs import PipelineMethod, run_pipeline
from .protocol import native_factor, protocol_view, view_prediction
from .scenes import area_average

FIT_VIEW = "native"
DELIVERED_VIEW = "ingrid"
ONE_SIGMA = 0.6827
# Where every member agrees the spread is no measure of error; below this it counts as this.
SPREAD_FLOOR_K = 0.01
# A scene whose best classic method is this close to its truth (the in-grid view when the coarse
# pixel is the sensor's native one: conservation makes every method exact) says nothing about weights.
EXACT_MSE_K2 = 1e-6
# A band delivered on the guidance grid is a blurred record of the scene: a member set may add detail
# the band cannot confirm up to this ratio to the best classic method on any scene, and none where
# the band is sharp (ETM+'s 60 m band, the sharpest check of sub-100 m detail).
DELIVERED_MAX_RATIO = 1.10
SHARP_BAND_SENSORS = ("LANDSAT_7",)


@dataclass
class MemberRun:
    """The members' conserved predictions on one scene's scored pixels."""

    scene: str
    site: str
    truth_kelvin: np.ndarray  # (n,)
    members_kelvin: np.ndarray  # (len(BLEND_MEMBERS), n)
    sensor: str = ""


def member_run(
    scene, site: str, scale: int, model: str | None = None, view_name: str = FIT_VIEW
) -> MemberRun:
    """Every member through the pipeline on a view of ``scene``: the native view, or the band as
    delivered (``DELIVERED_VIEW``) with output and truth averaged to the sensor's native pixel."""
    view = protocol_view(scene, view_name)
    sample = sample_from_fine(view.name, view.lst_kelvin, view.guidance, scale)
    delivered = view_name == DELIVERED_VIEW
    predictions = [
        view_prediction(
            PipelineMethod(m, model=model if m == "mocolsk" else None),
            sample,
            view,
            scale,
            delivered=delivered,
        )
        for m in BLEND_MEMBERS
    ]
    truth = np.where(sample.mask, sample.fine_kelvin, np.nan)
    if delivered:
        factor = native_factor(scene)
        truth = area_average(truth, factor)
        predictions = [area_average(p, factor) for p in predictions]
    mask = np.isfinite(truth) & np.isfinite(np.stack(predictions)).all(axis=0)
    members = np.stack([p[mask] for p in predictions]).astype(np.float64)
    return MemberRun(scene.name, site, truth[mask].astype(np.float64), members, scene.sensor)


def fit_weights(
    runs: list[MemberRun], per_scene: bool = False, members: tuple[str, ...] = BLEND_MEMBERS
) -> dict[str, float]:
    """Non-negative least-squares weights of the members summing to one, over the pooled pixels, or
    with ``per_scene`` each scene's squared errors relative to its best classic method's, so that
    every scene weighs the same whatever its size (scenes every member reproduces exactly add
    nothing and are left out)."""
    design, target = [], []
    for run in runs:
        weight = 1.0
        if per_scene:
            best_mse = best_classic_mse(run)
            if best_mse < EXACT_MSE_K2:
                continue
            weight = 1.0 / np.sqrt(run.truth_kelvin.size * best_mse)
        design.append(run.members_kelvin.T * weight)
        target.append(run.truth_kelvin * weight)
    used = [BLEND_MEMBERS.index(m) for m in members]
    weights = np.zeros(len(BLEND_MEMBERS))
    weights[used], _ = nnls(np.concatenate(design)[:, used], np.concatenate(target))
    weights = weights / weights.sum()
    return {m: round(float(w), 4) for m, w in zip(BLEND_MEMBERS, weights)}


def leave_site_out(
    runs: list[MemberRun], per_scene: bool = False, members: tuple[str, ...] = BLEND_MEMBERS
) -> dict[str, dict[str, float]]:
    """Per scene, the weights fitted on every other site's scenes."""
    return {r.scene: fit_weights([o for o in runs if o.site != r.site], per_scene, members) for r in runs}


def best_classic_mse(run: MemberRun) -> float:
    """The mean squared error of the best classic member on ``run`` (K²)."""
    return min(
        float(np.mean((run.members_kelvin[BLEND_MEMBERS.index(m)] - run.truth_kelvin) ** 2))
        for m in BLEND_MEMBERS
        if m != "mocolsk"
    )


def ratio_to_best_classic(run: MemberRun, weights: dict[str, float]) -> float | None:
    """The blend's RMSE over the best classic member's on ``run``; None where all are exact."""
    best_mse = best_classic_mse(run)
    return blended_rmse(run, weights) / np.sqrt(best_mse) if best_mse >= EXACT_MSE_K2 else None


def member_sets() -> list[tuple[str, ...]]:
    """Every set of members that keeps bicubic, the blend's fallback, in ``BLEND_MEMBERS`` order."""
    others = [m for m in BLEND_MEMBERS if m != "bicubic"]
    return [
        tuple(m for m in BLEND_MEMBERS if m == "bicubic" or m in chosen)
        for size in range(len(others) + 1)
        for chosen in combinations(others, size)
    ]


def delivered_members(runs: list[MemberRun]) -> tuple[str, ...]:
    """The members of the delivered-band blend. Of the sets that keep bicubic, those whose
    leave-site-out blend stays within ``DELIVERED_MAX_RATIO`` of the best classic method on every
    scene, and at or below it on sharp-band scenes, are admissible; the one with the lowest mean
    ratio wins (with none admissible, the lowest worst ratio)."""

    def score(members: tuple[str, ...]) -> tuple[bool, float, float]:
        folds = leave_site_out(runs, per_scene=True, members=members)
        ratios = {run.scene: ratio_to_best_classic(run, folds[run.scene]) for run in runs}
        scored = [(run, ratios[run.scene]) for run in runs if ratios[run.scene] is not None]
        worst = max(r for _, r in scored)
        admissible = worst <= DELIVERED_MAX_RATIO and all(
            r <= 1.0 for run, r in scored if run.sensor in SHARP_BAND_SENSORS
        )
        mean = float(np.mean([r for _, r in scored]))
        return (not admissible, mean if admissible else worst, worst)

    return min(member_sets(), key=score)


def blended_rmse(run: MemberRun, weights: dict[str, float]) -> float:
    """RMSE of the blend with ``weights`` (renormalised: the card's are rounded, and 1e-4 of 300 K
    is 0.03 K)."""
    mixing = np.array([weights[m] for m in BLEND_MEMBERS])
    mixed = (mixing / mixing.sum()) @ run.members_kelvin
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


def package_with_weights(
    card_path: str | Path, weights: dict[str, float], folder: Path, delivered: dict[str, float] | None = None
) -> Path:
    """A copy of a package (weights files linked, not copied) whose card carries ``weights`` (and
    ``delivered`` as its delivered-band weights)."""
    card_path = Path(card_path)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["blend"] = {"weights": weights, "fitted": "cross-validation fold"}
    if delivered:
        card["blend"] |= {"delivered_weights": delivered, "delivered_fitted": "cross-validation fold"}
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
        delivered_runs = [
            member_run(scenes_by_name[r.scene], r.site, scale, view_name=DELIVERED_VIEW) for r in runs
        ]
        members = delivered_members(delivered_runs)
        delivered_folds = leave_site_out(delivered_runs, per_scene=True, members=members)
        delivered = fit_weights(delivered_runs, per_scene=True, members=members)
        print(
            f"x{scale}: bands delivered on the guidance grid, in-grid view scored at the native pixel; "
            f"members {', '.join(members)}"
        )
        for run in delivered_runs:
            rmse = {
                m: float(np.sqrt(np.mean((p - run.truth_kelvin) ** 2)))
                for m, p in zip(BLEND_MEMBERS, run.members_kelvin)
            }
            ratio = ratio_to_best_classic(run, delivered_folds[run.scene])
            print(
                f"  {run.scene:34s} blend {blended_rmse(run, delivered_folds[run.scene]):.3f} "
                + " ".join(f"{m} {v:.3f}" for m, v in rmse.items())
                + (" | all exact" if ratio is None else f" | blend/best classic {ratio:.2f}")
            )
        print(f"x{scale}: delivered-band weights on all scenes {delivered}", flush=True)
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
                "delivered_weights": delivered,
                "delivered_fitted": (
                    f"non-negative least squares over {', '.join(members)}, every scene weighing the same, on "
                    "the in-grid view scored at the native pixel of the same scenes (python -m training.blend); "
                    "for an LST delivered on the guidance grid; members chosen leave-site-out as the set with the "
                    "lowest mean ratio to the best classic method of those within 10 % of it on every scene and "
                    "not above it on ETM+'s sharp band"
                ),
                "leave_site_out_delivered_weights": delivered_folds,
                "sigma_scale": round(factor, 4),
                "sigma_multiple_for_95_percent": round(multiplier_95, 2),
                "uncertainty_leave_site_out": {"pooled": pooled, "per_scene": coverage},
            }
            path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
            print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from engine.blend import BLEND_MEMBERS
from engine.errors import EngineError

from .datasets import sample_from_fine
from .pipeline_runs import PipelineMethod
from .protocol import protocol_view, view_prediction

FIT_VIEW = "native"


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


def package_with_weights(card_path: str | Path, weights: dict[str, float], folder: Path) -> Path:
    """A copy of a package (weights files linked, not copied) whose card carries ``weights``."""
    card_path = Path(card_path)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["blend"] = {**card.get("blend", {}), "weights": weights, "fitted": "cross-validation fold"}
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
            }
            path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
            print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

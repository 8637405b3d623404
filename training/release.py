"""A training checkpoint released as a model package: exported (through ``packaging``), scored on the
held-out scenes through ONNX Runtime as the plugin runs it, those metrics written into its card.

``python -m training export`` runs ``release_checkpoint``."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.card import ModelCard
from engine.model import MoCoLSKConfig, MoCoLSKNet
from engine.package import ModelPackage, load_package

from .config import TrainConfig
from .datasets import Normalizer, band_specs
from .evaluate import classic_predictors, model_predictor, package_predictor, protocol_report
from .loop import load_checkpoint
from .protocol import PROTOCOLS, truth_description
from .scenes import BandInfo
from .sources import build_training_data


def model_from_checkpoint(state: dict) -> MoCoLSKNet:
    model = MoCoLSKNet(MoCoLSKConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def config_from_checkpoint(state: dict, split_file: Path | None = None) -> TrainConfig:
    """The run's config, its data paths resolved as when it was trained, with the
    recorded split so evaluation sees exactly the held-out area of training."""
    values = dict(state["config"])
    if split_file is not None:
        values["split"] = {**values["split"], "file": str(split_file)}
    return TrainConfig.from_dict(values, state["config_dir"])


def held_out_report(
    config: TrainConfig, work_dir: Path, predictor_of, log=None, classic: bool = True
) -> tuple[dict, list]:
    """Both protocols on the config's whole test scenes for ``predictor_of(normalizer)``
    (the model), beside the classic methods unless ``classic`` is false, and the test scenes."""
    data = build_training_data(config, work_dir)
    if not data.test_scenes:
        raise ValueError(f'config {config.name} holds out no whole test scene (a scene with "role": "test")')
    names = tuple(b.name for b in data.bands)
    predictors = {"mocolsk": predictor_of(data.normalizer)}
    if classic:
        predictors.update(classic_predictors(names, config.scale))
    return protocol_report(data.test_scenes, config.scale, predictors, log=log), data.test_scenes


def recommended_method(report: dict) -> str:
    """The method with the lowest geometric mean, over the protocols, of its RMSE relative to
    bicubic's: the one to steer users to at this scale."""
    methods = list(next(iter(report.values()))["methods"])

    def score(method: str) -> float:
        ratios = [r["methods"][method]["rmse_k"] / r["methods"]["bicubic"]["rmse_k"] for r in report.values()]
        return float(np.exp(np.mean(np.log(ratios))))

    return min(methods, key=score)


def scene_facts(scenes: list) -> list[dict]:
    """What each held-out scene is and what its truth is under each protocol."""
    return [
        {
            "name": s.name,
            "sensor": s.sensor,
            "landscape": s.landscape,
            "native_pixel_m": s.native_pixel_m,
            "quantisation_k": s.quantisation_k,
            **{f"truth_{p}": truth_description(s, p) for p in PROTOCOLS},
        }
        for s in scenes
    ]


def held_out_metrics(report: dict, scenes: list) -> dict:
    """The card's ``metrics``: both protocols with intervals, the scenes, the recommendation."""
    return {
        "held_out_scenes": report,
        "test_scenes": scene_facts(scenes),
        "recommended_method": recommended_method(report),
        "metric_notes": (
            "RMSE in Kelvin on whole scenes never seen in training, pooled over their valid pixels, with 95 "
            "% bootstrap "
            "intervals (scenes, then blocks of 4x4 coarse pixels, resampled). ingrid: truth = the thermal "
            "band as delivered "
            "on the 30 m grid (resampled by USGS from the native pixel), coarse = its area mean by the "
            "scale. native: truth = "
            "the thermal band averaged to its native pixel, guidance averaged alike, coarse = that truth's "
            "area mean by the "
            "scale. Every method gets the same coarse input and coarse-mean conservation; TsHARP and DMS "
            "are fitted on each "
            "scene's coarse pixels. difference_to_best_classic_k = MoCoLSK minus the best classic method of "
            "that protocol."
        ),
    }


def release_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    name: str | None = None,
    version: str = "1.0.0",
    evaluate: bool = True,
    log=print,
) -> ModelPackage:
    """Write ``NAME.onnx``/``.pt``/``.json`` from ``checkpoint``; with ``evaluate``, the card
    carries both protocols' metrics of the package (through ONNX Runtime), bicubic, TsHARP
    and DMS on the config's whole test scenes, and the package must score as the checkpoint
    does before it is moved into ``out_dir`` (card last)."""
    from .packaging import export_package

    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(state)
    normalizer = Normalizer.from_dict(state["normalizer"])
    bands = tuple(BandInfo(**b) for b in state["bands"])
    split_file = checkpoint.parent / "split.json"
    config = config_from_checkpoint(state, split_file if split_file.is_file() else None)
    name = name or config.name
    training = {
        "data": state["data"],
        "command": state.get("command", ""),
        "iterations": int(state["step"]),
        "batch_size": config.batch_size,
        "patch_px": config.patch_px,
        "optimizer": f"AdamW lr {config.lr:g}, weight decay {config.weight_decay:g}, cosine restarts every "
        f"{config.restart_period} steps to {config.min_lr:g}; masked L1 loss on z-scored LST",
        "seed": config.seed,
        "hardware": state.get("hardware", {}),
        "wall_seconds": state.get("wall_seconds"),
        "config": state["config"],
    }
    checkpoint_report = {}
    if evaluate:
        with tempfile.TemporaryDirectory() as work_dir:
            checkpoint_report, _ = held_out_report(
                config, Path(work_dir), lambda norm: model_predictor(model, norm), log, classic=False
            )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as staging:
        staged = export_package(
            model,
            staging,
            name,
            version,
            band_specs(bands, normalizer),
            normalizer.lst_mean_kelvin,
            normalizer.lst_std_kelvin,
            training=training,
            description=config.description,
            lst_anchor=normalizer.anchor,
        )
        if evaluate:
            record_metrics(staged, package_metrics(staged, config, checkpoint_report, log))
        for path in (staged.onnx_path, staged.torch_weights_path, staged.card_path):
            os.replace(path, out_dir / path.name)
    return load_package(out_dir / staged.card_path.name)


def package_metrics(package: ModelPackage, config: TrainConfig, checkpoint_report: dict, log) -> dict:
    """The card's metrics, measured through ONNX Runtime as the plugin runs the package (so
    ``python -m training evaluate`` reproduces them); the package must score as the checkpoint did."""
    with tempfile.TemporaryDirectory() as work_dir:
        report, scenes = held_out_report(config, Path(work_dir), lambda norm: package_predictor(package), log)
    for protocol, summary in report.items():
        got = summary["methods"]["mocolsk"]["rmse_k"]
        want = checkpoint_report[protocol]["methods"]["mocolsk"]["rmse_k"]
        if not np.isclose(got, want, rtol=1e-3, atol=1e-3):
            raise RuntimeError(
                f"the exported package scores {protocol} RMSE {got:.4f} K but the checkpoint {want:.4f} K"
            )
    log("exported package reproduces the checkpoint's held-out RMSE through ONNX Runtime")
    return held_out_metrics(report, scenes)


def record_metrics(package: ModelPackage, metrics: dict) -> None:
    """Rewrite a package's card with new metrics (the weights and their checksum are unchanged)."""
    card: ModelCard = replace(package.card, metrics=metrics)
    card.validate(str(package.card_path))
    partial = package.card_path.with_name(f".{package.card_path.name}.partial")
    partial.write_text(card.to_json(), encoding="utf-8")
    partial.replace(package.card_path)
    load_package(package.card_path)

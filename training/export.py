"""From a training checkpoint to a model package, with the held-out metrics in its card."""
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
from .evaluate import compare_methods, predict_package, predict_samples
from .loop import load_checkpoint
from .scenes import BandInfo
from .sources import build_training_data
from .splits import read_split


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


def held_out_table(config: TrainConfig, work_dir: Path, predictions_of) -> tuple[dict, list]:
    """Metrics of ``predictions_of(samples, normalizer)`` and of the classic methods on the test split."""
    data = build_training_data(config, work_dir)
    if not data.test:
        raise ValueError(f"config {config.name} has no held-out test split to evaluate on")
    names = tuple(b.name for b in data.bands)
    table = compare_methods(data.test, names, config.scale, {"mocolsk": predictions_of(data.test, data.normalizer)})
    return table, data.test


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, name: str | None = None, version: str = "1.0.0",
                      evaluate: bool = True, log=print) -> ModelPackage:
    """Write ``NAME.onnx``/``.pt``/``.json`` from ``checkpoint``; with ``evaluate``, the card
    carries the held-out metrics of the model, bicubic, TsHARP and DMS, measured on the
    run's test split (``split.json`` beside the checkpoint), and the exported ONNX
    package must reproduce them before it is moved into ``out_dir`` (card last)."""
    from engine.export import export_package

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
    metrics = {}
    if evaluate:
        with tempfile.TemporaryDirectory() as work_dir:
            table, _ = held_out_table(config, Path(work_dir), lambda samples, norm: predict_samples(model, samples, norm))
            blocks, _ = read_split(Path(work_dir) / "split.json")
        test_blocks = [b for b in blocks if b.role == "test"]
        training["held_out"] = [f"{b.scene}[{b.row}:{b.row + b.rows},{b.col}:{b.col + b.cols}]" for b in test_blocks]
        metrics = {"held_out": table, "metric_notes": (
            f"Kelvin, pooled over the {table['mocolsk']['pixels']} pixels of the {len(test_blocks)} held-out test "
            f"block(s) listed in training.held_out, never seen in training; the reference is each scene's fine LST and "
            f"the input its area average by the scale. bias = prediction - truth; RSD = standard deviation of the error; "
            f"TsHARP and DMS are fitted on the held-out coarse pixels and get coarse-mean conservation.")}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as staging:
        staged = export_package(
            model, staging, name, version, band_specs(bands, normalizer), normalizer.lst_mean_kelvin,
            normalizer.lst_std_kelvin, training=training, metrics=metrics, description=config.description,
            lst_anchor=normalizer.anchor,
        )
        if evaluate:
            check_package_matches(staged, config, metrics["held_out"]["mocolsk"], log)
        for path in (staged.onnx_path, staged.torch_weights_path, staged.card_path):
            os.replace(path, out_dir / path.name)
    return load_package(out_dir / staged.card_path.name)


def check_package_matches(package: ModelPackage, config: TrainConfig, expected: dict, log) -> None:
    """The exported ONNX package must reproduce the checkpoint's held-out RMSE."""
    with tempfile.TemporaryDirectory() as work_dir:
        table, _ = held_out_table(config, Path(work_dir), lambda samples, norm: predict_package(package, samples))
    got = table["mocolsk"]["rmse_k"]
    if not np.isclose(got, expected["rmse_k"], rtol=1e-3, atol=1e-3):
        raise RuntimeError(f"the exported package scores RMSE {got:.4f} K but the checkpoint {expected['rmse_k']:.4f} K")
    log(f"exported package reproduces the checkpoint's held-out RMSE ({got:.4f} K) through ONNX Runtime")


def record_metrics(package: ModelPackage, metrics: dict) -> None:
    """Rewrite a package's card with new metrics (the weights and their checksum are unchanged)."""
    card: ModelCard = replace(package.card, metrics=metrics)
    card.validate(str(package.card_path))
    partial = package.card_path.with_name(f".{package.card_path.name}.partial")
    partial.write_text(card.to_json(), encoding="utf-8")
    partial.replace(package.card_path)
    load_package(package.card_path)

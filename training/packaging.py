"""A trained PyTorch MoCoLSK-Net to a model package: ONNX, PyTorch weights and card (needs torch and onnxscript)."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from engine.card import BandSpec, ModelCard
from engine.model import MoCoLSKNet
from engine.package import CARD_SUFFIX, WEIGHTS_SUFFIX, ModelPackage, load_package, sha256_of_file

TORCH_WEIGHTS_SUFFIX = ".pt"
OPSET = 18


def export_onnx(model: MoCoLSKNet, path: Path) -> None:
    """Write the network as ONNX with dynamic batch and tile size.

    The dynamo exporter is used because the pyramid pooling depends on the tile size at
    run time, which the legacy TorchScript exporter freezes to the traced shape."""
    scale = model.config.scale
    model = model.eval().cpu()
    coarse_px = 8
    lst = torch.zeros(1, model.config.lst_channels, coarse_px, coarse_px)
    guidance = torch.zeros(1, model.config.guidance_channels, coarse_px * scale, coarse_px * scale)
    batch = torch.export.Dim("batch", min=1, max=1024)
    rows = torch.export.Dim("coarse_rows", min=2, max=65536)
    cols = torch.export.Dim("coarse_cols", min=2, max=65536)
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "torch._dynamo", "torch.export")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (lst, guidance),
                str(path),
                dynamo=True,
                opset_version=OPSET,
                input_names=["lst", "guidance"],
                output_names=["lst_fine"],
                dynamic_shapes={
                    "lst": {0: batch, 2: rows, 3: cols},
                    "guidance": {0: batch, 2: rows * scale, 3: cols * scale},
                },
                optimize=True,
                verbose=False,
                external_data=False,
            )
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


def export_package(
    model: MoCoLSKNet,
    out_dir: str | Path,
    name: str,
    version: str,
    guidance_bands: Sequence[BandSpec],
    lst_mean_kelvin: float,
    lst_std_kelvin: float,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    description: str = "",
    lst_anchor: str = "global",
) -> ModelPackage:
    """Write ``NAME.onnx``, ``NAME.pt`` (state dict for the PyTorch backend) and the card
    ``NAME.json`` into ``out_dir``; the card is written last so a package never looks
    complete while its weights are still being written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(guidance_bands) != model.config.guidance_channels:
        raise ValueError(
            f"{len(guidance_bands)} guidance bands given but the network takes "
            f"{model.config.guidance_channels}"
        )
    onnx_path = out_dir / f"{name}{WEIGHTS_SUFFIX}"
    torch_path = out_dir / f"{name}{TORCH_WEIGHTS_SUFFIX}"
    card_path = out_dir / f"{name}{CARD_SUFFIX}"
    with tempfile.TemporaryDirectory(dir=out_dir) as staging:
        staged_onnx = Path(staging) / onnx_path.name
        staged_torch = Path(staging) / torch_path.name
        export_onnx(model, staged_onnx)
        state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
        torch.save(state, staged_torch)
        card = ModelCard(
            name=name,
            version=version,
            architecture="MoCoLSK-Net",
            hyperparameters=model.config.to_dict(),
            scale=model.config.scale,
            guidance_bands=tuple(guidance_bands),
            lst_mean_kelvin=float(lst_mean_kelvin),
            lst_std_kelvin=float(lst_std_kelvin),
            weights_file=onnx_path.name,
            weights_sha256=sha256_of_file(staged_onnx),
            torch_weights_file=torch_path.name,
            torch_weights_sha256=sha256_of_file(staged_torch),
            training=dict(training or {}),
            metrics=dict(metrics or {}),
            description=description,
            lst_anchor=lst_anchor,
        )
        card.validate(f"Model card {card_path.name}")
        # An older card must not survive beside new weights if the moves below are interrupted.
        card_path.unlink(missing_ok=True)
        os.replace(staged_onnx, onnx_path)
        os.replace(staged_torch, torch_path)
        staged_card = Path(staging) / card_path.name
        staged_card.write_text(card.to_json(), encoding="utf-8")
        os.replace(staged_card, card_path)
    return load_package(card_path)

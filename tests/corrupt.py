"""Damaged files as users meet them: truncated rasters and model packages whose card still matches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from engine.package import ModelPackage, sha256_of_file


def truncated_copy(path: Path, out: Path, keep: float = 1 / 3) -> Path:
    """The first ``keep`` of ``path``'s bytes (an interrupted download): the header opens, the data does not."""
    data = Path(path).read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def copy_package(package: ModelPackage, folder: Path, name: str) -> Path:
    """The package's card and ONNX weights copied under ``name``; returns the card path."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx = folder / f"{name}.onnx"
    shutil.copyfile(package.onnx_path, onnx)
    card = json.loads(package.card_path.read_text())
    card.update(name=name, weights_file=onnx.name, torch_weights_file="", torch_weights_sha256="")
    card_path = folder / f"{name}.json"
    card_path.write_text(json.dumps(card))
    return card_path


def _rewrite_onnx(card_path: Path, data: bytes) -> Path:
    card = json.loads(card_path.read_text())
    onnx = card_path.parent / card["weights_file"]
    onnx.write_bytes(data)
    card["weights_sha256"] = sha256_of_file(onnx)
    card_path.write_text(json.dumps(card))
    return card_path


def garble_onnx_keeping_checksum(card_path: Path) -> Path:
    """Overwrite the ONNX file's first bytes (no longer a protobuf) and update the card's checksum to match."""
    card = json.loads(card_path.read_text())
    data = bytearray((card_path.parent / card["weights_file"]).read_bytes())
    data[:64] = b"\xff" * 64
    return _rewrite_onnx(card_path, bytes(data))


def nan_weights_keeping_checksum(card_path: Path, torch_weights: Path) -> Path:
    """Set every float weight stored in the ONNX file to NaN (found by the PyTorch copy's bytes) and update
    the card's checksum: the file parses, the network returns NaN."""
    import torch

    card = json.loads(card_path.read_text())
    data = (card_path.parent / card["weights_file"]).read_bytes()
    for tensor in torch.load(torch_weights, map_location="cpu", weights_only=True).values():
        if tensor.dtype == torch.float32 and tensor.numel() >= 8:
            raw = tensor.numpy().tobytes()
            data = data.replace(raw, np.full(tensor.numel(), np.nan, np.float32).tobytes())
    return _rewrite_onnx(card_path, data)

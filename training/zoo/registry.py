"""The zoo's registry: names, papers, and building a network from a name or a saved config."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SCALES = (2, 4, 8)


@dataclass(frozen=True)
class ZooConfig:
    """What it takes to rebuild a zoo network (stored in training checkpoints)."""

    architecture: str
    scale: int
    guidance_channels: int
    options: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "scale": self.scale,
            "guidance_channels": self.guidance_channels,
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ZooConfig:
        return cls(
            values["architecture"],
            int(values["scale"]),
            int(values["guidance_channels"]),
            tuple(sorted(values.get("options", {}).items())),
        )


@dataclass(frozen=True)
class ZooEntry:
    name: str
    title: str
    paper: str
    guided: bool
    factory: Callable[..., nn.Module]


def _entries() -> dict[str, ZooEntry]:
    from .ahmf import AHMF
    from .djf import DJF
    from .edsr import EDSR
    from .fdkn import FDKN
    from .fdsr import FDSR
    from .rcan import RCAN
    from .sgnet import SGNet
    from .srcnn import SRCNN
    from .suft import SUFT

    rows = [
        ("djf", "DJF", "Li et al., Deep Joint Image Filtering, ECCV 2016", True, DJF),
        (
            "fdkn",
            "FDKN",
            "Kim et al., Deformable Kernel Networks for Joint Image Filtering, IJCV 2021",
            True,
            FDKN,
        ),
        (
            "fdsr",
            "FDSR",
            "He et al., Towards Fast and Accurate Real-World Depth Super-Resolution, CVPR 2021",
            True,
            FDSR,
        ),
        (
            "suft",
            "SUFT",
            "Shi et al., Symmetric Uncertainty-Aware Feature Transmission for Depth SR, ACM MM 2022",
            True,
            SUFT,
        ),
        (
            "sgnet",
            "SGNet",
            "Wang et al., SGNet: Structure Guided Network via Gradient-Frequency Awareness, AAAI 2024",
            True,
            SGNet,
        ),
        (
            "ahmf",
            "AHMF",
            "Zhong et al., Attention-Based Hierarchical Multi-Modal Fusion, IEEE TIP 2021",
            True,
            AHMF,
        ),
        (
            "srcnn",
            "SRCNN",
            "Dong et al., Image Super-Resolution Using Deep Convolutional Networks, TPAMI 2016",
            False,
            SRCNN,
        ),
        (
            "edsr",
            "EDSR",
            "Lim et al., Enhanced Deep Residual Networks for Single Image SR (baseline), CVPRW 2017",
            False,
            EDSR,
        ),
        (
            "rcan",
            "RCAN",
            "Zhang et al., Image Super-Resolution Using Very Deep Residual Channel Attention Networks, ECCV "
            "2018",
            False,
            RCAN,
        ),
    ]
    return {
        name: ZooEntry(name, title, paper, guided, factory) for name, title, paper, guided, factory in rows
    }


ZOO: dict[str, ZooEntry] = _entries()


def names() -> tuple[str, ...]:
    return tuple(ZOO)


def guided_names() -> tuple[str, ...]:
    return tuple(n for n, e in ZOO.items() if e.guided)


def single_image_names() -> tuple[str, ...]:
    return tuple(n for n, e in ZOO.items() if not e.guided)


def build(name: str, scale: int, guidance_channels: int = 10, **options: Any) -> nn.Module:
    """The zoo network ``name`` at ``scale`` for ``guidance_channels`` guidance bands,
    in its paper's default configuration unless ``options`` say otherwise."""
    key = name.lower()
    if key not in ZOO:
        raise ValueError(f"unknown zoo architecture {name!r}; choose one of {', '.join(ZOO)} (or 'mocolsk')")
    if scale not in SCALES:
        raise ValueError(f"{ZOO[key].title}: scale must be one of {SCALES}, got {scale}")
    try:
        model = ZOO[key].factory(scale=scale, guidance_channels=guidance_channels, **options)
    except TypeError as exc:
        raise ValueError(f"{ZOO[key].title}: bad model options {sorted(options)}: {exc}") from exc
    model.config = ZooConfig(key, scale, guidance_channels, tuple(sorted(options.items())))
    return model


def from_config(values: dict[str, Any]) -> nn.Module:
    """Rebuild a network from ``ZooConfig.to_dict()`` output (e.g. a checkpoint's ``model_config``)."""
    config = ZooConfig.from_dict(values)
    return build(config.architecture, config.scale, config.guidance_channels, **dict(config.options))


def forward_padded(model: nn.Module, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
    """``model(lst, guidance)`` for any tile size: edges are replicated up to the network's
    ``size_multiple`` (fine pixels; space-to-depth and octave layers need one) and cropped off."""
    scale = model.config.scale
    multiple = math.lcm(getattr(model, "size_multiple", scale), scale)
    rows, cols = guidance.shape[-2:]
    if (rows, cols) != (lst.shape[-2] * scale, lst.shape[-1] * scale):
        raise ValueError(
            f"guidance {cols}x{rows} px is not {scale} x the LST's {lst.shape[-1]}x{lst.shape[-2]} px"
        )
    pad_rows, pad_cols = -rows % multiple, -cols % multiple
    if not pad_rows and not pad_cols:
        return model(lst, guidance)
    lst = F.pad(lst, (0, pad_cols // scale, 0, pad_rows // scale), mode="replicate")
    guidance = F.pad(guidance, (0, pad_cols, 0, pad_rows), mode="replicate")
    return model(lst, guidance)[..., :rows, :cols]

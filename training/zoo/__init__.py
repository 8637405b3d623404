"""Baseline zoo: deep LST downscalers from the GrokLST comparison, re-implemented under
one interface so they train, evaluate and benchmark exactly like MoCoLSK-Net.

Every network maps normalised coarse LST (B, 1, h, w) and normalised guidance
(B, C, h*s, w*s) to normalised fine LST (B, 1, h*s, w*s). Single-image networks accept
the guidance and ignore it. Build one by name::

    from training.zoo import build
    net = build("sgnet", scale=4, guidance_channels=10)

Train one with ``python -m training train CONFIG`` where the config says
``"architecture": "sgnet"``; ``"model"`` then holds that network's options.
"""

from __future__ import annotations

from .registry import (
    ZOO,
    ZooConfig,
    ZooEntry,
    build,
    forward_padded,
    from_config,
    guided_names,
    names,
    single_image_names,
)

__all__ = [
    "ZOO",
    "ZooConfig",
    "ZooEntry",
    "build",
    "from_config",
    "guided_names",
    "names",
    "forward_padded",
    "single_image_names",
]

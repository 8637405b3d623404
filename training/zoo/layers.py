"""Building blocks shared by several zoo networks (the RCAN and DBPN blocks come from
``engine.model``, where MoCoLSK-Net uses the same ones)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.model import ChannelAttention, DenseProjection, ResidualGroup, conv

__all__ = [
    "ChannelAttention",
    "DenseProjection",
    "ResBlock",
    "ResidualGroup",
    "conv",
    "gradient_magnitude",
    "upsample",
]


def upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic interpolation onto the fine grid (the usual pre-upsampling and global residual)."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class ResBlock(nn.Module):
    """conv - activation - conv with an identity skip (EDSR's block without batch norm)."""

    def __init__(self, channels: int, negative_slope: float = 0.2, kernel_size: int = 3):
        super().__init__()
        self.conv1 = conv(channels, channels, kernel_size)
        self.conv2 = conv(channels, channels, kernel_size)
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), self.negative_slope))


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Per-channel magnitude of central differences, with zero padding at the edges."""
    padded = F.pad(x, (1, 1, 1, 1))
    dy = padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]
    dx = padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]
    return torch.sqrt(dx * dx + dy * dy + 1e-6)

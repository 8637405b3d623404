"""EDSR baseline (Lim et al., CVPRW 2017): 16 residual blocks of 64 features without
batch norm, a long skip, and sub-pixel (pixel-shuffle x2 per octave) upsampling on the
coarse grid. Single-image: the guidance is ignored."""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import ResBlock, conv


def pixel_shuffle_upsampler(channels: int, scale: int) -> nn.Sequential:
    """log2(scale) stages of conv (channels -> 4 channels) and pixel shuffle x2."""
    layers: list[nn.Module] = []
    for _ in range(int(math.log2(scale))):
        layers += [conv(channels, 4 * channels, 3), nn.PixelShuffle(2)]
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    def __init__(self, scale: int, guidance_channels: int, num_feats: int = 64, num_blocks: int = 16):
        super().__init__()
        self.head = conv(1, num_feats, 3)
        self.body = nn.Sequential(
            *[ResBlock(num_feats, negative_slope=0.0) for _ in range(num_blocks)],
            conv(num_feats, num_feats, 3),
        )
        self.upsampler = pixel_shuffle_upsampler(num_feats, scale)
        self.tail = conv(num_feats, 1, 3)

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        x = self.head(lst)
        return self.tail(self.upsampler(x + self.body(x)))

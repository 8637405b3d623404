"""RCAN (Zhang et al., ECCV 2018): 10 residual groups of 20 residual channel-attention
blocks (64 features, reduction 16), residual in residual, pixel-shuffle upsampling.
Single-image: the guidance is ignored."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .edsr import pixel_shuffle_upsampler
from .layers import ChannelAttention, conv


class RCAB(nn.Module):
    """RCAN's block: conv, ReLU, conv, channel attention, identity skip."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.conv1 = conv(channels, channels, 3)
        self.conv2 = conv(channels, channels, 3)
        self.attention = ChannelAttention(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attention(self.conv2(F.relu(self.conv1(x))))


class RCAN(nn.Module):
    def __init__(
        self,
        scale: int,
        guidance_channels: int,
        num_feats: int = 64,
        num_groups: int = 10,
        blocks_per_group: int = 20,
        reduction: int = 16,
    ):
        super().__init__()
        self.head = conv(1, num_feats, 3)
        self.groups = nn.ModuleList(
            nn.Sequential(
                *[RCAB(num_feats, reduction) for _ in range(blocks_per_group)], conv(num_feats, num_feats, 3)
            )
            for _ in range(num_groups)
        )
        self.body_tail = conv(num_feats, num_feats, 3)
        self.upsampler = pixel_shuffle_upsampler(num_feats, scale)
        self.tail = conv(num_feats, 1, 3)

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        x = self.head(lst)
        y = x
        for group in self.groups:
            y = y + group(y)
        return self.tail(self.upsampler(x + self.body_tail(y)))

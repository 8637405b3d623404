"""DJF (Li et al., ECCV 2016 / TPAMI 2019): two three-layer CNNs extract features of the
bicubic-upsampled target (9x9 96, 1x1 48, 5x5 1) and of the guidance (same widths); a
third three-layer CNN (9x9 64, 1x1 32, 5x5 1) fuses them. ``residual=True`` is DJFR,
which predicts the correction to the bicubic upsampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import upsample


class ThreeLayerCNN(nn.Module):
    def __init__(
        self, in_channels: int, widths: tuple[int, int, int], kernel_sizes: tuple[int, int, int] = (9, 1, 5)
    ):
        super().__init__()
        channels = (in_channels, *widths)
        self.layers = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], k, padding=k // 2) for i, k in enumerate(kernel_sizes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class DJF(nn.Module):
    def __init__(self, scale: int, guidance_channels: int, residual: bool = False):
        super().__init__()
        self.scale, self.residual = scale, residual
        self.target_cnn = ThreeLayerCNN(1, (96, 48, 1))
        self.guidance_cnn = ThreeLayerCNN(guidance_channels, (96, 48, 1))
        self.fusion_cnn = ThreeLayerCNN(2, (64, 32, 1))

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        target = upsample(lst, self.scale)
        out = self.fusion_cnn(torch.cat([self.target_cnn(target), self.guidance_cnn(guidance)], dim=1))
        return target + out if self.residual else out

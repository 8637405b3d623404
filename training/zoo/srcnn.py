"""SRCNN (Dong et al., TPAMI 2016): three convolutions on the bicubic-upsampled image,
patch extraction 9x9 (64), non-linear mapping 1x1 (32), reconstruction 5x5; the 9-1-5
network of the paper. Single-image: the guidance is ignored."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import upsample


class SRCNN(nn.Module):
    def __init__(
        self,
        scale: int,
        guidance_channels: int,
        channels: tuple[int, int] = (64, 32),
        kernel_sizes: tuple[int, int, int] = (9, 1, 5),
    ):
        super().__init__()
        self.scale = scale
        n1, n2 = channels
        f1, f2, f3 = kernel_sizes
        self.extraction = nn.Conv2d(1, n1, f1, padding=f1 // 2)
        self.mapping = nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.reconstruction = nn.Conv2d(n2, 1, f3, padding=f3 // 2)

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        x = upsample(lst, self.scale)
        return self.reconstruction(F.relu(self.mapping(F.relu(self.extraction(x)))))

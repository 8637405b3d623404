"""SUFT (Shi et al., ACM MM 2022): symmetric uncertainty-aware feature transmission.

The LST branch stays on the coarse grid and grows by 32 features per level through
residual groups of RCABs; the guidance branch is a chain of residual blocks on the fine
grid. At each of three bridges the LST features are up-projected twice, once as they are
and once horizontally flipped; where the two disagree (the symmetric uncertainty) the
guidance features are let through, concatenated with the up-projected LST features and
down-projected. A decoder up-projects to the fine grid and refines with two groups of
8 RCABs; the output adds to the bicubic upsampling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import DenseProjection, ResBlock, ResidualGroup, conv, upsample


class UncertaintyBridge(nn.Module):
    def __init__(self, lst_channels: int, guidance_channels: int, scale: int):
        super().__init__()
        self.up = DenseProjection(lst_channels, lst_channels, scale, up=True)
        self.up_flipped = DenseProjection(lst_channels, lst_channels, scale, up=True)
        self.attention = nn.Conv2d(2, 1, 7, padding=3)
        self.down = DenseProjection(
            lst_channels + guidance_channels, lst_channels + guidance_channels, scale, up=False
        )

    def forward(self, lst_feats: torch.Tensor, guidance_feats: torch.Tensor) -> torch.Tensor:
        fine = self.up(lst_feats)
        fine_flipped = self.up_flipped(lst_feats.flip(-1)).flip(-1)
        disagreement = (fine - fine_flipped).abs()
        stats = torch.cat([disagreement.mean(1, keepdim=True), disagreement.amax(1, keepdim=True)], dim=1)
        attention = self.attention(stats)
        low = attention.amin(dim=(2, 3), keepdim=True)
        high = attention.amax(dim=(2, 3), keepdim=True)
        attention = (attention - low) / (high - low + 1e-12)
        return self.down(torch.cat([fine, guidance_feats * attention], dim=1))


class SUFT(nn.Module):
    def __init__(
        self,
        scale: int,
        guidance_channels: int,
        num_feats: int = 32,
        reduction: int = 16,
        blocks_per_group: int = 4,
        decoder_blocks: int = 8,
    ):
        super().__init__()
        self.scale = scale
        f = num_feats
        self.guidance_in = conv(guidance_channels, f, 3)
        self.guidance_blocks = nn.ModuleList(ResBlock(f) for _ in range(3))
        self.lst_in = conv(1, f, 3)
        self.lst_groups = nn.ModuleList(
            ResidualGroup((i + 1) * f, 3, reduction, blocks_per_group) for i in range(4)
        )
        self.bridges = nn.ModuleList(UncertaintyBridge((i + 1) * f, f, scale) for i in range(3))
        width = 4 * f
        self.up = DenseProjection(width, width, scale, up=True)
        self.decoder = nn.Sequential(
            ResidualGroup(width, 3, reduction, decoder_blocks),
            ResidualGroup(width, 3, reduction, decoder_blocks),
        )
        self.head = nn.Sequential(conv(width, f, 3), nn.LeakyReLU(0.2), conv(f, 1, 3))

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        lst_feats = self.lst_groups[0](F.leaky_relu(self.lst_in(lst), 0.2))
        guidance_feats = F.leaky_relu(self.guidance_in(guidance), 0.2)
        for bridge, block, group in zip(self.bridges, self.guidance_blocks, self.lst_groups[1:]):
            guidance_feats = block(guidance_feats)
            lst_feats = group(bridge(lst_feats, guidance_feats))
        return upsample(lst, self.scale) + self.head(self.decoder(self.up(lst_feats)))

"""FDSR (He et al., CVPR 2021): a fast depth (here LST) super-resolution baseline.

Both inputs are rearranged by 4x space-to-depth (the LST after bicubic upsampling).
The guidance branch is a chain of octave convolutions whose high-frequency part (three
quarters of the features) is handed to the LST branch at each of three levels, where it
is concatenated with the LST features (32 -> 56 -> 80 -> 104 channels) and refined by a
multi-scale residual block (3x3 dilation 1 and 2, fused by a 1x1). Two pixel-shuffle
stages return to the fine grid; the output adds to the bicubic upsampling. The last
octave convolution computes no low-frequency output, which nothing would use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import conv, upsample

SPACE_TO_DEPTH = 4
LOW_FREQUENCY_SHARE = 0.25


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class OctaveConv(nn.Module):
    """3x3 octave convolution without bias: high-frequency features at full resolution,
    low-frequency features at half; up to four paths high/low -> high/low."""

    def __init__(self, in_high: int, in_low: int, out_high: int, out_low: int):
        super().__init__()

        def path(cin: int, cout: int) -> nn.Conv2d | None:
            return nn.Conv2d(cin, cout, 3, padding=1, bias=False) if cin and cout else None

        self.high_to_high = path(in_high, out_high)
        self.high_to_low = path(in_high, out_low)
        self.low_to_high = path(in_low, out_high)
        self.low_to_low = path(in_low, out_low)

    def forward(
        self, high: torch.Tensor, low: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        out_high = self.high_to_high(high)
        if low is not None:
            out_high = out_high + F.interpolate(self.low_to_high(low), scale_factor=2, mode="nearest")
        out_low = None
        if self.high_to_low is not None:
            out_low = self.high_to_low(F.avg_pool2d(high, 2))
            if low is not None:
                out_low = out_low + self.low_to_low(low)
            out_low = leaky(out_low)
        return leaky(out_high), out_low


class MultiScaleResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv_d1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_d2 = nn.Conv2d(channels, channels, 3, padding=2, dilation=2)
        self.fuse = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(leaky(self.conv_d1(x)) + leaky(self.conv_d2(x)))


class FDSR(nn.Module):
    def __init__(self, scale: int, guidance_channels: int, num_feats: int = 32):
        super().__init__()
        self.scale = scale
        self.size_multiple = 2 * SPACE_TO_DEPTH
        s2 = SPACE_TO_DEPTH**2
        low = int(LOW_FREQUENCY_SHARE * num_feats)
        high = num_feats - low
        self.guidance_in = conv(guidance_channels * s2, num_feats, 3)
        self.octaves = nn.ModuleList(
            [
                OctaveConv(num_feats, 0, high, low),
                OctaveConv(high, low, high, low),
                OctaveConv(high, low, high, 0),
            ]
        )
        self.lst_in = conv(s2, num_feats, 3)
        widths = [num_feats + i * high for i in range(4)]
        self.blocks = nn.ModuleList(MultiScaleResidualBlock(w) for w in widths)
        self.reconstruct = nn.Sequential(
            conv(widths[-1], 4 * num_feats, 3),
            nn.PixelShuffle(2),
            conv(num_feats, 4 * num_feats, 3),
            nn.PixelShuffle(2),
            conv(num_feats, 1, 3),
        )

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        target = upsample(lst, self.scale)
        features = self.blocks[0](leaky(self.lst_in(F.pixel_unshuffle(target, SPACE_TO_DEPTH))))
        high, low = leaky(self.guidance_in(F.pixel_unshuffle(guidance, SPACE_TO_DEPTH))), None
        for octave, block in zip(self.octaves, self.blocks[1:]):
            high, low = octave(high, low)
            features = block(torch.cat([features, high], dim=1))
        return target + self.reconstruct(leaky(features))

"""AHMF (Zhong et al., IEEE TIP 2021): attention-based hierarchical multi-modal fusion.

LST features (on the coarse grid) and guidance features (brought to the coarse grid by
space-to-depth) are extracted at four levels. At each level a fusion unit filters both
with gated convolutions, re-weights them with multi-modal attention (joint mean and
variance statistics) and merges them in a residual block. A bidirectional two-layer
convolutional GRU runs over the four levels' fused features, forward and backward
hidden states are added per level and refined, and the four levels are concatenated
and upsampled by pixel shuffle; the output adds to the bicubic upsampling.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import conv, upsample

LEVELS = 4


def resampler_kernel(scale: int) -> int:
    return 3 if scale == 8 else 1


class ConvPReLU(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(conv(in_channels, out_channels, kernel_size), nn.PReLU())


def space_to_depth_encoder(channels: int, scale: int) -> nn.Sequential:
    """log2(scale) stages of pixel-unshuffle x2 and a convolution back to ``channels``."""
    layers: list[nn.Module] = []
    for _ in range(int(math.log2(scale))):
        layers += [nn.PixelUnshuffle(2), ConvPReLU(4 * channels, channels, resampler_kernel(scale))]
    return nn.Sequential(*layers)


def pixel_shuffle_decoder(channels: int, scale: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(int(math.log2(scale))):
        layers += [conv(channels, 4 * channels, resampler_kernel(scale)), nn.PixelShuffle(2), nn.PReLU()]
    return nn.Sequential(*layers)


class ResidualUnit(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvPReLU(channels, channels, 3)
        self.conv2 = conv(channels, channels, 3)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.conv1(x)))


class GatedConv(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.gate = conv(channels, channels, 3)
        self.feature = ConvPReLU(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate(x)) * self.feature(x)


class MultiModalAttention(nn.Module):
    """MMAB: squeeze both modalities jointly, pool mean + variance, excite each modality."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        squeezed = 2 * channels // reduction
        self.squeeze = ConvPReLU(2 * channels, squeezed, 3)
        self.excite_lst = nn.Conv2d(squeezed, channels, 1)
        self.excite_guidance = nn.Conv2d(squeezed, channels, 1)

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fused = self.squeeze(torch.cat([lst, guidance], dim=1))
        stats = fused.mean(dim=(2, 3), keepdim=True) + fused.var(dim=(2, 3), unbiased=False, keepdim=True)
        return lst * torch.sigmoid(self.excite_lst(stats)) / 2, guidance * torch.sigmoid(
            self.excite_guidance(stats)
        ) / 2


class FusionUnit(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.filter_guidance = GatedConv(channels)
        self.filter_lst = GatedConv(channels)
        self.attention = MultiModalAttention(channels, reduction)
        self.merge = ResidualUnit(channels)

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        lst, guidance = self.attention(self.filter_lst(lst), self.filter_guidance(guidance))
        return self.merge(lst + guidance)


class ConvGRUCell(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.update = conv(2 * channels, channels, 3)
        self.reset = conv(2 * channels, channels, 3)
        self.candidate = conv(2 * channels, channels, 3)

    def forward(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        joint = torch.cat([x, hidden], dim=1)
        update = torch.sigmoid(self.update(joint))
        reset = torch.sigmoid(self.reset(joint))
        candidate = torch.tanh(self.candidate(torch.cat([x, hidden * reset], dim=1)))
        return hidden * (1 - update) + candidate * update


class ConvGRU(nn.Module):
    """A stack of ConvGRU layers over a sequence; returns the last layer's hidden states."""

    def __init__(self, channels: int, layers: int = 2):
        super().__init__()
        self.cells = nn.ModuleList(ConvGRUCell(channels) for _ in range(layers))

    def forward(self, sequence: list[torch.Tensor]) -> list[torch.Tensor]:
        for cell in self.cells:
            hidden = torch.zeros_like(sequence[0])
            outputs = []
            for x in sequence:
                hidden = cell(x, hidden)
                outputs.append(hidden)
            sequence = outputs
        return sequence


class AHMF(nn.Module):
    def __init__(self, scale: int, guidance_channels: int, num_feats: int = 64, reduction: int = 4):
        super().__init__()
        self.scale = scale
        f = num_feats
        self.lst_in = ConvPReLU(1, f, 3)
        self.guidance_in = nn.Sequential(ConvPReLU(guidance_channels, f, 3), space_to_depth_encoder(f, scale))
        self.lst_levels = nn.ModuleList(ConvPReLU(f, f, 3) for _ in range(LEVELS - 1))
        self.guidance_levels = nn.ModuleList(ConvPReLU(f, f, 3) for _ in range(LEVELS - 1))
        self.fusion = nn.ModuleList(FusionUnit(f, reduction) for _ in range(LEVELS))
        self.forward_gru = ConvGRU(f)
        self.backward_gru = ConvGRU(f)
        self.refine = nn.ModuleList(ResidualUnit(f) for _ in range(LEVELS))
        self.reconstruct = nn.Sequential(
            ConvPReLU(LEVELS * f, f, 1), *pixel_shuffle_decoder(f, scale), conv(f, 1, 3)
        )

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        lst_feats = [self.lst_in(lst)]
        guidance_feats = [self.guidance_in(guidance)]
        for lst_level, guidance_level in zip(self.lst_levels, self.guidance_levels):
            lst_feats.append(lst_level(lst_feats[-1]))
            guidance_feats.append(guidance_level(guidance_feats[-1]))
        fused = [
            unit(lst_feats[LEVELS - 1 - i], guidance_feats[LEVELS - 1 - i])
            for i, unit in enumerate(self.fusion)
        ]
        forward_states = self.forward_gru(fused)
        backward_states = self.backward_gru(fused[::-1])[::-1]
        refined = [unit(a + b) for unit, a, b in zip(self.refine, forward_states, backward_states)]
        return upsample(lst, self.scale) + self.reconstruct(torch.cat(refined, dim=1))

"""SGNet (Wang et al., AAAI 2024): structure guidance through gradient and frequency
awareness, with 40 features as in the paper's code.

- Gradient calibration module (GCM): the coarse LST is up-projected to the fine grid; the
  gradient magnitudes of the guidance and of that LST are embedded, fused and calibrated
  into a predicted LST gradient map, whose features are down-projected and handed to
  every stage of the main branch.
- Three structure-guidance modules (SDM) on the fine grid: the up-projected LST features
  and the guidance features are fused in space (an invertible affine-coupling block) and
  in frequency (amplitudes and phases of their 2-D FFTs fused separately), re-weighted by
  contrast-aware channel attention and down-projected.
- A decoder of three residual groups of 8 RCABs after a dense up-projection; the output
  adds to the bicubic upsampling.

The gradient branch takes every guidance band (the paper's has the three RGB bands).
Layers that the reference code builds but never uses in its forward pass are left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (
    ChannelAttention,
    DenseProjection,
    ResBlock,
    ResidualGroup,
    conv,
    gradient_magnitude,
    upsample,
)

COUPLING_CLAMP = 0.8
DENSE_GROWTH = 8


def conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1)


class UNetConvBlock(nn.Module):
    """Two 3x3 convolutions (LeakyReLU 0.1) plus a 1x1 projection of the input."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.identity = conv1x1(in_channels, out_channels)
        self.conv1 = conv(in_channels, out_channels, 3)
        self.conv2 = conv(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), 0.1)), 0.1)
        return y + self.identity(x)


class DenseBlock(nn.Module):
    """The coupling sub-network: two U-Net conv blocks of 8 features, densely concatenated."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.block1 = UNetConvBlock(in_channels, DENSE_GROWTH)
        self.block2 = UNetConvBlock(DENSE_GROWTH, DENSE_GROWTH)
        self.fuse = conv(in_channels + 2 * DENSE_GROWTH, out_channels, 3)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.xavier_normal_(layer.weight)
                layer.weight.data.mul_(0.1)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.leaky_relu(self.block1(x), 0.2)
        x2 = F.leaky_relu(self.block2(x1), 0.2)
        return F.leaky_relu(self.fuse(torch.cat([x, x1, x2], dim=1)), 0.2)


class InvertibleConv1x1(nn.Module):
    """Glow's invertible 1x1 convolution, LU-parametrised: W = P (L + I) (U + diag(sign * exp(log_s)))."""

    def __init__(self, channels: int):
        super().__init__()
        q = torch.linalg.qr(torch.randn(channels, channels))[0]
        p, lower, upper = torch.linalg.lu(q)
        diagonal = torch.diagonal(upper)
        self.register_buffer("permutation", p)
        self.register_buffer("sign", torch.sign(diagonal))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_scale = nn.Parameter(torch.log(diagonal.abs()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(self.lower.shape[0], device=x.device, dtype=x.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_scale))
        weight = self.permutation @ lower @ upper
        return F.conv2d(x, weight[:, :, None, None])


class CouplingBlock(nn.Module):
    """Invertible block: 1x1 mixing, then affine coupling between the first ``split`` channels and the rest."""

    def __init__(self, channels: int, split: int):
        super().__init__()
        self.split = split
        self.mix = InvertibleConv1x1(channels)
        self.shift_first = DenseBlock(channels - split, split)
        self.shift_rest = DenseBlock(split, channels - split)
        self.scale_rest = DenseBlock(split, channels - split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mix(x)
        first, rest = x[:, : self.split], x[:, self.split :]
        first = first + self.shift_first(rest)
        log_scale = COUPLING_CLAMP * (2 * torch.sigmoid(self.scale_rest(first)) - 1)
        rest = rest * torch.exp(log_scale) + self.shift_rest(first)
        return torch.cat([first, rest], dim=1)


def two_layer_1x1(channels: int) -> nn.Sequential:
    return nn.Sequential(conv1x1(channels, channels), nn.LeakyReLU(0.1), conv1x1(channels, channels))


class SpectrumFusion(nn.Module):
    """Fuses one spectral quantity (amplitude or phase) of the LST and guidance features:
    the LST term and the absolute difference to the guidance, each through two 1x1 convolutions."""

    def __init__(self, channels: int, guidance_channels: int):
        super().__init__()
        self.lst_in = conv1x1(channels, channels)
        self.guidance_in = conv1x1(guidance_channels, channels)
        self.lst_path = two_layer_1x1(channels)
        self.difference_path = two_layer_1x1(channels)
        self.out = conv1x1(2 * channels, channels)

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        lst, guidance = self.lst_in(lst), self.guidance_in(guidance)
        return self.out(torch.cat([self.lst_path(lst), self.difference_path((guidance - lst).abs())], dim=1))


class FrequencyFusion(nn.Module):
    def __init__(self, channels: int, guidance_channels: int):
        super().__init__()
        self.lst_in = conv1x1(channels, channels)
        self.guidance_in = conv1x1(guidance_channels, guidance_channels)
        self.amplitude = SpectrumFusion(channels, guidance_channels)
        self.phase = SpectrumFusion(channels, guidance_channels)
        self.out = conv1x1(channels, channels)

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        size = lst.shape[-2:]
        lst_spectrum = torch.fft.rfft2(self.lst_in(lst) + 1e-8)
        guidance_spectrum = torch.fft.rfft2(self.guidance_in(guidance) + 1e-8)
        amplitude = self.amplitude(lst_spectrum.abs(), guidance_spectrum.abs())
        phase = self.phase(lst_spectrum.angle(), guidance_spectrum.angle())
        fused = torch.complex(amplitude * torch.cos(phase), amplitude * torch.sin(phase))
        return self.out(torch.fft.irfft2(fused, s=size).abs())


def contrast(x: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation over the image."""
    return x.std(dim=(2, 3), unbiased=False, keepdim=True)


class StructureGuidance(nn.Module):
    """SDM: fuse up-projected LST features with guidance features in space and frequency."""

    def __init__(self, channels: int, guidance_channels: int, scale: int):
        super().__init__()
        self.up = DenseProjection(channels, channels, scale, up=True)
        self.guidance_conv = conv(guidance_channels, guidance_channels, 3)
        self.guidance_pre = conv1x1(guidance_channels, guidance_channels)
        self.spatial = nn.Sequential(
            CouplingBlock(channels + guidance_channels, channels),
            conv1x1(channels + guidance_channels, channels),
        )
        self.frequency = FrequencyFusion(channels, guidance_channels)
        self.fuse = nn.Sequential(CouplingBlock(2 * channels, channels), conv1x1(2 * channels, channels))
        self.channel_attention = nn.Sequential(
            conv1x1(channels, channels // 2),
            nn.LeakyReLU(0.1),
            conv1x1(channels // 2, channels),
            nn.Sigmoid(),
        )
        self.down = DenseProjection(channels, channels, scale, up=False)

    def forward(
        self, lst_feats: torch.Tensor, guidance_feats: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        fine = self.up(lst_feats)
        guidance_next = self.guidance_conv(guidance_feats)
        guidance = self.guidance_pre(guidance_next)
        spatial = self.spatial(torch.cat([fine, guidance], dim=1))
        fused = self.fuse(torch.cat([spatial, self.frequency(fine, guidance)], dim=1))
        weights = self.channel_attention(contrast(fused) + fused.mean(dim=(2, 3), keepdim=True))
        return self.down(weights * fused + fine), guidance_next


class GradientCalibration(nn.Module):
    """GCM: predicts the fine LST gradient map from the guidance and LST gradients and
    returns its features on the coarse grid."""

    def __init__(self, num_feats: int, guidance_channels: int, scale: int):
        super().__init__()
        f = num_feats
        self.up = DenseProjection(1, 1, scale, up=True)
        self.guidance_embed = conv(guidance_channels, f, 3)
        self.lst_embed = conv(1, f, 3)
        self.guidance_block = ResBlock(f)
        self.lst_group = ResidualGroup(f, 3, 16, 4)
        self.fuse = nn.Sequential(conv1x1(2 * f, f), ResidualGroup(f, 3, 8, 4), ResidualGroup(f, 3, 8, 4))
        self.attention = ChannelAttention(f, 4)
        self.calibrate = conv(f, f, 3)
        self.gradient_out = conv(f, 1, 3)
        self.lst_features = nn.Sequential(conv(1, f, 3), ResidualGroup(f, 3, 8, 8))
        self.gradient_features = nn.Sequential(conv(1, f, 3), nn.LeakyReLU(0.2), conv(f, f, 3))
        self.refine = nn.Sequential(ResidualGroup(f, 3, 8, 4), ResidualGroup(f, 3, 8, 4))
        self.down = DenseProjection(f, f, scale, up=False)

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        fine = self.up(lst)
        guidance_grad = self.guidance_block(self.guidance_embed(gradient_magnitude(guidance)))
        lst_grad = self.lst_embed(gradient_magnitude(fine))
        fused = self.fuse(torch.cat([guidance_grad, self.lst_group(lst_grad)], dim=1))
        gradient = self.gradient_out(self.calibrate(lst_grad + self.attention(fused)))
        features = self.gradient_features(gradient) + self.lst_features(fine)
        return self.down(self.refine(features))


class SGNet(nn.Module):
    def __init__(
        self,
        scale: int,
        guidance_channels: int,
        num_feats: int = 40,
        blocks_per_group: int = 6,
        decoder_blocks: int = 8,
        reduction: int = 16,
    ):
        super().__init__()
        self.scale = scale
        f, n, r = num_feats, blocks_per_group, reduction
        self.gradient = GradientCalibration(f, guidance_channels, scale)
        self.guidance_in = conv(guidance_channels, f, 3)
        self.guidance_blocks = nn.ModuleList(ResBlock(f) for _ in range(3))
        self.lst_in = conv(1, f, 3)
        self.lst_in_wide = conv(f, 2 * f, 3)
        self.groups = nn.ModuleList(
            [
                ResidualGroup(f, 3, r, n),
                ResidualGroup(2 * f, 3, r, n),
                ResidualGroup(2 * f, 3, r, n),
                ResidualGroup(3 * f, 3, r, n),
            ]
        )
        self.with_gradient = nn.ModuleList([conv1x1(2 * f, f), conv1x1(3 * f, 2 * f), conv1x1(3 * f, 3 * f)])
        self.bridges = nn.ModuleList(StructureGuidance(k * f, f, scale) for k in (1, 2, 3))
        self.compress_stage3 = conv1x1(4 * f, 2 * f)
        self.compress_stage4 = conv1x1(8 * f, 3 * f)
        width = 3 * f
        self.up = DenseProjection(width, width, scale, up=True)
        self.decoder = nn.Sequential(*[ResidualGroup(width, 3, r, decoder_blocks) for _ in range(3)])
        self.head = nn.Sequential(conv(width, f, 3), nn.LeakyReLU(0.2), conv(f, 1, 3))

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        gradient = self.gradient(lst, guidance)
        stem = F.leaky_relu(self.lst_in(lst), 0.2)
        g = F.leaky_relu(self.guidance_in(guidance), 0.2)

        d1 = self.groups[0](stem)
        b1, g = self.bridges[0](
            self.with_gradient[0](torch.cat([d1, gradient], 1)), self.guidance_blocks[0](g)
        )
        d2 = self.groups[1](torch.cat([d1, b1 + stem], 1))
        b2, g = self.bridges[1](
            self.with_gradient[1](torch.cat([d2, gradient], 1)), self.guidance_blocks[1](g)
        )
        d3 = self.groups[2](self.compress_stage3(torch.cat([d2, b2 + self.lst_in_wide(stem)], 1)))
        b3, _ = self.bridges[2](
            self.with_gradient[2](torch.cat([d3, gradient], 1)), self.guidance_blocks[2](g)
        )
        d4 = self.groups[3](self.compress_stage4(torch.cat([d1, d2, d3, b3], 1)))
        return upsample(lst, self.scale) + self.head(self.decoder(self.up(d4)))

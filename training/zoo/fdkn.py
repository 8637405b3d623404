"""FDKN, the fast deformable kernel network (Kim et al., IJCV 2021).

Two kernel branches, one on the guidance and one on the bicubic-upsampled LST, each
working on a 4x space-to-depth rearrangement (the "shift and stitch" speed-up), predict
for every fine pixel the weights and offsets of a 3x3 set of sampling points; the
products of the two branches' weights and offsets drive a deformable weighted average
of the upsampled LST within a 15x15 window. With ``residual`` (the paper's default) the
weights are made zero-mean and the result is added to the upsampled LST.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import upsample

SPACE_TO_DEPTH = 4


class KernelBranch(nn.Module):
    """Six 3x3 convolutions (32, 32, 64, 64, 128, 128; batch norm after the 1st, 3rd and 5th)
    and two 1x1 heads: sampling weights and (dy, dx) offsets for each of the 4x4 sub-pixels."""

    def __init__(self, in_channels: int, kernel_size: int):
        super().__init__()
        widths = (32, 32, 64, 64, 128, 128)
        layers: list[nn.Module] = []
        previous = in_channels
        for i, width in enumerate(widths):
            layers.append(nn.Conv2d(previous, width, 3, padding=1))
            if i % 2 == 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU())
            previous = width
        self.features = nn.Sequential(*layers)
        taps = kernel_size**2 * SPACE_TO_DEPTH**2
        self.weight_head = nn.Conv2d(128, taps, 1)
        self.offset_head = nn.Conv2d(128, 2 * taps, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.features(x)
        return torch.sigmoid(self.weight_head(x)), self.offset_head(x)


def deformable_average(
    image: torch.Tensor, weight: torch.Tensor, offset: torch.Tensor, kernel_size: int, window_px: int
) -> torch.Tensor:
    """Sum over taps t of weight_t * image(p + base_t + offset_t), bilinear sampling.

    image (B, 1, H, W); weight (B, T, H, W); offset (B, 2T, H, W) as T dy then T dx maps,
    in pixels, clamped so that every sampling point stays inside the ``window_px`` window.
    """
    b, taps, h, w = weight.shape
    reach = window_px // 2
    base = torch.arange(kernel_size, device=image.device, dtype=image.dtype) - kernel_size // 2
    base_y, base_x = torch.meshgrid(base, base, indexing="ij")
    rows = torch.arange(h, device=image.device, dtype=image.dtype).view(1, 1, h, 1)
    cols = torch.arange(w, device=image.device, dtype=image.dtype).view(1, 1, 1, w)
    y = rows + (base_y.reshape(1, taps, 1, 1) + offset[:, :taps]).clamp(-reach, reach)
    x = cols + (base_x.reshape(1, taps, 1, 1) + offset[:, taps:]).clamp(-reach, reach)
    grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], dim=-1)
    sampled = F.grid_sample(
        image.expand(b, 1, h, w).repeat_interleave(taps, 0).view(b * taps, 1, h, w),
        grid.view(b * taps, h, w, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=True,
    )
    return (sampled.view(b, taps, h, w) * weight).sum(dim=1, keepdim=True)


class FDKN(nn.Module):
    def __init__(
        self,
        scale: int,
        guidance_channels: int,
        kernel_size: int = 3,
        window_px: int = 15,
        residual: bool = True,
    ):
        super().__init__()
        self.scale, self.kernel_size, self.window_px, self.residual = scale, kernel_size, window_px, residual
        self.size_multiple = SPACE_TO_DEPTH
        self.guidance_kernel = KernelBranch(guidance_channels * SPACE_TO_DEPTH**2, kernel_size)
        self.lst_kernel = KernelBranch(SPACE_TO_DEPTH**2, kernel_size)

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        target = upsample(lst, self.scale)
        guidance_weight, guidance_offset = self.guidance_kernel(F.pixel_unshuffle(guidance, SPACE_TO_DEPTH))
        lst_weight, lst_offset = self.lst_kernel(F.pixel_unshuffle(target, SPACE_TO_DEPTH))
        weight = F.pixel_shuffle(guidance_weight * lst_weight, SPACE_TO_DEPTH)
        offset = F.pixel_shuffle(guidance_offset * lst_offset, SPACE_TO_DEPTH)
        if self.residual:
            weight = weight - weight.mean(dim=1, keepdim=True)
        else:
            weight = weight / weight.sum(dim=1, keepdim=True)
        out = deformable_average(target, weight, offset, self.kernel_size, self.window_px)
        return target + out if self.residual else out

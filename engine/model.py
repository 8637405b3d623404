"""MoCoLSK-Net in PyTorch, module by module as in the paper (Figs. 2 and 3).

Vocabulary: a *stage* is one LST residual group, one guidance residual group and one
MoCoLSK module; the MoCoLSK module up-projects coarse LST features to the fine grid
(dense projection), runs the LSK pathway whose spatial selection is steered by the
modality-conditioned weight generator (MCWG), fuses with the guidance features and
down-projects back to the coarse grid.

Two departures from the reference implementation, both deliberate: the MCWG output
stays in the autograd graph (the reference detaches it by wrapping it in a frozen
``nn.Parameter``), and the dynamic KxK convolution and the MCWG pooling are per sample
(the reference averages over the batch and only works for batch size 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

PYRAMID_BINS = (1, 2, 3, 6)

# (kernel, stride, padding) of the dense-projection convolutions per scale.
PROJECTION_GEOMETRY = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2), 16: (20, 16, 2)}


@dataclass(frozen=True)
class MoCoLSKConfig:
    """Hyper-parameters of MoCoLSK-Net; the defaults are the paper's."""

    scale: int = 4
    lst_channels: int = 1
    guidance_channels: int = 10
    num_feats: int = 32
    kernel_size: int = 3
    mocolsk_kernel_size: int = 3
    num_stages: int = 4
    blocks_per_group: int = 4
    reduction: int = 16

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> MoCoLSKConfig:
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown MoCoLSK hyper-parameters: {sorted(unknown)}")
        return cls(**values)


def conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention of RCAN."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        squeezed = max(channels // reduction, 1)
        self.squeeze = nn.Conv2d(channels, squeezed, 1)
        self.excite = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        w = torch.sigmoid(self.excite(F.relu(self.squeeze(w))))
        return x * w


class RCAB(nn.Module):
    """Residual channel-attention block: conv, LeakyReLU, conv, channel attention."""

    def __init__(self, channels: int, kernel_size: int, reduction: int):
        super().__init__()
        self.conv1 = conv(channels, channels, kernel_size)
        self.conv2 = conv(channels, channels, kernel_size)
        self.attention = ChannelAttention(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.leaky_relu(self.conv1(x), 0.2))
        return x + self.attention(y)


class ResidualGroup(nn.Module):
    """A chain of RCABs and a closing convolution, with a skip over the whole group."""

    def __init__(self, channels: int, kernel_size: int, reduction: int, num_blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(
            *[RCAB(channels, kernel_size, reduction) for _ in range(num_blocks)],
            conv(channels, channels, kernel_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.blocks(x)


def projection_conv(in_channels: int, out_channels: int, scale: int, up: bool) -> nn.Module:
    kernel, stride, padding = PROJECTION_GEOMETRY[scale]
    layer = nn.ConvTranspose2d if up else nn.Conv2d
    return layer(in_channels, out_channels, kernel, stride=stride, padding=padding)


class DenseProjection(nn.Module):
    """Back-projection unit (DBPN): project, project back, correct with the error."""

    def __init__(self, in_channels: int, out_channels: int, scale: int, up: bool):
        super().__init__()
        self.project = nn.Sequential(
            projection_conv(in_channels, out_channels, scale, up), nn.PReLU(out_channels)
        )
        self.back_project = nn.Sequential(
            projection_conv(out_channels, in_channels, scale, not up), nn.PReLU(in_channels)
        )
        self.project_error = nn.Sequential(
            projection_conv(in_channels, out_channels, scale, up), nn.PReLU(out_channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = self.project(x)
        error = self.back_project(projected) - x
        return projected + self.project_error(error)


class DynamicMLP(nn.Module):
    """Dynamic MLP type "a" (Yang et al., CVPR 2022): guidance tokens generate the
    per-token projection matrix applied to the LST tokens."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.weight_generator = nn.Linear(channels, channels * channels)
        self.norm = nn.LayerNorm(channels)

    def forward(self, lst_tokens: torch.Tensor, guidance_tokens: torch.Tensor) -> torch.Tensor:
        b, n, c = guidance_tokens.shape
        weight = self.weight_generator(guidance_tokens).reshape(b, n, c, c)
        mixed = (lst_tokens.unsqueeze(-2) @ weight).squeeze(-2)
        return F.relu(self.norm(mixed))


def adaptive_pool_matrix(size: torch.Tensor | int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, size) matrix whose rows average the pixels of each adaptive-pooling bin.

    Bin i covers [floor(i*size/bins), ceil((i+1)*size/bins)), as ``adaptive_avg_pool2d``.
    Built from the input's size at run time, so an exported graph pools any tile size."""
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * size, bins, rounding_mode="floor")
    end = torch.div((index + 1) * size + bins - 1, bins, rounding_mode="floor")
    position = torch.arange(size, device=like.device)
    inside = (position[None, :] >= start[:, None]) & (position[None, :] < end[:, None])
    weights = inside.to(like.dtype)
    return weights / weights.sum(dim=1, keepdim=True)


def pyramid_tokens(x: torch.Tensor) -> torch.Tensor:
    """Adaptive average pooling to 1x1, 2x2, 3x3 and 6x6 cells, as (B, 50, C) tokens."""
    b, c, h, w = x.shape
    pools = []
    for bins in PYRAMID_BINS:
        rows = adaptive_pool_matrix(h, bins, x)
        cols = adaptive_pool_matrix(w, bins, x)
        pools.append((rows @ x @ cols.transpose(0, 1)).reshape(b, c, bins * bins))
    return torch.cat(pools, dim=2).transpose(1, 2)


class MCWG(nn.Module):
    """Modality-conditioned weight generator: pyramid pooling of both modalities and a
    dynamic MLP produce, per sample, the weights of the 2->2 KxK selection convolution."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        weights = 2 * 2 * kernel_size * kernel_size
        self.embed = nn.Linear(channels, channels)
        self.dynamic_mlp = DynamicMLP(channels)
        self.to_weights = nn.Linear(channels, weights)
        self.norm = nn.LayerNorm(weights)
        self.shortcut = nn.Linear(channels, weights)

    def forward(self, lst_fine: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        lst_tokens = pyramid_tokens(lst_fine)
        guidance_tokens = pyramid_tokens(guidance)
        mixed = self.dynamic_mlp(self.embed(lst_tokens), guidance_tokens)
        weights = self.norm(self.to_weights(mixed)) + self.shortcut(lst_tokens)
        k = self.kernel_size
        return weights.mean(dim=1).reshape(-1, 2, 2, k * k)


def per_sample_conv(x: torch.Tensor, weight: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """KxK convolution of x (B, I, H, W) with a different weight (B, O, I, K*K) per sample.

    Written as a sum of shifted copies so it exports to ONNX with a dynamic batch."""
    pad = kernel_size // 2
    padded = F.pad(x, (pad, pad, pad, pad))
    h, w = x.shape[2], x.shape[3]
    shifted = torch.stack(
        [padded[:, :, dy : dy + h, dx : dx + w] for dy in range(kernel_size) for dx in range(kernel_size)],
        dim=2,
    )
    return torch.einsum("boik,bikhw->bohw", weight, shifted)


class LSKPathway(nn.Module):
    """Large selective kernel pathway with MCWG-steered spatial selection (Fig. 3)."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.local = nn.Conv2d(channels, channels, 5, padding=2, groups=channels)
        self.wide = nn.Conv2d(channels, channels, 7, padding=9, groups=channels, dilation=3)
        self.reduce_local = nn.Conv2d(channels, channels // 2, 1)
        self.reduce_wide = nn.Conv2d(channels, channels // 2, 1)
        self.mcwg = MCWG(channels, kernel_size)
        self.expand = nn.Conv2d(channels // 2, channels, 1)

    def forward(self, lst_fine: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        local = self.local(lst_fine)
        wide = self.wide(local)
        local = self.reduce_local(local)
        wide = self.reduce_wide(wide)
        both = torch.cat([local, wide], dim=1)
        pooled = torch.cat([both.mean(dim=1, keepdim=True), both.amax(dim=1, keepdim=True)], dim=1)
        selection = torch.sigmoid(per_sample_conv(pooled, self.mcwg(lst_fine, guidance), self.kernel_size))
        selected = local * selection[:, 0:1] + wide * selection[:, 1:2]
        return self.expand(selected) * guidance


class MoCoLSKModule(nn.Module):
    """Up-project LST features, fuse with guidance in the LSK pathway, down-project."""

    def __init__(self, lst_channels: int, guidance_channels: int, scale: int, kernel_size: int):
        super().__init__()
        self.up_projection = DenseProjection(lst_channels, guidance_channels, scale, up=True)
        self.lsk = LSKPathway(guidance_channels, kernel_size)
        self.down_projection = DenseProjection(
            2 * guidance_channels, lst_channels + guidance_channels, scale, up=False
        )

    def forward(self, lst_coarse: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        lst_fine = self.up_projection(lst_coarse)
        fused = self.lsk(lst_fine, guidance)
        return self.down_projection(torch.cat([lst_fine, fused], dim=1))


class MoCoLSKNet(nn.Module):
    """MoCoLSK-Net: normalised coarse LST (B, 1, h, w) and normalised guidance
    (B, C, h*scale, w*scale) -> normalised fine LST (B, 1, h*scale, w*scale)."""

    def __init__(self, config: MoCoLSKConfig = MoCoLSKConfig()):
        super().__init__()
        if config.scale not in PROJECTION_GEOMETRY:
            raise ValueError(f"scale must be one of {sorted(PROJECTION_GEOMETRY)}, got {config.scale}")
        self.config = config
        f, k, r, n = config.num_feats, config.kernel_size, config.reduction, config.blocks_per_group
        self.lst_stem = conv(config.lst_channels, f, k)
        self.guidance_stem = conv(config.guidance_channels, f, k)
        self.lst_groups = nn.ModuleList(ResidualGroup((i + 1) * f, k, r, n) for i in range(config.num_stages))
        self.guidance_groups = nn.ModuleList(ResidualGroup(f, k, r, n) for _ in range(config.num_stages))
        self.stages = nn.ModuleList(
            MoCoLSKModule((i + 1) * f, f, config.scale, config.mocolsk_kernel_size)
            for i in range(config.num_stages)
        )
        width = (config.num_stages + 1) * f
        self.decoder = nn.Sequential(
            ResidualGroup(width, k, r, n),
            DenseProjection(width, width, config.scale, up=True),
            ResidualGroup(width, k, r, 2 * n),
            ResidualGroup(width, k, r, 2 * n),
        )
        self.projection_head = nn.Sequential(conv(width, f, k), nn.LeakyReLU(0.2), conv(f, 1, k))

    def forward(self, lst: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        lst_feats = F.leaky_relu(self.lst_stem(lst), 0.2)
        guidance_feats = F.leaky_relu(self.guidance_stem(guidance), 0.2)
        for lst_group, guidance_group, stage in zip(self.lst_groups, self.guidance_groups, self.stages):
            guidance_feats = guidance_group(guidance_feats)
            lst_feats = stage(lst_group(lst_feats), guidance_feats)
        residual = self.projection_head(self.decoder(lst_feats))
        upsampled = F.interpolate(lst, scale_factor=self.config.scale, mode="bicubic", align_corners=False)
        return upsampled + residual


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def multiply_adds_per_output_pixel(config: MoCoLSKConfig, fine_size: int = 96) -> float:
    """Multiply-adds of one forward pass per fine output pixel, counted over the
    convolutions and linear layers (which dominate) on a fine tile of ``fine_size``."""
    model = MoCoLSKNet(config).eval()
    fine = fine_size - fine_size % config.scale
    total = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):
            total += inputs[0][0, 0].numel() * module.weight.numel()
        elif isinstance(module, nn.Conv2d):
            total += output[0, 0].numel() * module.weight.numel()
        else:
            total += output[0].numel() * module.in_features

    layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    with torch.no_grad():
        model(
            torch.zeros(1, config.lst_channels, fine // config.scale, fine // config.scale),
            torch.zeros(1, config.guidance_channels, fine, fine),
        )
    for handle in handles:
        handle.remove()
    return total / (fine * fine)

import pytest
import torch
import torch.nn.functional as F

from engine.model import (
    PYRAMID_BINS,
    MoCoLSKConfig,
    MoCoLSKNet,
    count_parameters,
    multiply_adds_per_output_pixel,
    pyramid_tokens,
)

# Parameter counts of the reference GrokLST MoCoLSKNet (in_channels=1, gui_channels=10,
# num_feats=32, 4 stages, 4 RCABs per group, reduction 16, mocolsk_kernel_size=3), obtained
# by instantiating groklst/models/editors/mocolsk/mocolsk_net.py and summing
# p.numel() over parameters(). The scale changes only the dense projections' kernels
# (6x6, 8x8, 12x12), hence the growth with scale.
REFERENCE_PARAMETER_COUNTS = {2: 20_011_833, 4: 25_430_841, 8: 40_913_721}


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_parameter_count_equals_reference(scale):
    assert count_parameters(MoCoLSKNet(MoCoLSKConfig(scale=scale))) == REFERENCE_PARAMETER_COUNTS[scale]


def small_net(scale=4, seed=0):
    torch.manual_seed(seed)
    return MoCoLSKNet(
        MoCoLSKConfig(
            scale=scale, guidance_channels=3, num_feats=8, num_stages=2, blocks_per_group=1, reduction=4
        )
    )


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_output_is_on_fine_grid(scale):
    net = small_net(scale).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 1, 5, 7), torch.randn(2, 3, 5 * scale, 7 * scale))
    assert out.shape == (2, 1, 5 * scale, 7 * scale)


def test_weight_generator_receives_gradients():
    net = small_net()
    out = net(torch.randn(2, 1, 6, 6), torch.randn(2, 3, 24, 24))
    out.abs().mean().backward()
    mcwg_grads = {name: p.grad for name, p in net.named_parameters() if ".mcwg." in name}
    assert mcwg_grads, "the network has no MCWG parameters"
    for name, grad in mcwg_grads.items():
        assert grad is not None and grad.abs().sum() > 0, f"{name} got no gradient"


def test_batch_of_three_equals_three_batches_of_one():
    net = small_net().eval()
    lst, guidance = torch.randn(3, 1, 6, 8), torch.randn(3, 3, 24, 32)
    with torch.no_grad():
        batched = net(lst, guidance)
        single = torch.cat([net(lst[i : i + 1], guidance[i : i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1])


def test_pyramid_pooling_matches_adaptive_average_pooling_on_uneven_tiles():
    x = torch.randn(2, 4, 37, 23)
    expected = torch.cat(
        [F.adaptive_avg_pool2d(x, b).reshape(2, 4, -1) for b in PYRAMID_BINS], dim=2
    ).transpose(1, 2)
    assert torch.allclose(pyramid_tokens(x), expected, atol=1e-5)


def test_unsupported_scale_is_refused():
    with pytest.raises(ValueError, match="scale must be one of"):
        MoCoLSKNet(MoCoLSKConfig(scale=3))


def test_multiply_adds_count_the_fine_grid_decoder():
    per_pixel = multiply_adds_per_output_pixel(MoCoLSKConfig(scale=4))
    decoder_convs = 32 * 9 * 160 * 160  # 32 3x3 convolutions at 160 channels on the fine grid
    assert decoder_convs < per_pixel < 2 * decoder_convs

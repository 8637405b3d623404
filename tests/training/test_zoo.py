"""The baseline zoo: parameter counts pinned to each paper's default configuration, the
common interface (coarse LST + guidance -> fine LST), and training through the same
``python -m training train`` as MoCoLSK-Net.

How the pinned counts were derived
----------------------------------
Every count is the layer-by-layer sum over the paper's default configuration (conv k x k,
cin -> cout: k*k*cin*cout + cout; PReLU(): 1; batch norm: 2 per channel), with the LST as
one channel and ten GrokLST guidance bands. Each was cross-checked by instantiating the
GrokLST toolkit's re-implementation (groklst/models/editors/) with the same arguments;
they agree exactly except where noted:

- SRCNN 9-1-5 (64, 32): 9*9*1*64 + 1*1*64*32 + 5*5*32*1 = 8,032 weights, the figure the
  paper quotes, plus 64 + 32 + 1 biases.
- EDSR baseline (16 blocks, 64 features): 1.37 M at x2 and 1.52 M at x4 as in the paper's
  table (there for RGB; one channel here).
- RCAN (10 groups x 20 RCABs, 64 features, reduction 16): ~15.6 M at x4, the paper's ~16 M.
- DJF, FDSR, SUFT, AHMF, RCAN, EDSR, SRCNN: identical to GrokLST at x2, x4 and x8.
- FDKN: the paper's network rearranges its inputs by 4x space-to-depth at every scale, so
  its count does not depend on the scale; GrokLST ties that factor to the scale, so the
  two agree at x4 (735,328 with ten bands; 703,072 with the paper's RGB guidance).
- FDSR: GrokLST's count minus the 2,304 weights of the last octave convolution's
  low-frequency outputs, which the network never uses.
- SGNet (40 features): GrokLST's count minus the layers it builds but never calls (per
  structure-guidance module the spatial-attention pair and a 3x3 "post" conv, in the
  gradient module the ``re_d`` and ``c_sab`` convs: 404,561 parameters in all). Its
  gradient branch takes every guidance band (GrokLST's only the first three), so with
  ten bands it has 7*40*9 = 2,520 weights more than GrokLST's.
"""

from __future__ import annotations

import pytest
import torch

from engine.model import count_parameters
from tests.training.conftest import write_config
from training.config import TrainConfig
from training.loop import load_checkpoint, train
from training.zoo import build, forward_padded, from_config, guided_names, names, single_image_names

GROKLST_BANDS = 10
RGB = 3


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return k * k * cin * cout + (cout if bias else 0)


def srcnn() -> int:
    return conv(1, 64, 9) + conv(64, 32, 1) + conv(32, 1, 5)


def edsr(scale: int) -> int:
    upsampler = {2: 1, 4: 2, 8: 3}[scale] * conv(64, 256, 3)
    return conv(1, 64, 3) + 16 * 2 * conv(64, 64, 3) + conv(64, 64, 3) + upsampler + conv(64, 1, 3)


def rcan(scale: int) -> int:
    rcab = 2 * conv(64, 64, 3) + conv(64, 4, 1) + conv(4, 64, 1)
    group = 20 * rcab + conv(64, 64, 3)
    upsampler = {2: 1, 4: 2, 8: 3}[scale] * conv(64, 256, 3)
    return conv(1, 64, 3) + 10 * group + conv(64, 64, 3) + upsampler + conv(64, 1, 3)


def djf(guidance: int) -> int:
    def branch(cin: int, widths: tuple[int, int, int]) -> int:
        return conv(cin, widths[0], 9) + conv(widths[0], widths[1], 1) + conv(widths[1], widths[2], 5)

    return branch(1, (96, 48, 1)) + branch(guidance, (96, 48, 1)) + branch(2, (64, 32, 1))


def fdkn(guidance: int) -> int:
    def branch(cin: int) -> int:
        convs = (
            conv(cin, 32, 3)
            + conv(32, 32, 3)
            + conv(32, 64, 3)
            + conv(64, 64, 3)
            + conv(64, 128, 3)
            + conv(128, 128, 3)
        )
        batch_norms = 2 * (32 + 64 + 128)
        return convs + batch_norms + conv(128, 9 * 16, 1) + conv(128, 2 * 9 * 16, 1)

    return branch(16 * guidance) + branch(16)


PINNED = {
    # (name, scale, guidance bands): parameters
    ("srcnn", 2, GROKLST_BANDS): srcnn(),
    ("srcnn", 4, GROKLST_BANDS): 8_129,
    ("srcnn", 8, GROKLST_BANDS): srcnn(),
    ("edsr", 2, GROKLST_BANDS): edsr(2),
    ("edsr", 4, GROKLST_BANDS): 1_515_265,
    ("edsr", 8, GROKLST_BANDS): edsr(8),
    ("rcan", 2, GROKLST_BANDS): rcan(2),
    ("rcan", 4, GROKLST_BANDS): 15_590_049,
    ("rcan", 8, GROKLST_BANDS): rcan(8),
    ("djf", 4, GROKLST_BANDS): djf(GROKLST_BANDS),
    ("djf", 4, RGB): 56_323,
    ("fdkn", 2, GROKLST_BANDS): fdkn(GROKLST_BANDS),
    ("fdkn", 4, GROKLST_BANDS): 735_328,
    ("fdkn", 4, RGB): 703_072,
    ("fdsr", 4, GROKLST_BANDS): 642_577 - 2_304,
    ("fdsr", 4, RGB): 610_321 - 2_304,
    ("suft", 2, GROKLST_BANDS): 15_734_938,
    ("suft", 4, GROKLST_BANDS): 22_014_106,
    ("suft", 8, GROKLST_BANDS): 39_954_586,
    ("suft", 4, RGB): 22_012_090,
    ("sgnet", 2, GROKLST_BANDS): 20_227_937 - 404_561 + 2_520,
    ("sgnet", 4, GROKLST_BANDS): 25_335_221 - 404_561 + 2_520,
    ("sgnet", 8, GROKLST_BANDS): 39_927_461 - 404_561 + 2_520,
    ("sgnet", 4, RGB): 25_332_701 - 404_561,
    ("ahmf", 2, GROKLST_BANDS): 2_509_864,
    ("ahmf", 4, GROKLST_BANDS): 2_542_954,
    ("ahmf", 8, GROKLST_BANDS): 3_362_476,
    ("ahmf", 4, RGB): 2_538_922,
}


@pytest.mark.parametrize(("name", "scale", "bands"), sorted(PINNED))
def test_parameter_count_matches_the_papers_default_configuration(name, scale, bands):
    assert count_parameters(build(name, scale, bands)) == PINNED[(name, scale, bands)]


def test_the_zoo_holds_the_six_guided_and_three_single_image_baselines():
    assert set(guided_names()) == {"djf", "fdkn", "fdsr", "suft", "sgnet", "ahmf"}
    assert set(single_image_names()) == {"srcnn", "edsr", "rcan"}


# Narrower, shallower variants that run every code path of each network in a fraction of the time.
LIGHT = {
    "rcan": {"num_groups": 1, "blocks_per_group": 2},
    "edsr": {"num_blocks": 2},
    "suft": {"num_feats": 16, "blocks_per_group": 1, "decoder_blocks": 1},
    "sgnet": {"num_feats": 16, "blocks_per_group": 1, "decoder_blocks": 1},
    "ahmf": {"num_feats": 16},
}


@pytest.mark.parametrize("name", names())
@pytest.mark.parametrize("scale", [2, 8])
def test_every_network_maps_coarse_lst_and_guidance_to_the_fine_grid(name, scale):
    torch.manual_seed(0)
    model = build(name, scale, 4, **LIGHT.get(name, {})).eval()
    fine = 16 if scale == 2 else 32
    with torch.no_grad():
        out = model(torch.randn(2, 1, fine // scale, fine // scale), torch.randn(2, 4, fine, fine))
    assert out.shape == (2, 1, fine, fine) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["fdkn", "fdsr", "ahmf"])
def test_any_tile_size_runs_through_edge_padding(name):
    model = build(name, 4, 3).eval()
    with torch.no_grad():
        out = forward_padded(model, torch.randn(1, 1, 3, 5), torch.randn(1, 3, 12, 20))
    assert out.shape == (1, 1, 12, 20)


def test_mismatched_guidance_size_is_refused():
    with pytest.raises(ValueError, match="not 4 x the LST"):
        forward_padded(build("srcnn", 4, 3), torch.randn(1, 1, 3, 5), torch.randn(1, 3, 12, 12))


def test_guided_networks_respond_to_the_guidance_and_single_image_ones_ignore_it():
    lst, guidance = torch.randn(1, 1, 8, 8), torch.randn(1, 3, 16, 16)
    for name in ("djf", "fdsr", "srcnn", "edsr"):
        torch.manual_seed(0)
        model = build(name, 2, 3).eval()
        with torch.no_grad():
            changed = not torch.allclose(model(lst, guidance), model(lst, guidance + 1.0))
        assert changed == (name in guided_names()), name


def test_unknown_architecture_and_options_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="srcnn"):
        build("vdsr", 4)
    with pytest.raises(ValueError, match="bad model options"):
        build("edsr", 4, num_blocks=4, depth=3)
    with pytest.raises(ValueError, match="architecture must be"):
        TrainConfig.from_dict({"name": "x", "scale": 4, "data": {}, "architecture": "vdsr"})


def test_zoo_network_trains_through_the_training_loop_and_rebuilds_from_its_checkpoint(tmp_path, scene_tifs):
    config = write_config(tmp_path, *scene_tifs, name="srcnn-x4", architecture="srcnn", model={})
    last = train(TrainConfig.load(config), tmp_path / "run", progress=False, log=lambda m: None)
    state = load_checkpoint(last)
    assert state["model_config"]["architecture"] == "srcnn" and state["step"] == 4
    model = from_config(state["model_config"])
    model.load_state_dict(state["model"])
    assert count_parameters(model) == srcnn()

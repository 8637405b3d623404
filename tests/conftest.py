"""Fixtures shared by the whole suite: real model packages exported from small networks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
# The real Landsat 5 TM sample bundled with the plugin (an unchanged copy of the team's
# shared sample, see its SOURCE.md), so that a fresh clone tests without anything beside it.
LANDSAT5 = REPO / "resources" / "sample" / "landsat5-tm-1988"
SAMPLE_MTL = LANDSAT5 / "LT52240631988227CUB02_MTL.txt"

TINY_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")


def make_tiny_package(
    out_dir: Path, scale: int = 4, band_names=TINY_BANDS, name: str | None = None, seed: int = 0
):
    """Export a randomly initialised, small MoCoLSK-Net as a real package (ONNX + card)."""
    import torch

    from engine.card import BandSpec
    from engine.export import export_package
    from engine.model import MoCoLSKConfig, MoCoLSKNet

    torch.manual_seed(seed)
    config = MoCoLSKConfig(
        scale=scale,
        guidance_channels=len(band_names),
        num_feats=8,
        num_stages=1,
        blocks_per_group=1,
        reduction=4,
    )
    bands = [BandSpec(n, "reflectance", 0.15, 0.05, f"{n} reflectance") for n in band_names]
    return export_package(
        MoCoLSKNet(config),
        out_dir,
        name=name or f"tiny_x{scale}",
        version="0.0.1",
        guidance_bands=bands,
        lst_mean_kelvin=295.0,
        lst_std_kelvin=5.0,
        training={"data": "none: random initialisation, for tests only"},
    )


@pytest.fixture(scope="session")
def tiny_package_x4(tmp_path_factory):
    return make_tiny_package(tmp_path_factory.mktemp("tiny_x4"), scale=4)

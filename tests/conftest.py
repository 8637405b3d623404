"""Fixtures shared by the whole suite: real model packages exported from small networks."""

from __future__ import annotations

import os

# Before anything imports Qt (pytest-qgis also selects offscreen, see pyproject.toml).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# The real Landsat 5 TM sample bundled with the plugin (an unchanged copy of the team's
# shared sample, see its SOURCE.md), so that a fresh clone tests without anything beside it.
LANDSAT5 = REPO / "resources" / "sample" / "landsat5-tm-1988"
SAMPLE_MTL = LANDSAT5 / "LT52240631988227CUB02_MTL.txt"

TINY_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")

# The `qgis` marker: every test under these folders, and any test using a pytest-qgis fixture.
QGIS_FOLDERS = {"plugin", "newcomer"}
# (pytest-qgis's autouse fixtures pull qgis_app, qgis_iface and qgis_parent into every test,
# so only fixtures that nothing requests implicitly tell a QGIS test.)
QGIS_FIXTURES = {"qgis_processing", "qgis_canvas", "qgis_new_project", "qgis_bot"}
# The `slow` marker: modules whose tests build the plugin zip, train or score networks on whole
# scenes, or run QGIS processes (tens of seconds each on two CPU cores, measured with --durations).
SLOW_MODULES = {
    "test_packaging.py",
    "test_demo.py",
    "test_benchmark.py",
    "test_finetune.py",
    "test_bundled_cards.py",
    "test_export_evaluate.py",
}
# and single tests that run the paper-sized network on full tiles.
SLOW_TESTS = {"test_onnx_and_torch_agree_within_a_millikelvin_on_real_sized_tiles"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = item.path.relative_to(REPO / "tests").parts[0]
        if folder in QGIS_FOLDERS or QGIS_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.qgis)
        if item.path.name in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("gpu") and not _cuda_present():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


def _cuda_present() -> bool:
    import torch

    return torch.cuda.is_available()


def make_tiny_package(
    out_dir: Path, scale: int = 4, band_names=TINY_BANDS, name: str | None = None, seed: int = 0
):
    """Export a randomly initialised, small MoCoLSK-Net as a real package (ONNX + card)."""
    import torch

    from engine.card import BandSpec
    from engine.model import MoCoLSKConfig, MoCoLSKNet
    from training.packaging import export_package

    torch.manual_seed(seed)
    config = MoCoLSKConfig(
        scale=scale,
        guidance_channels=len(band_names),
        num_feats=8,
        num_stages=1,
        blocks_per_group=1,
        reduction=4,
    )
    bands = [
        BandSpec(n, "index (unitless)", 0.0, 0.5, f"{n} index")
        if n.startswith("nd")
        else BandSpec(n, "reflectance", 0.15, 0.05, f"{n} reflectance")
        for n in band_names
    ]
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

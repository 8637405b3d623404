"""The bundled packages' cards tell the truth: `python -m training evaluate` reproduces their
held-out metrics within 1e-3 K from the configs in the repository, they were trained on none of
their test scenes, and they recommend the method most accurate on the scenes they never saw."""

from __future__ import annotations

import json

import pytest

from engine.package import bundled_packages, load_package
from tests.conftest import REPO
from training.__main__ import main

CONFIGS = REPO / "training" / "configs"
PACKAGES = {load_package(path).card.scale: load_package(path) for path in bundled_packages().values()}


@pytest.mark.parametrize("scale", sorted(PACKAGES))
def test_card_was_trained_on_the_repository_config_without_its_test_scenes(scale):
    card = PACKAGES[scale].card
    config = json.loads((CONFIGS / f"landsat-x{scale}-light.json").read_text())
    assert card.training["config"]["data"] == config["data"]
    test_scenes = {s["name"] for s in config["data"]["scenes"] if s.get("role") == "test"}
    assert len(test_scenes) >= 3
    assert set(card.metrics["held_out_scenes"]["native"]["scenes"]) == test_scenes
    assert all(f["native_pixel_m"] and f["quantisation_k"] for f in card.metrics["test_scenes"])


@pytest.mark.parametrize("scale", sorted(PACKAGES))
def test_evaluate_reproduces_the_cards_held_out_metrics(scale, tmp_path):
    package = PACKAGES[scale]
    out = tmp_path / "metrics.json"
    assert (
        main(
            [
                "evaluate",
                package.name,
                str(CONFIGS / f"landsat-x{scale}-light.json"),
                "--json",
                str(out),
                "--threads",
                "2",
            ]
        )
        == 0
    )
    measured = json.loads(out.read_text())
    for protocol, summary in package.card.metrics["held_out_scenes"].items():
        for method, values in summary["methods"].items():
            assert measured["held_out_scenes"][protocol]["methods"][method]["rmse_k"] == pytest.approx(
                values["rmse_k"], abs=1e-3
            )
        for scene, values in summary["per_scene"].items():
            got = measured["held_out_scenes"][protocol]["per_scene"][scene]["methods"]["mocolsk"]["rmse_k"]
            assert got == pytest.approx(values["methods"]["mocolsk"]["rmse_k"], abs=1e-3)
    unseen = package.card.metrics["unseen_scenes"]["native"]["methods"]
    best = min((m for m in unseen if m != "auto"), key=lambda m: unseen[m]["rmse_k"])
    assert package.card.metrics["recommended_method"] == best == "blend"

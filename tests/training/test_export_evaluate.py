"""From a checkpoint to a package with held-out metrics, and the evaluate command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.inference import Downscaler
from engine.package import load_package
from tests.training.conftest import write_config
from training.__main__ import main
from training.config import TrainConfig
from training.datasets import Normalizer, sample_from_fine
from training.evaluate import predict_samples
from training.loop import load_checkpoint, train
from training.release import model_from_checkpoint
from training.sources import build_training_data

METHODS = {"mocolsk", "bicubic", "tsharp", "dms"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, scene_tifs, test_scene_tifs):
    folder = tmp_path_factory.mktemp("export")
    config = write_config(
        folder, *scene_tifs, *test_scene_tifs, lst_anchor="coarse_mean", views=["ingrid", "native"]
    )
    run = folder / "run"
    train(TrainConfig.load(config), run, progress=False, log=lambda m: None)
    assert main(["export", str(run / "best.pt"), "--out", str(folder / "models"), "--name", "tiny-x4"]) == 0
    return config, run, load_package(folder / "models" / "tiny-x4.json")


def test_exported_card_states_both_protocols_with_intervals_on_whole_held_out_scenes(exported):
    _, run, package = exported
    card = package.card
    assert card.training["batch_size"] == 2 and card.lst_anchor == "coarse_mean"
    metrics = card.metrics
    assert set(metrics["held_out_scenes"]) == {"ingrid", "native"}
    for summary in metrics["held_out_scenes"].values():
        assert set(summary["methods"]) == METHODS and summary["scenes"] == ["held_out"]
        for method in summary["methods"].values():
            assert method["ci95_k"][0] <= method["rmse_k"] <= method["ci95_k"][1]
        low, high = summary["difference_to_best_classic_k"]["ci95_k"]
        assert low <= summary["difference_to_best_classic_k"]["value"] <= high
    assert metrics["test_scenes"][0]["native_pixel_m"] == 120
    assert metrics["recommended_method"] in METHODS
    state = load_checkpoint(run / "best.pt")
    assert [b.mean for b in card.guidance_bands] == pytest.approx(state["normalizer"]["guidance_mean"])


def test_exported_onnx_package_predicts_like_the_checkpoint_far_from_its_training_temperatures(exported):
    config, run, package = exported
    state = load_checkpoint(run / "best.pt")
    data = build_training_data(TrainConfig.load(config), run)
    scene = data.test_scenes[0]
    sample = sample_from_fine("t", scene.lst_kelvin + np.float32(60.0), scene.guidance, 4)
    expected = predict_samples(
        model_from_checkpoint(state), [sample], Normalizer.from_dict(state["normalizer"])
    )[0]
    got = Downscaler(package, backend="onnxruntime", device="cpu", threads=1).predict_kelvin(
        sample.coarse_kelvin, sample.guidance
    )
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert abs(float(np.mean(got)) - float(np.mean(sample.coarse_kelvin))) < 0.5


def test_evaluate_prints_both_protocols_and_reproduces_the_card(exported, tmp_path, capsys):
    config, _, package = exported
    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(package.card_path), str(config), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "**ingrid**" in printed
        and "**native**" in printed
        and "| mocolsk |" in printed
        and "95 % interval" in printed
    )
    measured = json.loads(out.read_text())["held_out_scenes"]
    for protocol, summary in package.card.metrics["held_out_scenes"].items():
        for method in METHODS:
            assert measured[protocol]["methods"][method]["rmse_k"] == pytest.approx(
                summary["methods"][method]["rmse_k"], abs=1e-3
            )


def test_evaluate_record_rewrites_the_card_and_keeps_the_package_valid(exported, tmp_path):
    config, _, package = exported
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in (package.card_path, package.onnx_path, package.torch_weights_path):
        (copy / path.name).write_bytes(path.read_bytes())
    card = json.loads((copy / "tiny-x4.json").read_text())
    card["metrics"] = {}
    (copy / "tiny-x4.json").write_text(json.dumps(card))
    assert main(["evaluate", str(copy / "tiny-x4.json"), str(config), "--record"]) == 0
    assert (
        set(load_package(copy / "tiny-x4.json").card.metrics["held_out_scenes"]["native"]["methods"])
        == METHODS
    )


def test_evaluate_refuses_data_of_another_scale(exported, tmp_path, scene_tifs, capsys):
    _, _, package = exported
    other = write_config(tmp_path, *scene_tifs, scale=2)
    assert main(["evaluate", str(package.card_path), str(other)]) == 2
    assert "the package is x4 but the data config" in capsys.readouterr().err


def test_export_refuses_a_file_that_is_not_a_training_checkpoint(tmp_path, capsys):
    bogus = tmp_path / "bogus.pt"
    torch.save({"weights": torch.zeros(2)}, bogus)
    assert main(["export", str(bogus), "--out", str(tmp_path / "models")]) == 2
    assert "not a MoCoLSK training checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()

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
from training.datasets import Normalizer
from training.evaluate import predict_samples
from training.export import model_from_checkpoint
from training.loop import load_checkpoint, train
from training.sources import build_training_data


@pytest.fixture(scope="module")
def exported(tmp_path_factory, scene_tifs):
    folder = tmp_path_factory.mktemp("export")
    config = write_config(folder, *scene_tifs)
    run = folder / "run"
    train(TrainConfig.load(config), run, progress=False, log=lambda m: None)
    assert main(["export", str(run / "last.pt"), "--out", str(folder / "models"), "--name", "tiny-x4"]) == 0
    return config, run, load_package(folder / "models" / "tiny-x4.json")


def test_exported_card_states_data_command_iterations_and_held_out_metrics(exported):
    _, run, package = exported
    card = package.card
    assert card.training["iterations"] == 4 and card.training["batch_size"] == 2
    assert card.training["command"] == ""
    assert card.training["held_out"] and all(b.startswith("lst[") for b in card.training["held_out"])
    assert set(card.metrics["held_out"]) == {"mocolsk", "bicubic", "tsharp", "dms"}
    assert all(m["pixels"] == card.metrics["held_out"]["mocolsk"]["pixels"] for m in card.metrics["held_out"].values())
    state = load_checkpoint(run / "last.pt")
    assert [b.mean for b in card.guidance_bands] == pytest.approx(state["normalizer"]["guidance_mean"])
    assert [b.units for b in card.guidance_bands] == ["reflectance"] * 6 + ["index"] * 2


def test_exported_onnx_package_predicts_like_the_checkpoint(exported):
    config, run, package = exported
    state = load_checkpoint(run / "last.pt")
    data = build_training_data(TrainConfig.load(config), run)
    sample = data.test[0]
    expected = predict_samples(model_from_checkpoint(state), [sample], Normalizer.from_dict(state["normalizer"]))[0]
    got = Downscaler(package, backend="onnxruntime", device="cpu", threads=1).predict_kelvin(sample.coarse_kelvin, sample.guidance)
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_evaluate_prints_the_table_and_reproduces_the_card_on_the_training_split(exported, tmp_path, capsys):
    config, run, package = exported
    out = tmp_path / "table.json"
    assert main(["evaluate", str(package.card_path), str(config), "--split", str(run / "split.json"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| mocolsk |" in printed and "| bicubic |" in printed and "| dms |" in printed
    table = json.loads(out.read_text())
    assert table["mocolsk"]["rmse_k"] == pytest.approx(package.card.metrics["held_out"]["mocolsk"]["rmse_k"], abs=1e-3)
    assert table["bicubic"] == pytest.approx(package.card.metrics["held_out"]["bicubic"])


def test_evaluate_record_rewrites_the_card_and_keeps_the_package_valid(exported, tmp_path):
    config, run, package = exported
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in (package.card_path, package.onnx_path, package.torch_weights_path):
        (copy / path.name).write_bytes(path.read_bytes())
    card = json.loads((copy / "tiny-x4.json").read_text())
    card["metrics"] = {}
    (copy / "tiny-x4.json").write_text(json.dumps(card))
    assert main(["evaluate", str(copy / "tiny-x4.json"), str(config), "--split", str(run / "split.json"), "--record"]) == 0
    assert set(load_package(copy / "tiny-x4.json").card.metrics["held_out"]) == {"mocolsk", "bicubic", "tsharp", "dms"}


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

"""The training loop: checkpoints, exact resume, validation logging, config errors, and
data-parallel training with two Gloo processes on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO
from training.config import TrainConfig
from training.loop import load_checkpoint, train


def log_records(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_training_writes_checkpoints_split_and_validation_metrics(tiny_config, tmp_path):
    run = tmp_path / "run"
    last = train(TrainConfig.load(tiny_config), run, progress=False, log=lambda m: None)
    state = load_checkpoint(last)
    assert state["step"] == 4 and (run / "step-2.pt").is_file() and (run / "split.json").is_file()
    assert state["normalizer"]["lst_std_kelvin"] > 0 and [b["name"] for b in state["bands"]][-2:] == [
        "ndvi",
        "ndwi",
    ]
    records = log_records(run)
    assert [r["step"] for r in records] == [2, 4]
    assert set(records[-1]["val"]) >= {"rmse_k", "mae_k", "bias_k", "cc", "rsd_k", "ssim"}
    assert 0.0 < records[-1]["val"]["rmse_k"] < 5.0


def test_resumed_training_ends_where_an_uninterrupted_run_ends(tiny_config, tmp_path):
    config = TrainConfig.load(tiny_config)
    straight = load_checkpoint(train(config, tmp_path / "a", progress=False, log=lambda m: None))
    half = TrainConfig.from_dict({**config.to_dict(), "iterations": 2}, config.base_dir)
    train(half, tmp_path / "b", progress=False, log=lambda m: None)
    messages = []
    resumed = load_checkpoint(train(config, tmp_path / "b", progress=False, log=messages.append))
    assert any("resumed" in m and "step 2" in m for m in messages)
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=1e-6)


def test_config_with_a_patch_not_multiple_of_the_scale_is_refused(tiny_config):
    values = json.loads(tiny_config.read_text())
    with pytest.raises(ValueError, match="multiple of the scale"):
        TrainConfig.from_dict({**values, "patch_px": 30})


def test_config_may_not_set_derived_hyperparameters(tiny_config):
    values = json.loads(tiny_config.read_text())
    with pytest.raises(ValueError, match="guidance_channels from the data"):
        TrainConfig.from_dict({**values, "model": {"guidance_channels": 3}})


def test_two_gloo_processes_train_identical_replicas(tiny_config, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "training",
            "train",
            str(tiny_config),
            "--run-dir",
            str(run),
            "--quiet",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stdout
    digests = log_records(run)[-1]["replica_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    single = log_records(run)[0]
    assert single["step"] == 2 and "val" in single


def test_groklst_layout_trains_through_the_same_loop(tmp_path):
    import numpy as np

    from tests.training.test_data import write_groklst

    write_groklst(tmp_path / "groklst", 4, 4, np.random.default_rng(0))
    config = TrainConfig.from_dict(
        {
            "name": "tiny-groklst",
            "scale": 4,
            "model": {"num_feats": 8, "num_stages": 1, "blocks_per_group": 1, "reduction": 4},
            "data": {"kind": "groklst", "root": "groklst"},
            "patch_px": None,
            "batch_size": 2,
            "iterations": 2,
            "val_interval": 2,
            "checkpoint_interval": 2,
            "threads": 1,
            "device": "cpu",
        },
        tmp_path,
    )
    state = load_checkpoint(train(config, tmp_path / "run", progress=False, log=lambda m: None))
    assert [b["name"] for b in state["bands"]][:2] == ["dem", "deepblue"]
    assert state["normalizer"]["lst_std_kelvin"] == 14.68
    assert log_records(tmp_path / "run")[-1]["val"]["pixels"] == 16 * 16 - 1


def test_training_from_a_package_starts_from_its_weights_and_keeps_its_normalisation(tiny_config, tmp_path):
    from training.release import release_checkpoint

    config = TrainConfig.load(tiny_config)
    parent = release_checkpoint(
        train(config, tmp_path / "parent", progress=False, log=lambda m: None),
        tmp_path / "packages",
        evaluate=False,
        log=lambda m: None,
    )
    child = TrainConfig.from_dict(
        {
            **config.to_dict(),
            "iterations": 2,
            "lr": 0.0,
            "min_lr": 0.0,
            "init_package": str(parent.card_path),
        },
        config.base_dir,
    )
    state = load_checkpoint(train(child, tmp_path / "child", progress=False, log=lambda m: None))
    assert state["normalizer"]["lst_std_kelvin"] == parent.card.lst_std_kelvin
    assert state["normalizer"]["guidance_mean"] == [b.mean for b in parent.card.guidance_bands]
    weights = torch.load(parent.torch_weights_path, map_location="cpu", weights_only=True)
    for key, value in weights.items():
        torch.testing.assert_close(state["model"][key], value, rtol=0, atol=1e-6)

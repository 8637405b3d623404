"""The evaluation protocol: native-resolution views, conservation for every method, block
errors, and bootstrap intervals over scenes and blocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from engine.detail import detail_bounds
from training.datasets import sample_from_fine
from training.evaluate import classic_predictors, protocol_report
from training.pipeline_runs import PipelineMethod, write_sample
from training.protocol import (
    SceneErrors,
    block_errors,
    conserved,
    evaluate_scene,
    native_factor,
    protocol_view,
    summarise,
    truth_description,
)
from training.scenes import area_average

REPO = Path(__file__).resolve().parents[2]


def test_native_view_averages_lst_and_guidance_to_the_sensors_pixel(l5_scene):
    view = protocol_view(l5_scene, "native")
    assert native_factor(l5_scene) == 4 and view.pixel_size_m == 120.0
    np.testing.assert_allclose(view.lst_kelvin, area_average(l5_scene.lst_kelvin, 4), rtol=1e-6)
    np.testing.assert_allclose(view.guidance, area_average(l5_scene.guidance, 4), rtol=1e-6)
    assert protocol_view(l5_scene, "ingrid") is l5_scene


def test_truth_description_names_the_grid_native_pixel_and_quantisation(l5_scene):
    assert "30 m (as delivered; sensed at 120 m, 0.432 K per DN)" in truth_description(l5_scene, "ingrid")
    assert "120 m (native-pixel mean" in truth_description(l5_scene, "native")


def test_every_prediction_is_conserved_to_the_coarse_input(l5_scene):
    sample = sample_from_fine("s", l5_scene.lst_kelvin[:64, :64], l5_scene.guidance[:, :64, :64], 4)
    wild = np.random.default_rng(0).normal(300.0, 5.0, (64, 64)).astype(np.float32)
    np.testing.assert_allclose(area_average(conserved(wild, sample, 4), 4), sample.coarse_kelvin, atol=1e-3)


def test_a_peer_network_is_bounded_to_the_local_coarse_range_as_the_plugin_bounds_its_own(l5_scene):
    sample = sample_from_fine("s", l5_scene.lst_kelvin[:64, :64], l5_scene.guidance[:, :64, :64], 4)
    wild = np.random.default_rng(0).normal(300.0, 30.0, (64, 64)).astype(np.float32)
    low, high = detail_bounds(sample.coarse_kelvin, np.isfinite(sample.coarse_kelvin), 4)
    bounded = conserved(wild, sample, 4, bound_detail=True)
    assert ((bounded >= low - 1e-3) & (bounded <= high + 1e-3)).all()
    assert not ((conserved(wild, sample, 4) >= low) & (conserved(wild, sample, 4) <= high)).all()


def test_block_errors_partition_the_scored_pixels():
    rng = np.random.default_rng(1)
    fine = (290 + rng.normal(0, 1, (40, 36))).astype(np.float32)
    fine[:5, :5] = np.nan
    sample = sample_from_fine("s", fine, np.zeros((1, 40, 36), np.float32), 4)
    prediction = (fine + rng.normal(0, 0.5, fine.shape)).astype(np.float32)
    sse, count = block_errors(prediction, sample, 4, 2)
    assert count.sum() == sample.mask.sum() and sse.size == 5 * 5
    expected = np.sum((prediction[sample.mask].astype(np.float64) - fine[sample.mask]) ** 2)
    assert sse.sum() == pytest.approx(expected, rel=1e-9)


def errors(name: str, blocks: int, rmse_a: float, rmse_b: float, seed: int) -> SceneErrors:
    rng = np.random.default_rng(seed)
    count = np.full(blocks, 64.0)
    noise = rng.uniform(0.5, 1.5, blocks)
    return SceneErrors(
        name,
        "ingrid",
        "t",
        4,
        {"mocolsk": count * rmse_a**2 * noise, "bicubic": count * rmse_b**2 * noise},
        count,
    )


def test_intervals_contain_the_pooled_rmse_and_a_clear_gain_excludes_zero():
    scenes = [errors("a", 40, 0.5, 1.0, 0), errors("b", 30, 0.6, 1.1, 1), errors("c", 50, 0.4, 0.9, 2)]
    summary = summarise(scenes, ["mocolsk", "bicubic"], ["bicubic"])
    for method in ("mocolsk", "bicubic"):
        low, high = summary["methods"][method]["ci95_k"]
        assert low < summary["methods"][method]["rmse_k"] < high
    low, high = summary["difference_to_best_classic_k"]["ci95_k"]
    assert high < 0 and summary["best_classic"] == "bicubic"
    assert set(summary["per_scene"]) == {"a", "b", "c"}


def test_a_tie_gives_an_interval_of_the_difference_that_spans_zero():
    scenes = [errors("a", 40, 1.0, 1.0, 0), errors("b", 30, 1.0, 1.0, 3)]
    scenes[0].sse["mocolsk"] = scenes[0].sse["mocolsk"] * np.random.default_rng(5).uniform(0.8, 1.2, 40)
    low, high = summarise(scenes, ["mocolsk", "bicubic"], ["bicubic"])["difference_to_best_classic_k"][
        "ci95_k"
    ]
    assert low < 0 < high


def test_one_scene_cannot_make_a_narrow_interval_when_scenes_disagree():
    agree = [errors("a", 40, 0.5, 1.0, 0), errors("b", 40, 0.5, 1.0, 1)]
    disagree = [errors("a", 40, 0.5, 1.0, 0), errors("b", 40, 1.5, 1.0, 1)]
    width = [
        np.ptp(summarise(s, ["mocolsk", "bicubic"], ["bicubic"])["difference_to_best_classic_k"]["ci95_k"])
        for s in (agree, disagree)
    ]
    assert width[1] > 3 * width[0]


def test_protocol_report_scores_every_method_on_both_protocols(l5_scene):
    scene = l5_scene
    predictors = classic_predictors(scene.band_names, 4)
    report = protocol_report([scene], 4, predictors)
    assert set(report) == {"ingrid", "native"}
    assert set(report["native"]["methods"]) == {"bicubic", "tsharp", "dms"}
    ingrid = evaluate_scene(scene, "ingrid", 4, {"bicubic": predictors["bicubic"]})
    assert report["ingrid"]["methods"]["bicubic"]["rmse_k"] == pytest.approx(ingrid.rmse("bicubic"), rel=1e-9)
    assert report["native"]["pixels"] < report["ingrid"]["pixels"] / 10


@pytest.mark.parametrize("method", ["bicubic", "mocolsk"])
def test_protocol_scores_exactly_what_the_engine_command_line_writes(l5_scene, tmp_path, method):
    """The protocol runs the plugin's own pipeline: its score of a scene equals the score of
    the output of ``python -m engine downscale`` on the same inputs."""
    errors = evaluate_scene(l5_scene, "native", 4, {method: PipelineMethod(method)})
    view = protocol_view(l5_scene, "native")
    sample = sample_from_fine(view.name, view.lst_kelvin, view.guidance, 4)
    lst, guidance = write_sample(sample, view.band_names, view.pixel_size_m, tmp_path)
    out = tmp_path / "cli.tif"
    command = [sys.executable, "-m", "engine", "downscale", "--lst", str(lst), "--guidance", str(guidance)]
    command += ["--method", method, "--lst-units", "kelvin", "--out", str(out), "--quiet"]
    subprocess.run(command, check=True, cwd=REPO)
    written = gdal.Open(str(out)).ReadAsArray().astype(np.float64)
    mask = sample.mask
    cli_rmse = float(np.sqrt(np.mean((written[mask] - sample.fine_kelvin[mask]) ** 2)))
    assert errors.rmse(method) == pytest.approx(cli_rmse, abs=1e-3)
    assert errors.count.sum() == mask.sum()


def test_the_in_grid_view_gives_the_pipeline_the_band_as_delivered_like_the_command_line(l5_scene, tmp_path):
    """In-grid, the pipeline reads the 30 m band itself and averages it onto the coarse grid, as for
    a user's ST_B10 given with its native pixel: the protocol scores what the command line writes."""
    errors = evaluate_scene(l5_scene, "ingrid", 4, {"bicubic": PipelineMethod("bicubic")})
    sample = sample_from_fine(l5_scene.name, l5_scene.lst_kelvin, l5_scene.guidance, 4)
    lst, guidance = write_sample(sample, l5_scene.band_names, l5_scene.pixel_size_m, tmp_path, delivered=True)
    out = tmp_path / "cli.tif"
    command = [sys.executable, "-m", "engine", "downscale", "--lst", str(lst), "--guidance", str(guidance)]
    command += ["--method", "bicubic", "--lst-units", "kelvin", "--native-pixel-m", "120", "--out", str(out)]
    completed = subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True)
    assert "averaged onto the coarse grid" in completed.stdout + completed.stderr
    written = gdal.Open(str(out)).ReadAsArray().astype(np.float64)
    mask = sample.mask
    cli_rmse = float(np.sqrt(np.mean((written[mask] - sample.fine_kelvin[mask]) ** 2)))
    assert errors.rmse("bicubic") == pytest.approx(cli_rmse, abs=1e-3)

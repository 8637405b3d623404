"""The accuracy benchmark on a 96 x 96 px crop of the real Landsat 5 scene: every method
is scored on the same held-out pixels, untrained zoo networks are listed as such, the
Markdown table marks the best values, and the Figure-5-style PNG is written."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from osgeo import gdal

from tests.conftest import make_tiny_package
from tests.training.conftest import write_config
from training.bench_scene import mirrored, run_one, write_scene
from training.benchmark import format_markdown, main, pooled_scores, run_benchmark, write_figure
from training.config import TrainConfig
from training.datasets import Sample
from training.evaluate import compare_methods
from training.loop import train
from training.zoo import names


@pytest.fixture(scope="module")
def benchmark(scene_tifs, l5_scene, tmp_path_factory):
    """The benchmark at x4 with a tiny MoCoLSK package and an SRCNN trained for four steps,
    run as where pyDMS is not installed (whether or not it is installed here)."""
    folder = tmp_path_factory.mktemp("benchmark")
    config_path = write_config(folder, *scene_tifs, name="srcnn-x4", architecture="srcnn", model={})
    train(TrainConfig.load(config_path), folder / "zoo" / "srcnn-x4", progress=False, log=lambda m: None)
    package = make_tiny_package(folder, scale=4, band_names=l5_scene.band_names)
    logged = []
    with pytest.MonkeyPatch.context() as patch:
        for module in ("pyDMS", "pyDMS.pyDMS"):
            patch.setitem(sys.modules, module, None)
        result = run_benchmark(TrainConfig.load(config_path), package, folder / "zoo", threads=1, log=logged.append)
    return result, logged, folder


def test_every_method_is_scored_on_the_same_held_out_pixels(benchmark):
    result, _, _ = benchmark
    scored = {r.name: r.scores for r in result.rows if r.scores}
    assert {"MoCoLSK (tiny_x4)", "Bicubic", "TsHARP", "DMS-style (ours, engine.classic)", "SRCNN"} <= set(scored)
    assert len({s["pixels"] for s in scored.values()}) == 1
    assert all(set(s) >= {"rmse_k", "mae_k", "bias_k", "cc", "rsd_k", "ssim", "psnr_db"} for s in scored.values())


def test_classic_scores_agree_with_the_training_evaluation(benchmark, l5_scene):
    result, _, _ = benchmark
    table = compare_methods(result.samples, l5_scene.band_names, 4, {})
    bicubic = next(r for r in result.rows if r.name == "Bicubic").scores
    assert bicubic["rmse_k"] == pytest.approx(table["bicubic"]["rmse_k"], rel=1e-9)
    assert bicubic["ssim"] == pytest.approx(table["bicubic"]["ssim"], rel=1e-9)


def test_untrained_zoo_networks_and_missing_pydms_are_listed_not_hidden(benchmark):
    result, logged, _ = benchmark
    notes = {r.name: r.note for r in result.rows}
    assert len([r for r in result.rows if r.kind.startswith("deep")]) == len(names())
    assert notes["SGNet"].startswith("not trained") and "4 iterations" in notes["SRCNN"]
    assert notes["pyDMS (peer)"].startswith("skipped") and any("pyDMS is not installed" in m for m in logged)


def test_markdown_table_marks_the_best_value_of_each_column(benchmark):
    result, _, _ = benchmark
    text = format_markdown(result, "python -m training.benchmark")
    best_rmse = min(r.scores["rmse_k"] for r in result.rows if r.scores)
    assert f"**{best_rmse:.3f}**" in text
    assert text.count("**") // 2 >= 7
    assert "| SUFT | deep, guided | – |" in text


def test_figure_shows_reconstructions_and_differences_as_png(benchmark):
    result, _, folder = benchmark
    path = folder / "figure.png"
    write_figure(result, path)
    image = gdal.Open(str(path))
    assert image.GetDriver().ShortName == "PNG" and image.RasterXSize > image.RasterYSize > 300


def test_psnr_uses_the_pooled_error_and_the_references_range():
    rng = np.random.default_rng(0)
    truth = [(290 + rng.normal(0, 2, (16, 16))).astype(np.float32) for _ in range(2)]
    preds = [t + rng.normal(0, 0.5, t.shape).astype(np.float32) for t in truth]
    samples = [Sample(f"b{i}", t[::4, ::4], np.zeros((1, 16, 16), np.float32), t) for i, t in enumerate(truth)]
    scores = pooled_scores(samples, preds)
    error = np.sqrt(np.mean((np.stack(preds).astype(np.float64) - np.stack(truth)) ** 2))
    value_range = float(np.max(truth) - np.min(truth))
    assert scores["rmse_k"] == pytest.approx(error)
    assert scores["psnr_db"] == pytest.approx(20 * np.log10(value_range / error))


def test_command_writes_tables_and_figure_for_the_real_held_out_split(tmp_path, capsys):
    assert main(["--scales", "4", "--out", str(tmp_path), "--zoo-runs", str(tmp_path / "none"), "--threads", "1"]) == 0
    table = (tmp_path / "accuracy_x4.md").read_text()
    assert "LT52240631988227CUB02" in table and "| Bicubic | classic |" in table
    assert (tmp_path / "figure5_x4.png").stat().st_size > 10_000
    assert "accuracy_x4.md" in capsys.readouterr().out


def test_scene_benchmark_mirrors_the_real_scene_and_times_the_pipeline(tmp_path):
    values = np.arange(12.0).reshape(3, 4)
    big = mirrored(values, 7)
    assert big.shape == (7, 7)
    assert np.array_equal(big[:3, :4], values) and np.array_equal(big[3:6, :4], values[::-1])
    lst, guidance, bands = write_scene(tmp_path, 64, 4)
    row = run_one(str(lst), str(guidance), "bicubic", None, "onnxruntime", "cpu", 1, 512)
    assert row["seconds"] > 0 and row["peak_rss_mib"] > 0 and "ndvi" in bands

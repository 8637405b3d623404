"""The accuracy benchmark: every method on the same whole held-out scene under both
protocols, untrained zoo networks and a missing pyDMS listed as such, the Markdown tables
with intervals, and the Figure-5-style PNG."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from osgeo import gdal

from tests.conftest import make_tiny_package
from tests.training.conftest import write_config
from training.bench.accuracy import format_markdown, main, run_benchmark, write_figure
from training.bench.scene import mirrored, run_one, write_scene
from training.config import TrainConfig
from training.loop import train
from training.zoo import names


@pytest.fixture(scope="module")
def benchmark(scene_tifs, test_scene_tifs, l5_scene, tmp_path_factory):
    """The benchmark at x4 with a tiny MoCoLSK package and an SRCNN trained for four steps, pyDMS made unimportable."""
    folder = tmp_path_factory.mktemp("benchmark")
    config_path = write_config(
        folder, *scene_tifs, *test_scene_tifs, name="srcnn-x4", architecture="srcnn", model={}
    )
    train(TrainConfig.load(config_path), folder / "zoo" / "srcnn-x4", progress=False, log=lambda m: None)
    package = make_tiny_package(folder, scale=4, band_names=l5_scene.band_names)
    logged = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "pyDMS", None)
        patch.setitem(sys.modules, "pyDMS.pyDMS", None)
        result = run_benchmark(
            TrainConfig.load(config_path), package, folder / "zoo", threads=1, log=logged.append
        )
    return result, logged, folder


def test_every_method_is_scored_on_the_same_pixels_of_the_held_out_scene(benchmark):
    result, _, _ = benchmark
    for protocol in ("ingrid", "native"):
        summary = result.report[protocol]
        assert {"mocolsk", "bicubic", "tsharp", "dms", "srcnn"} <= set(summary["methods"])
        assert summary["scenes"] == ["held_out"]
        assert all(m["ci95_k"][0] <= m["rmse_k"] <= m["ci95_k"][1] for m in summary["methods"].values())


def test_untrained_zoo_networks_and_missing_pydms_are_listed_not_hidden(benchmark):
    result, logged, _ = benchmark
    assert len([n for n in result.notes if n in names()]) == len(names())
    assert result.notes["sgnet"].startswith("not trained") and "4 iterations" in result.notes["srcnn"]
    assert result.notes["pydms"].startswith("skipped") and any("pyDMS is not installed" in m for m in logged)


def test_markdown_gives_intervals_the_difference_to_the_best_classic_and_a_recommendation(benchmark):
    result, _, _ = benchmark
    text = format_markdown(result, "python -m training.bench.accuracy")
    assert text.count("95 % interval") >= 4 and "**ingrid**" in text and "**native**" in text
    assert "MoCoLSK - " in text and "Recommended at x4" in text
    assert "SUFT (zoo): not trained" in text and "compgeolab/xlandsat" in text


def test_figure_shows_reconstructions_and_differences_as_png(benchmark):
    result, _, folder = benchmark
    path = folder / "figure.png"
    write_figure(result, path)
    image = gdal.Open(str(path))
    assert image.GetDriver().ShortName == "PNG" and image.RasterXSize > image.RasterYSize > 300


def test_command_writes_tables_and_figure_for_the_real_held_out_scenes(tmp_path, capsys):
    assert (
        main(
            ["--scales", "8", "--out", str(tmp_path), "--zoo-runs", str(tmp_path / "none"), "--threads", "1"]
        )
        == 0
    )
    table = (tmp_path / "accuracy_x8.md").read_text()
    assert "LC08-020039-florida" in table and "| Bicubic |" in table
    assert (tmp_path / "figure5_x8.png").stat().st_size > 10_000
    assert "accuracy_x8.md" in capsys.readouterr().out


def test_scene_benchmark_mirrors_the_real_scene_and_times_the_pipeline(tmp_path):
    values = np.arange(12.0).reshape(3, 4)
    big = mirrored(values, 7)
    assert big.shape == (7, 7)
    assert np.array_equal(big[:3, :4], values) and np.array_equal(big[3:6, :4], values[::-1])
    lst, guidance, bands = write_scene(tmp_path, 64, 4)
    row = run_one(str(lst), str(guidance), "bicubic", None, "onnxruntime", "cpu", 1, 512)
    assert row["seconds"] > 0 and row["peak_rss_mib"] > 0 and "ndvi" in bands


def test_the_cascade_benchmark_scores_only_wholly_valid_native_cells():
    from training.bench.cascade import bootstrap_difference, cell_errors

    truth = np.full((6, 6), 300.0, np.float32)
    truth[0, 0] = np.nan
    prediction = truth + 1.0
    prediction[np.isnan(prediction)] = 300.0
    errors = cell_errors(prediction, truth, 3)
    assert np.isnan(errors[0, 0]) and np.allclose(errors[1:, :], 1.0) and np.allclose(errors[0, 1], 1.0)
    value, low, high = bootstrap_difference(errors, errors, 1)
    assert value == low == high == 0.0

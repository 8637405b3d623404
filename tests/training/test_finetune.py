"""Self-supervised fine-tuning on one scene: validation on held-out blocks behind a guard band
against the parent and bicubic, the best step kept, no package unless it beats the parent,
no existing package replaced unless asked, nothing written on cancel or bad input; and the
Processing algorithm around it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.card import BandSpec
from engine.errors import Cancelled, InputError
from engine.metrics import rmse
from engine.model import MoCoLSKConfig, MoCoLSKNet
from engine.package import ModelPackage, load_package
from engine.pipeline import DownscaleRequest, downscale_scene
from engine.raster import read_band_values
from tests.conftest import TINY_BANDS
from tests.training.conftest import CROP_PX, write_geotiff
from training.__main__ import main as training_main
from training.datasets import Normalizer
from training.finetune import (
    finetune_on_scene,
    finetune_split,
    guard_px,
    scene_for_finetuning,
    validation_meaning,
)
from training.packaging import export_package
from training.scenes import area_average

# "Kelvin" in the LST units dropdown that Fine-tune shares with Downscale LST.
KELVIN_OPTION = 1
PARENT_HELD_OUT = {
    "held_out": {"mocolsk": {"rmse_k": 0.1}},
    "metric_notes": "the parent's own held-out blocks",
}


@pytest.fixture(scope="module")
def six_band_scene(l5_scene, tmp_path_factory) -> tuple[Path, Path]:
    """The 30 m LST as the scene's LST and the six reflectances the tiny test models take."""
    folder = tmp_path_factory.mktemp("finetune")
    lst = write_geotiff(folder / "lst.tif", l5_scene.lst_kelvin[:CROP_PX, :CROP_PX], 30.0)
    guidance = write_geotiff(
        folder / "guidance.tif", l5_scene.guidance[:6, :CROP_PX, :CROP_PX], 30.0, l5_scene.band_names[:6]
    )
    return lst, guidance


@pytest.fixture(scope="module")
def over_sharpening_parent(tmp_path_factory) -> ModelPackage:
    """A tiny random network whose residual is ten times too strong, carried by a last layer
    of small weights (the head rescaled, LeakyReLU being positively homogeneous), so that a
    few Adam steps visibly damp it; its card lists held-out metrics as a trained parent's does."""
    torch.manual_seed(0)
    network = MoCoLSKNet(
        MoCoLSKConfig(
            scale=4, guidance_channels=6, num_feats=8, num_stages=1, blocks_per_group=1, reduction=4
        )
    )
    first, last = network.projection_head[0], network.projection_head[2]
    with torch.no_grad():
        first.weight *= 1000.0
        first.bias *= 1000.0
        last.weight *= 0.01
    bands = [BandSpec(n, "reflectance", 0.15, 0.05, f"{n} reflectance") for n in TINY_BANDS]
    return export_package(
        network,
        tmp_path_factory.mktemp("parent"),
        "over_sharpening_x4",
        "1.0.0",
        bands,
        295.0,
        5.0,
        training={"data": "none: random initialisation, for tests only"},
        metrics=PARENT_HELD_OUT,
    )


class Recorder:
    """What a Processing feedback received."""

    def __init__(self):
        from qgis.core import QgsProcessingFeedback

        recorder = self

        class Feedback(QgsProcessingFeedback):
            def setProgress(self, value):  # noqa: N802
                recorder.progress.append(value)
                super().setProgress(value)

            def pushInfo(self, info):  # noqa: N802
                recorder.messages.append(info)
                super().pushInfo(info)

        self.progress: list[float] = []
        self.messages: list[str] = []
        self.feedback = Feedback()


@pytest.fixture(scope="module")
def tuned(
    qgis_processing, over_sharpening_parent, six_band_scene, tmp_path_factory
) -> tuple[ModelPackage, Recorder]:
    """The over-sharpening parent fine-tuned for three steps through the Processing algorithm,
    over a stale package of the same name that OVERWRITE allows it to replace."""
    import processing

    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    out = tmp_path_factory.mktemp("tuned") / "tuned.json"
    out.with_suffix(".onnx").write_bytes(b"stale")
    recorder = Recorder()
    result = processing.run(
        FinetuneAlgorithm(),
        {
            "MODEL_FILE": str(over_sharpening_parent.card_path),
            "LST": str(six_band_scene[0]),
            "LST_UNITS": KELVIN_OPTION,
            "GUIDANCE": str(six_band_scene[1]),
            "STEPS": 3,
            "OVERWRITE": True,
            "OUTPUT": str(out),
        },
        feedback=recorder.feedback,
    )
    assert result["OUTPUT"] == str(out)
    return load_package(out), recorder


def validation_windows(package: ModelPackage) -> list[tuple[slice, slice]]:
    windows = []
    for block in package.card.metrics["fine_tune_validation"]["blocks"]:
        r0, r1, c0, c1 = map(int, re.search(r"\[(\d+):(\d+),(\d+):(\d+)\]", block).groups())
        windows.append((slice(r0, r1), slice(c0, c1)))
    return windows


def pipeline_rmse(method: str, model, lst: np.ndarray, guidance: np.ndarray, windows, folder: Path) -> float:
    """RMSE over the validation blocks of Downscale LST itself (``downscale_scene``) run on each block's
    LST area-averaged x4 and the block's guidance, against the block's LST."""
    predictions, truths = [], []
    folder.mkdir()
    for index, (rows, cols) in enumerate(windows):
        truth = lst[rows, cols]
        coarse = write_geotiff(folder / f"coarse{index}.tif", area_average(truth, 4), 120.0)
        fine = write_geotiff(folder / f"guidance{index}.tif", guidance[:, rows, cols], 30.0, TINY_BANDS)
        request = DownscaleRequest(
            str(coarse),
            [str(fine)],
            str(folder / f"{method}{index}.tif"),
            method=method,
            model=model,
            threads=1,
        )
        predictions.append(read_band_values(downscale_scene(request).output_path)[0])
        truths.append(truth)
    return rmse(np.stack(predictions), np.stack(truths))


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_validation_blocks_are_held_out_behind_a_guard_band_of_at_least_two_pixels(l5_scene, scale):
    patch_px = max(8 * scale, 32)
    normalizer = Normalizer(295.0, 5.0, (0.0,) * 8, (1.0,) * 8)
    sampler, blocks = finetune_split(l5_scene, scale, patch_px, normalizer, seed=0)
    positions = sampler.positions[0]
    guard = guard_px(scale)
    assert guard >= 2 and len(blocks) >= 2 and len(positions) > 0
    for block in blocks:
        rows_apart = np.maximum(
            block.row - (positions[:, 0] + patch_px), positions[:, 0] - (block.row + block.rows)
        )
        cols_apart = np.maximum(
            block.col - (positions[:, 1] + patch_px), positions[:, 1] - (block.col + block.cols)
        )
        assert (np.maximum(rows_apart, cols_apart) >= guard).all()


def test_validation_scores_parent_finetuned_and_bicubic_as_downscale_lst_runs_them_and_says_what_it_measures(
    tuned, over_sharpening_parent, six_band_scene, tmp_path
):
    package, recorder = tuned
    validation = package.card.metrics["fine_tune_validation"]
    meaning = (
        "self-supervised: recovering the coarse LST from a x4 coarser copy on held-out blocks; "
        "no 30 m truth exists"
    )
    assert validation["what"] == validation_meaning(4) == meaning
    assert any(meaning in m and "Validation summary" in m for m in recorder.messages)
    windows = validation_windows(package)
    assert len(windows) >= 2
    lst, _ = read_band_values(six_band_scene[0])
    guidance = np.stack([read_band_values(six_band_scene[1], band)[0] for band in range(1, 7)])
    assert pipeline_rmse("bicubic", None, lst, guidance, windows, tmp_path / "bicubic") == pytest.approx(
        validation["bicubic"]["rmse_k"], rel=1e-5
    )
    for name, source in (("parent", over_sharpening_parent), ("fine_tuned", package)):
        assert pipeline_rmse(
            "mocolsk", str(source.card_path), lst, guidance, windows, tmp_path / name
        ) == pytest.approx(validation[name]["rmse_k"], rel=1e-3)
    assert (
        validation["parent"]["pixels"]
        == validation["fine_tuned"]["pixels"]
        == validation["bicubic"]["pixels"]
    )


def test_a_finetuned_card_drops_the_parents_held_out_metrics_for_its_validation(
    tuned, over_sharpening_parent
):
    package, _ = tuned
    assert "held_out" in over_sharpening_parent.card.metrics
    assert set(package.card.metrics) == {"fine_tune_validation", "metric_notes"}
    assert "no 30 m truth exists" in package.card.metrics["fine_tune_validation"]["what"]
    assert "dropped" in package.card.metrics["metric_notes"]
    validation = package.card.metrics["fine_tune_validation"]
    assert validation["gain_over_parent"] >= validation["min_gain"] == 0.02


def test_finetune_algorithm_writes_a_new_package_recording_its_origin(tuned, over_sharpening_parent):
    package, recorder = tuned
    assert (
        package.card.training["fine_tuned_from"]["weights_sha256"]
        == over_sharpening_parent.card.weights_sha256
    )
    assert package.card.training["fine_tuning"]["steps"] == 3 and package.card.scale == 4
    assert package.torch_weights_path.read_bytes() != over_sharpening_parent.torch_weights_path.read_bytes()
    assert max(recorder.progress) == 100.0


def test_an_existing_package_is_replaced_only_when_asked(
    tuned, tiny_package_x4, six_band_scene, tmp_path, capsys
):
    package, _ = tuned
    assert package.onnx_path.read_bytes() != b"stale"
    existing = tmp_path / "tuned.pt"
    existing.write_bytes(b"keep me")
    with pytest.raises(InputError, match=rf"{re.escape(str(existing))} already exists.*--overwrite"):
        finetune_on_scene(tiny_package_x4.card_path, *six_band_scene, tmp_path / "tuned.json", steps=1)
    assert (
        training_main(
            [
                "finetune",
                str(tiny_package_x4.card_path),
                *map(str, six_band_scene),
                str(tmp_path / "tuned.json"),
                "--steps",
                "1",
            ]
        )
        == 2
    )
    assert "already exists" in capsys.readouterr().err
    assert existing.read_bytes() == b"keep me" and sorted(tmp_path.iterdir()) == [existing]


def test_finetuning_keeps_the_best_step_and_stops_when_validation_stops_improving(
    tiny_package_x4, six_band_scene, tmp_path
):
    logged: list[str] = []
    package = finetune_on_scene(
        tiny_package_x4.card_path,
        *six_band_scene,
        tmp_path / "tuned.json",
        steps=100,
        learning_rate=1e-2,
        threads=1,
        min_gain=-np.inf,
        log=logged.append,
    )
    validation = package.card.metrics["fine_tune_validation"]
    checks = {
        int(m.group(1)): float(m.group(2))
        for m in (re.match(r"step (\d+)/100: .*validation RMSE ([\d.]+) K", line) for line in logged)
        if m
    }
    assert validation["steps_run"] < 100 and max(checks) == validation["steps_run"]
    assert any("Stopping early" in line for line in logged)
    assert validation["best_step"] < validation["steps_run"]
    assert checks[validation["best_step"]] == min(checks.values()) < checks[validation["steps_run"]]
    lst, _ = read_band_values(six_band_scene[0])
    guidance = np.stack([read_band_values(six_band_scene[1], band)[0] for band in range(1, 7)])
    windows = validation_windows(package)
    assert pipeline_rmse(
        "mocolsk", str(package.card_path), lst, guidance, windows, tmp_path / "pipeline"
    ) == pytest.approx(validation["fine_tuned"]["rmse_k"], rel=1e-3)


def test_finetuning_that_does_not_beat_the_parent_writes_nothing_and_says_by_how_much(
    tiny_package_x4, six_band_scene, tmp_path, capsys
):
    out = tmp_path / "tuned.json"
    code = training_main(
        [
            "finetune",
            str(tiny_package_x4.card_path),
            *map(str, six_band_scene),
            str(out),
            "--steps",
            "3",
            "--threads",
            "1",
        ]
    )
    error = capsys.readouterr().err
    assert code == 2
    assert re.search(
        r"best fine-tuned model \(step \d\) has RMSE \d\.\d{3} K, the parent package tiny_x4 \d\.\d{3} K "
        r"and bicubic \d\.\d{3} K; that is \d+\.\d% worse than the parent",
        error,
    )
    assert "no 30 m truth exists" in error and "at least 2.0% better" in error
    assert list(tmp_path.iterdir()) == []


def test_cancelling_finetuning_writes_nothing(tiny_package_x4, six_band_scene, tmp_path):
    calls = iter(range(100))
    with pytest.raises(Cancelled, match="no model package was written"):
        finetune_on_scene(
            tiny_package_x4.card_path,
            *six_band_scene,
            tmp_path / "tuned.json",
            steps=50,
            threads=1,
            is_cancelled=lambda: next(calls) >= 2,
        )
    assert list(tmp_path.iterdir()) == []


def test_finetuning_refuses_to_overwrite_the_source_package(tiny_package_x4, six_band_scene):
    before = tiny_package_x4.card_path.read_bytes()
    with pytest.raises(InputError, match="overwrite the model"):
        finetune_on_scene(
            tiny_package_x4.card_path, *six_band_scene, tiny_package_x4.card_path, steps=1, overwrite=True
        )
    assert tiny_package_x4.card_path.read_bytes() == before


def test_guidance_with_the_wrong_band_count_names_the_expected_bands(tiny_package_x4, scene_tifs, tmp_path):
    with pytest.raises(InputError, match="has 8 band.*expects 6: blue, green, red, nir, swir1, swir2"):
        finetune_on_scene(tiny_package_x4.card_path, *scene_tifs, tmp_path / "tuned.json", steps=1)
    assert list(tmp_path.iterdir()) == []


def test_celsius_lst_read_as_kelvin_is_refused_with_the_fix(
    tiny_package_x4, l5_scene, six_band_scene, tmp_path
):
    celsius = write_geotiff(tmp_path / "celsius.tif", l5_scene.lst_kelvin[:CROP_PX, :CROP_PX] - 273.15, 30.0)
    with pytest.raises(InputError, match="set the LST units"):
        finetune_on_scene(
            tiny_package_x4.card_path, celsius, six_band_scene[1], tmp_path / "tuned.json", steps=1
        )


def test_too_small_scene_says_how_many_pixels_are_needed(tiny_package_x4, l5_scene, tmp_path):
    lst = write_geotiff(tmp_path / "lst.tif", l5_scene.lst_kelvin[:20, :20], 30.0)
    guidance = write_geotiff(
        tmp_path / "g.tif", l5_scene.guidance[:6, :20, :20], 30.0, l5_scene.band_names[:6]
    )
    with pytest.raises(InputError, match="needs at least 32x32 LST pixels"):
        finetune_on_scene(tiny_package_x4.card_path, lst, guidance, tmp_path / "tuned.json", steps=1)


def test_scene_too_small_to_hold_out_validation_blocks_is_refused_before_training(
    tiny_package_x4, l5_scene, tmp_path
):
    lst = write_geotiff(tmp_path / "lst.tif", l5_scene.lst_kelvin[:64, :64], 30.0)
    guidance = write_geotiff(
        tmp_path / "g.tif", l5_scene.guidance[:6, :64, :64], 30.0, l5_scene.band_names[:6]
    )
    with pytest.raises(
        InputError, match="at least 2 validation blocks of 32x32 LST pixels.*4-pixel guard band"
    ):
        finetune_on_scene(tiny_package_x4.card_path, lst, guidance, tmp_path / "tuned.json", steps=1)


def test_finetune_algorithm_reports_a_finetune_that_did_not_help_as_an_error(
    qgis_processing, tiny_package_x4, six_band_scene, tmp_path
):
    import processing
    from qgis.core import QgsProcessingException

    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    lost = r"Fine-tuning did not help.*bicubic \d\.\d{3} K; that is \d+\.\d% worse than the parent"
    with pytest.raises(QgsProcessingException, match=lost):
        processing.run(
            FinetuneAlgorithm(),
            {
                "MODEL_FILE": str(tiny_package_x4.card_path),
                "LST": str(six_band_scene[0]),
                "LST_UNITS": KELVIN_OPTION,
                "GUIDANCE": str(six_band_scene[1]),
                "STEPS": 3,
                "OUTPUT": str(tmp_path / "tuned.json"),
            },
        )
    assert list(tmp_path.iterdir()) == []


def test_finetune_algorithm_leaves_an_existing_package_alone_by_default(
    qgis_processing, tiny_package_x4, six_band_scene, tmp_path
):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    algorithm = FinetuneAlgorithm()
    algorithm.initAlgorithm()
    assert algorithm.parameterDefinition("OVERWRITE").defaultValue() is False
    existing = tmp_path / "tuned.json"
    existing.write_text("{}")
    parameters = {
        "MODEL_FILE": str(tiny_package_x4.card_path),
        "LST": str(six_band_scene[0]),
        "LST_UNITS": KELVIN_OPTION,
        "GUIDANCE": str(six_band_scene[1]),
        "STEPS": 1,
        "OUTPUT": str(existing),
    }
    with pytest.raises(
        QgsProcessingException, match=rf"{re.escape(str(existing))} already exists.*Overwrite"
    ):
        algorithm.processAlgorithm(parameters, QgsProcessingContext(), QgsProcessingFeedback())
    assert existing.read_text() == "{}"


def test_finetune_algorithm_help_says_what_its_validation_measures_and_what_was_measured(qgis_processing):
    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    text = FinetuneAlgorithm().shortHelpString()
    assert "recovering the coarse LST from a x{s} coarser copy on held-out blocks" in text
    assert "no 30 m truth exists" in text
    assert re.search(r"\d\.\d{3} K", text)


def test_finetune_algorithm_reports_a_cancel_as_nothing_written(
    qgis_processing, tiny_package_x4, six_band_scene, tmp_path
):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    algorithm = FinetuneAlgorithm()
    algorithm.initAlgorithm()
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    parameters = {
        "MODEL_FILE": str(tiny_package_x4.card_path),
        "LST": str(six_band_scene[0]),
        "LST_UNITS": KELVIN_OPTION,
        "GUIDANCE": str(six_band_scene[1]),
        "STEPS": 5,
        "OUTPUT": str(tmp_path / "x.json"),
    }
    with pytest.raises(QgsProcessingException, match="Cancelled: .*no model package was written"):
        algorithm.processAlgorithm(parameters, QgsProcessingContext(), feedback)
    assert list(tmp_path.iterdir()) == []


def test_finetune_algorithm_explains_how_to_install_missing_pytorch(monkeypatch):
    from qgis.core import QgsProcessingException

    from mocolsk_qgis.algorithms.finetune import finetune_function

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(
        QgsProcessingException,
        match='PyTorch, which is not installed.*Install runtime.*install_runtime.py" torch',
    ):
        finetune_function()


def test_finetune_algorithm_explains_that_the_zip_lacks_the_training_package(monkeypatch):
    from qgis.core import QgsProcessingException

    from mocolsk_qgis.algorithms.finetune import finetune_function

    monkeypatch.setitem(sys.modules, "training.finetune", None)
    with pytest.raises(QgsProcessingException, match="training package .* plugin zip does not ship"):
        finetune_function()


def test_finetune_algorithm_can_execute_where_pytorch_and_the_training_package_import(qgis_processing):
    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    assert FinetuneAlgorithm().canExecute() == (True, "")


@pytest.mark.parametrize(
    "hidden, says",
    [
        ("torch", 'PyTorch, which is not installed.*install_runtime.py" torch'),
        ("training.finetune", "training package .* plugin zip does not ship.*PYTHONPATH"),
    ],
)
def test_finetune_algorithm_cannot_execute_without_pytorch_or_the_training_package_and_says_why(
    qgis_processing, monkeypatch, hidden, says
):
    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    monkeypatch.setitem(sys.modules, hidden, None)
    can, message = FinetuneAlgorithm().canExecute()
    assert can is False
    assert re.search(says, message)


def test_finetune_offers_the_lst_units_of_downscale_with_the_same_labels(qgis_processing):
    from mocolsk_qgis.algorithms.common import LST_UNIT_CHOICES
    from mocolsk_qgis.algorithms.downscale import DownscaleAlgorithm
    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    finetune, downscale = FinetuneAlgorithm(), DownscaleAlgorithm()
    finetune.initAlgorithm()
    downscale.initAlgorithm()
    options = finetune.parameterDefinition("LST_UNITS").options()
    assert options == downscale.parameterDefinition("LST_UNITS").options()
    assert len(options) == 6
    assert LST_UNIT_CHOICES[KELVIN_OPTION][0] == "kelvin"


@pytest.mark.parametrize("lst_units", ["landsat_c2_st_dn", "auto"])
def test_finetuning_reads_landsat_st_digital_numbers_as_downscale_does(
    tiny_package_x4, l5_scene, six_band_scene, tmp_path, lst_units
):
    from osgeo import gdal, osr

    kelvin = l5_scene.lst_kelvin[:CROP_PX, :CROP_PX]
    dn = np.where(np.isfinite(kelvin), np.round((kelvin - 149.0) / 0.00341802), 0).astype(np.uint16)
    path = tmp_path / "lst_st_b10.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), CROP_PX, CROP_PX, 1, gdal.GDT_UInt16)
    dataset.SetGeoTransform((500000.0, 30.0, 0.0, 9000000.0, 0.0, -30.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32622)
    dataset.SetProjection(srs.ExportToWkt())
    dataset.GetRasterBand(1).WriteArray(dn)
    dataset.GetRasterBand(1).SetNoDataValue(0)
    dataset = None

    scene = scene_for_finetuning(path, six_band_scene[1], load_package(tiny_package_x4.card_path), lst_units)
    valid = np.isfinite(kelvin)
    assert np.array_equal(np.isfinite(scene.lst_kelvin), valid)
    assert np.abs(scene.lst_kelvin[valid] - kelvin[valid]).max() < 0.002

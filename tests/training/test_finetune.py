"""Self-supervised fine-tuning on one scene: a new package, never a touched source,
nothing written on cancel or bad input; and the Processing algorithm around it."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from engine.errors import Cancelled, InputError
from engine.package import load_package
from tests.training.conftest import CROP_PX, write_geotiff
from training.finetune import finetune_on_scene


@pytest.fixture(scope="module")
def six_band_scene(l5_scene, tmp_path_factory):
    """The 30 m LST as the scene's LST and the six reflectances the tiny test models take."""
    folder = tmp_path_factory.mktemp("finetune")
    lst = write_geotiff(folder / "lst.tif", l5_scene.lst_kelvin[:CROP_PX, :CROP_PX], 30.0)
    guidance = write_geotiff(folder / "guidance.tif", l5_scene.guidance[:6, :CROP_PX, :CROP_PX], 30.0, l5_scene.band_names[:6])
    return lst, guidance


def test_cancelling_finetuning_writes_nothing(tiny_package_x4, six_band_scene, tmp_path):
    calls = iter(range(100))
    with pytest.raises(Cancelled, match="no model package was written"):
        finetune_on_scene(tiny_package_x4.card_path, *six_band_scene, tmp_path / "tuned.json", steps=50,
                          threads=1, is_cancelled=lambda: next(calls) >= 2)
    assert list(tmp_path.iterdir()) == []


def test_finetuning_refuses_to_overwrite_the_source_package(tiny_package_x4, six_band_scene):
    before = tiny_package_x4.card_path.read_bytes()
    with pytest.raises(InputError, match="overwrite the model"):
        finetune_on_scene(tiny_package_x4.card_path, *six_band_scene, tiny_package_x4.card_path, steps=1)
    assert tiny_package_x4.card_path.read_bytes() == before


def test_guidance_with_the_wrong_band_count_names_the_expected_bands(tiny_package_x4, scene_tifs, tmp_path):
    with pytest.raises(InputError, match="has 8 band.*expects 6: blue, green, red, nir, swir1, swir2"):
        finetune_on_scene(tiny_package_x4.card_path, *scene_tifs, tmp_path / "tuned.json", steps=1)
    assert list(tmp_path.iterdir()) == []


def test_celsius_lst_read_as_kelvin_is_refused_with_the_fix(tiny_package_x4, l5_scene, six_band_scene, tmp_path):
    celsius = write_geotiff(tmp_path / "celsius.tif", l5_scene.lst_kelvin[:CROP_PX, :CROP_PX] - 273.15, 30.0)
    with pytest.raises(InputError, match="set the LST units"):
        finetune_on_scene(tiny_package_x4.card_path, celsius, six_band_scene[1], tmp_path / "tuned.json", steps=1)


def test_too_small_scene_says_how_many_pixels_are_needed(tiny_package_x4, l5_scene, tmp_path):
    lst = write_geotiff(tmp_path / "lst.tif", l5_scene.lst_kelvin[:20, :20], 30.0)
    guidance = write_geotiff(tmp_path / "g.tif", l5_scene.guidance[:6, :20, :20], 30.0, l5_scene.band_names[:6])
    with pytest.raises(InputError, match="needs at least 32x32 LST pixels"):
        finetune_on_scene(tiny_package_x4.card_path, lst, guidance, tmp_path / "tuned.json", steps=1)


def test_finetune_algorithm_writes_a_new_package_recording_its_origin_and_validation(
    qgis_processing, tiny_package_x4, six_band_scene, tmp_path
):
    import processing
    from qgis.core import QgsProcessingFeedback

    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.progress, self.messages = [], []

        def setProgress(self, value):  # noqa: N802
            self.progress.append(value)
            super().setProgress(value)

        def pushInfo(self, info):  # noqa: N802
            self.messages.append(info)
            super().pushInfo(info)

    feedback = Recorder()
    out = tmp_path / "tuned.json"
    result = processing.run(FinetuneAlgorithm(), {
        "MODEL_FILE": str(tiny_package_x4.card_path), "LST": str(six_band_scene[0]), "LST_UNITS": "kelvin",
        "GUIDANCE": str(six_band_scene[1]), "STEPS": 3, "OUTPUT": str(out),
    }, feedback=feedback)
    assert result["OUTPUT"] == str(out)
    package = load_package(out)
    assert package.card.training["fine_tuned_from"]["weights_sha256"] == tiny_package_x4.card.weights_sha256
    assert package.card.training["fine_tuning"]["steps"] == 3 and package.card.scale == 4
    validation = package.card.metrics["fine_tune_validation"]
    assert validation["before"]["pixels"] == validation["after"]["pixels"] > 0
    assert np.isfinite(validation["after"]["rmse_k"]) and validation["after"]["rmse_k"] != validation["before"]["rmse_k"]
    assert package.torch_weights_path.read_bytes() != tiny_package_x4.torch_weights_path.read_bytes()
    assert max(feedback.progress) == 100.0
    assert any("validation RMSE" in m for m in feedback.messages)


def test_finetune_algorithm_reports_a_cancel_as_nothing_written(qgis_processing, tiny_package_x4, six_band_scene, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

    from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm

    algorithm = FinetuneAlgorithm()
    algorithm.initAlgorithm()
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    parameters = {"MODEL_FILE": str(tiny_package_x4.card_path), "LST": str(six_band_scene[0]), "LST_UNITS": "kelvin",
                  "GUIDANCE": str(six_band_scene[1]), "STEPS": 5, "OUTPUT": str(tmp_path / "x.json")}
    with pytest.raises(QgsProcessingException, match="Cancelled: .*no model package was written"):
        algorithm.processAlgorithm(parameters, QgsProcessingContext(), feedback)
    assert list(tmp_path.iterdir()) == []


def test_finetune_algorithm_explains_how_to_install_missing_pytorch(monkeypatch):
    from qgis.core import QgsProcessingException

    from mocolsk_qgis.algorithms.finetune import finetune_function

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(QgsProcessingException, match="PyTorch, which is not installed.*pip install .*torch"):
        finetune_function()


def test_finetune_algorithm_explains_that_the_zip_lacks_the_training_package(monkeypatch):
    from qgis.core import QgsProcessingException

    from mocolsk_qgis.algorithms.finetune import finetune_function

    monkeypatch.setitem(sys.modules, "training.finetune", None)
    with pytest.raises(QgsProcessingException, match="training package .* plugin zip does not ship"):
        finetune_function()

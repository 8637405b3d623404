"""Batch runs in QGIS: a second "Downscale LST" run on the same model reuses the loaded model."""

from mocolsk_qgis._engine import engine_module

from .test_downscale import ALGORITHM, downscale_parameters


def test_a_second_run_on_the_same_model_reuses_the_loaded_session(
    run_algorithm, sample_scene, tiny_package_x4, tmp_path
):
    backends = engine_module("backends")
    backends.clear_backend_cache()
    for name in ("first.tif", "second.tif"):
        run_algorithm(
            ALGORITHM,
            downscale_parameters(sample_scene, tmp_path / name, MODEL_FILE=str(tiny_package_x4.card_path)),
        )
        if name == "first.tif":
            opened = list(backends._cache.values())
    assert len(opened) == 1
    assert list(backends._cache.values()) == opened and list(backends._cache.values())[0] is opened[0]
    assert (tmp_path / "second.tif").is_file()

"""`python -m engine downscale` on several scenes: --pair or a folder and patterns, one model load."""

from __future__ import annotations

import io
import shutil

import numpy as np
from osgeo import gdal

from engine import backends
from engine.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main


def run_cli(*argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def scene_folder(small_scene, folder, names=("north", "south")):
    folder.mkdir()
    for name in names:
        shutil.copy(small_scene.lst_path, folder / f"{name}_lst.tif")
        shutil.copy(small_scene.guidance_path, folder / f"{name}_refl.tif")
    return folder


def test_pairs_are_each_downscaled_like_a_single_run_into_the_output_folder(small_scene, tmp_path):
    folder = scene_folder(small_scene, tmp_path / "in")
    single = tmp_path / "single.tif"
    code, _, stderr = run_cli(
        "downscale", "--lst", small_scene.lst_path, "--guidance", small_scene.guidance_path,
        "--method", "bicubic", "--out", single, "--quiet",
    )  # fmt: skip
    assert code == EXIT_OK, stderr
    code, stdout, stderr = run_cli(
        "downscale", "--method", "bicubic", "--quiet", "--out-dir", tmp_path / "out",
        "--pair", folder / "north_lst.tif", folder / "north_refl.tif",
        "--pair", folder / "south_lst.tif", folder / "south_refl.tif",
    )  # fmt: skip
    assert code == EXIT_OK, stderr
    assert "Scene 1/2" in stdout and "Scene 2/2" in stdout
    expected = gdal.Open(str(single)).ReadAsArray()
    for name in ("north", "south"):
        written = gdal.Open(str(tmp_path / "out" / f"{name}_lst_downscaled.tif")).ReadAsArray()
        np.testing.assert_array_equal(written, expected)


def test_a_folder_and_patterns_run_every_scene_with_the_model_loaded_once(
    small_scene, tiny_package_x4, tmp_path, monkeypatch
):
    folder = scene_folder(small_scene, tmp_path / "in", names=("a", "b", "c"))
    opened = []
    real = backends.create_onnxruntime_backend
    monkeypatch.setattr(
        backends, "create_onnxruntime_backend", lambda *a, **k: opened.append(1) or real(*a, **k)
    )
    backends.clear_backend_cache()
    code, stdout, stderr = run_cli(
        "downscale", "--folder", folder, "--lst-pattern", "*_lst.tif", "--guidance-pattern", "*_refl.tif",
        "--method", "mocolsk", "--model", tiny_package_x4.card_path, "--device", "cpu",
        "--out-dir", tmp_path / "out", "--quiet",
    )  # fmt: skip
    assert code == EXIT_OK, stderr
    assert stdout.count("Wrote ") == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{n}_lst_downscaled.tif" for n in ("a", "b", "c")
    ]
    assert len(opened) == 1


def test_a_folder_scene_without_its_guidance_names_the_missing_file(small_scene, tmp_path):
    folder = scene_folder(small_scene, tmp_path / "in")
    (folder / "south_refl.tif").unlink()
    code, _, stderr = run_cli(
        "downscale", "--folder", folder, "--lst-pattern", "*_lst.tif", "--guidance-pattern", "*_refl.tif",
        "--method", "bicubic", "--out-dir", tmp_path / "out",
    )  # fmt: skip
    assert code == EXIT_ERROR
    assert "south_lst.tif has no guidance south_refl.tif" in stderr


def test_mixing_one_scene_and_batch_arguments_says_which_to_give(small_scene, tmp_path):
    code, _, stderr = run_cli(
        "downscale", "--pair", small_scene.lst_path, small_scene.guidance_path,
        "--out", tmp_path / "x.tif", "--method", "bicubic",
    )  # fmt: skip
    assert code == EXIT_USAGE and "give --out-dir and drop --lst, --guidance and --out" in stderr
    code, _, stderr = run_cli("downscale", "--method", "bicubic")
    assert code == EXIT_USAGE and "give --lst, --guidance and --out for one scene" in stderr


def test_an_uncertainty_file_in_a_batch_is_refused_before_any_scene_runs(small_scene, tmp_path):
    code, _, stderr = run_cli(
        "downscale", "--pair", small_scene.lst_path, small_scene.guidance_path,
        "--out-dir", tmp_path / "out", "--method", "dms", "--uncertainty", tmp_path / "sigma.tif",
    )  # fmt: skip
    assert code == EXIT_USAGE and "run scenes with an uncertainty layer one at a time" in stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "sigma.tif").exists()


def test_a_failed_scene_is_reported_and_the_batch_goes_on_to_the_others(small_scene, tmp_path):
    folder = scene_folder(small_scene, tmp_path / "in", names=("north", "broken", "south"))
    (folder / "broken_lst.tif").write_bytes(b"not a raster")
    code, stdout, stderr = run_cli(
        "downscale", "--method", "bicubic", "--quiet", "--out-dir", tmp_path / "out",
        "--folder", folder, "--lst-pattern", "*_lst.tif", "--guidance-pattern", "*_refl.tif",
    )  # fmt: skip
    assert code == EXIT_ERROR
    assert "scene 1/3" in stderr and "broken_lst.tif" in stderr
    assert "1 of 3 scenes failed" in stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["north_lst_downscaled.tif", "south_lst_downscaled.tif"]

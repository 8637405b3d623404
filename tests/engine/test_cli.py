"""Command line: downscale with a progress bar, info prints the card, evaluate prints the
metrics; errors are one line with a non-zero exit code."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal

from engine.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from tests.conftest import REPO as REPO_ROOT

from .conftest import landsat_path


def run_cli(*argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_downscale_writes_the_output_with_a_progress_bar(small_scene, tmp_path):
    out = tmp_path / "out.tif"
    code, stdout, stderr = run_cli(
        "downscale",
        "--lst",
        small_scene.lst_path,
        "--guidance",
        small_scene.guidance_path,
        "--method",
        "tsharp",
        "--out",
        out,
        "--output-units",
        "celsius",
    )
    assert code == EXIT_OK, stderr
    assert stdout.startswith(f"Wrote {out} (tsharp, x4, largest coarse residual 0.0000 K")
    assert "\n100%\n" in stderr and "TsHARP fit on" in stderr
    dataset = gdal.Open(str(out))
    assert dataset.GetRasterBand(1).GetUnitType() == "degC"


def test_downscale_with_a_model_package_and_named_single_band_guidance(
    small_scene, tiny_package_x4, tmp_path
):
    bands = ["blue", "green", "red", "nir", "swir1", "swir2"]
    files = [
        small_scene.write_guidance(f"cli_{name}.tif", small_scene.guidance[i]) for i, name in enumerate(bands)
    ]
    out = tmp_path / "out.tif"
    code, stdout, stderr = run_cli(
        "downscale",
        "--lst",
        small_scene.lst_path,
        "--guidance",
        *files,
        "--bands",
        ",".join(bands),
        "--method",
        "mocolsk",
        "--model",
        tiny_package_x4.card_path,
        "--threads",
        "1",
        "--out",
        out,
        "--quiet",
    )
    assert code == EXIT_OK, stderr
    assert stderr == "" and "(mocolsk, x4," in stdout
    assert gdal.Open(str(out)).GetMetadata()["MOCOLSK_MODEL"] == "tiny_x4"


def test_downscale_without_a_model_uses_the_bundled_model_for_the_pixel_ratio(small_scene, tmp_path):
    out = tmp_path / "out.tif"
    code, stdout, stderr = run_cli(
        "downscale",
        "--lst",
        small_scene.lst_path,
        "--guidance",
        small_scene.guidance_path,
        "--out",
        out,
        "--threads",
        1,
    )
    assert code == EXIT_OK, stderr
    assert stdout.startswith(f"Wrote {out} (blend, x4,")
    assert (
        "Model: mocolsk-x4-landsat-light, the bundled package for x4 (LST pixel 120 m / guidance pixel 30 m)"
        in stderr
    )


def test_downscale_grows_the_qa_mask_by_the_pixels_given(small_scene, tmp_path):
    qa = np.zeros(small_scene.lst_kelvin.shape, np.uint8)
    qa[10, 10] = 1
    qa_path = small_scene.write_lst("cli_cloud.tif", qa)
    out = tmp_path / "out.tif"
    code, _, stderr = run_cli(
        "downscale",
        "--lst",
        small_scene.lst_path,
        "--guidance",
        small_scene.guidance_path,
        "--method",
        "bicubic",
        "--qa-mask",
        qa_path,
        "--qa-grow",
        1,
        "--out",
        out,
    )
    assert code == EXIT_OK, stderr
    assert "QA mask grown by 1 px: 8 more LST pixels masked" in stderr
    assert gdal.Open(str(out)).GetMetadata()["MOCOLSK_QA_MASK_GROW_PX"] == "1"


def test_downscale_averages_an_lst_on_the_guidance_grid_to_the_native_pixel_given(scene, tmp_path):
    renamed = tmp_path / "thermal_30m.tif"  # no Landsat name
    gdal.Translate(str(renamed), str(landsat_path(6))).FlushCache()
    out = tmp_path / "out.tif"
    code, stdout, stderr = run_cli(
        "downscale",
        "--lst",
        renamed,
        "--lst-units",
        "landsat5_tm_b6_dn",
        "--guidance",
        scene.guidance_path,
        "--method",
        "bicubic",
        "--native-pixel-m",
        120,
        "--out",
        out,
    )
    assert code == EXIT_OK, stderr
    assert stdout.startswith(f"Wrote {out} (bicubic, x4,")
    assert "the native LST pixel given is 120 m" in stderr


def test_a_bad_input_is_one_error_line_and_exit_code_1(small_scene, tmp_path):
    code, stdout, stderr = run_cli(
        "downscale",
        "--lst",
        tmp_path / "missing.tif",
        "--guidance",
        small_scene.guidance_path,
        "--method",
        "bicubic",
        "--out",
        tmp_path / "out.tif",
    )
    assert code == EXIT_ERROR
    assert stderr.count("\n") == 1 and stderr.startswith("error: LST ") and "missing.tif" in stderr
    assert not (tmp_path / "out.tif").exists()


def test_bad_usage_exits_with_code_2():
    code, _, _ = run_cli("downscale", "--lst", "x.tif")
    assert code == EXIT_USAGE


def test_info_prints_the_model_card(tiny_package_x4):
    code, stdout, _ = run_cli("info", tiny_package_x4.card_path)
    assert code == EXIT_OK
    assert stdout.startswith("tiny_x4 0.0.1 (MoCoLSK-Net, x4)")
    assert "    6. swir2 [reflectance] mean 0.15, std 0.05" in stdout
    code, stdout, _ = run_cli("info", tiny_package_x4.card_path, "--json")
    assert json.loads(stdout)["scale"] == 4


def test_info_on_an_unknown_model_is_one_error_line():
    code, _, stderr = run_cli("info", "no_such_model")
    assert code == EXIT_ERROR and stderr.startswith(
        "error: Model 'no_such_model' is neither a bundled package"
    )


def test_evaluate_prints_masked_metrics_in_kelvin_against_the_real_30m_band6(scene, tmp_path):
    out = tmp_path / "bicubic.tif"
    assert (
        run_cli(
            "downscale",
            "--lst",
            scene.lst_path,
            "--guidance",
            scene.guidance_path,
            "--method",
            "bicubic",
            "--out",
            out,
            "--quiet",
        )[0]
        == EXIT_OK
    )
    code, stdout, stderr = run_cli("evaluate", "--pred", out, "--ref", landsat_path(6), "--json")
    assert code == EXIT_OK, stderr
    scores = json.loads(stdout)
    assert set(scores) == {"rmse_k", "mae_k", "bias_k", "cc", "rsd_k", "ssim", "psnr_db", "pixels"}
    assert scores["rmse_k"] < 0.3 and scores["cc"] > 0.95 and abs(scores["bias_k"]) < 0.05
    code, stdout, _ = run_cli("evaluate", "--pred", out, "--ref", landsat_path(6))
    assert "reference read as landsat5_tm_b6_dn" in stdout and "RMSE" in stdout and "PSNR" in stdout


def test_evaluate_refuses_rasters_on_different_grids(small_scene):
    code, _, stderr = run_cli(
        "evaluate", "--pred", small_scene.guidance_path, "--ref", landsat_path(6), "--pred-units", "kelvin"
    )
    assert code == EXIT_ERROR and "are not on the same grid; warp the reference" in stderr


def test_python_dash_m_engine_runs_the_command_line():
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "downscale", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert completed.returncode == 0 and "--guidance" in completed.stdout
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "info", "no_such_model"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert completed.returncode == EXIT_ERROR and completed.stderr.count("\n") == 1


@pytest.mark.parametrize("argv", [["--help"], ["downscale", "--help"]])
def test_help_exits_cleanly(argv, capsys):
    assert main(argv) == EXIT_OK

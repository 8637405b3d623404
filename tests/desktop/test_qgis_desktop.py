"""The QGIS desktop application, as a new user meets it: the plugin installed from the zip into a clean
profile, the bundled sample loaded, "Downscale LST" opened from the Processing Toolbox and run with its
defaults, run again with the uncertainty output, the example model run from the Model Designer's Run
button, a batch of three rows, the runtime installer with a foreign python3 first on PATH, and a Landsat 8
Collection 2 Level-2 file set through the Build guidance stack and Downscale LST dialogs. Runs `qgis`
under Xvfb (desktop_session.py does the clicking); skipped only where xvfb-run or qgis is missing. With
MOCOLSK_SCREENSHOT_DIR set (make screenshot) its screenshots go there."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.c2l2 import write_c2l2_scene
from tests.conftest import REPO
from tests.plugin.conftest import PIP_CACHE

# About 90 s here with pip's wheels cached; the first run downloads ONNX Runtime (about 20 MB).
TIMEOUT_S = 540
SESSION = Path(__file__).with_name("desktop_session.py")
SCREENSHOTS = ("dialog.png", "map.png", "uncertainty.png", "modeler.png", "batch.png", "installer.png")
# A python3 of another version first on PATH, as pyenv or conda put one: inside QGIS sys.executable is it.
FOREIGN_PYTHON3 = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
echo 3.12.1
exit 1
"""
pytestmark = pytest.mark.skipif(
    not (shutil.which("xvfb-run") and shutil.which("qgis")),
    reason="the desktop test needs xvfb-run and the qgis binary (apt: xvfb xauth qgis)",
)


def make(*arguments):
    completed = subprocess.run(
        ["make", "--no-print-directory", *arguments], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def c2_scene(tmp_path_factory):
    """The Collection 2 Level-2 file set of tests/c2l2.py, with ST_B10 averaged to 120 m."""
    scene = write_c2l2_scene(tmp_path_factory.mktemp("c2l2"))
    scene.st_b10_averaged(4)
    return scene


@pytest.fixture(scope="module")
def desktop_session(tmp_path_factory, c2_scene):
    """Results of one desktop session: the JSON that desktop_session.py wrote, and its folder."""
    root = tmp_path_factory.mktemp("desktop")
    c2_files = root / "c2l2.json"
    c2_files.write_text(
        json.dumps(
            {
                "sr": {name: str(path) for name, path in c2_scene.sr.items()},
                "st_b10_120m": str(c2_scene.st_b10_averaged(4)),
            }
        ),
        encoding="utf-8",
    )
    profiles = root / "profiles"
    out = root / "out"
    out.mkdir()
    make(
        "install",
        f"PLUGIN_ZIP={root / 'mocolsk_qgis.zip'}",
        f"PACKAGE_BUILD={root / 'build'}",
        f"QGIS_PROFILE={profiles / 'default'}",
    )
    # The Python packages of this environment (onnxruntime), but not the repository: the plugin must
    # run from the zip's copy.
    site_packages = [path for path in sys.path if path.endswith("site-packages") and ".venv" in path]
    foreign = root / "foreign-python" / "python3"
    foreign.parent.mkdir()
    foreign.write_text(FOREIGN_PYTHON3)
    foreign.chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "PYTHONPATH")},
        "PYTHONPATH": os.pathsep.join(site_packages),
        "PATH": f"{foreign.parent}{os.pathsep}{os.environ['PATH']}",
        "MOCOLSK_DESKTOP_OUT": str(out),
        "MOCOLSK_DESKTOP_DEADLINE_S": str(TIMEOUT_S - 60),
        "MOCOLSK_RUNTIME_DIR": str(root / "runtime"),
        "MOCOLSK_DESKTOP_C2": str(c2_files),
        "PIP_CACHE_DIR": str(PIP_CACHE),
        "HOME": str(root),
    }
    command = [
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 1600x1000x24",
        "qgis",
        "--profiles-path",
        str(root),
        "--nologo",
        "--noversioncheck",
        "--code",
        str(SESSION),
    ]
    process = subprocess.Popen(
        command, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"QGIS did not finish within {TIMEOUT_S} s:\n{output.decode(errors='replace')[-3000:]}")
    results_file = out / "results.json"
    assert results_file.is_file(), (
        f"QGIS wrote no results (exit {process.returncode}):\n{output.decode(errors='replace')[-3000:]}"
    )
    results = json.loads(results_file.read_text(encoding="utf-8"))
    assert not results["errors"], results["errors"]
    if os.environ.get("MOCOLSK_SCREENSHOT_DIR"):
        for name in SCREENSHOTS:
            shutil.copyfile(out / name, Path(os.environ["MOCOLSK_SCREENSHOT_DIR"]) / name)
    return results, out, root


def test_the_plugin_runs_from_the_installed_zip(desktop_session):
    results, _, root = desktop_session
    assert results["plugin_loaded"]
    assert Path(results["plugin_file"]).is_relative_to(root / "profiles" / "default" / "python" / "plugins")
    assert results["toolbox_selected"] == "mocolsk:downscalelst"


def test_defaults_run_the_blend_at_x4_on_the_sample_and_the_log_says_so(desktop_session):
    results, _, _ = desktop_session
    assert results["parameters"]["MODEL"] == "auto"
    log = results["log"]
    assert "Model: mocolsk-x4-landsat-light, the bundled package for x4" in log
    assert "Landsat 4/5 TM band 6 digital numbers" in log  # Auto units read the file name
    assert "Done: x4 with blend mocolsk-x4-landsat-light" in log
    assert (
        results["model_label"] == "Model (auto runs mocolsk-x4-landsat-light: LST 120 m / guidance 30 m = x4)"
    )


def test_the_result_layer_is_named_after_what_it_is(desktop_session):
    results, _, _ = desktop_session
    assert results["result"]["name"] == "LST 30 m, MoCoLSK blend x4 (K)"


def test_the_legend_shows_the_stretch_painted_fitted_to_the_rasters_values(desktop_session):
    result = desktop_session[0]["result"]
    low, high = result["painted_min"], result["painted_max"]
    assert result["raster_min"] <= low < high <= result["raster_max"]
    assert low == pytest.approx(result["data_cut"][0], abs=0.05)
    assert high == pytest.approx(result["data_cut"][1], abs=0.05)
    assert "QgsColorRampLegendNode" in result["legend_nodes"]
    assert result["legend_draws_painted_range"]
    assert not result["legend_draws_style_range_280_320"]
    assert result["legend_suffix"] == " K"
    assert [float(label[:-2]) for label in result["legend_labels"]] == pytest.approx([low, high], abs=0.06)


def test_the_guidance_stack_shows_natural_colour(desktop_session):
    guidance = desktop_session[0]["guidance"]
    names = [name.split(": ")[1] for name in guidance["bands"]]
    assert guidance["rgb"] == [names.index("red") + 1, names.index("green") + 1, names.index("blue") + 1]


def test_screenshots_of_each_step_are_written(desktop_session):
    from qgis.PyQt.QtGui import QImage

    results, out, _ = desktop_session
    for name in SCREENSHOTS:
        image = QImage(str(out / name))
        assert not image.isNull() and image.width() > 600, name
    assert results["modeler_title"].endswith("Landsat guidance, downscale and evaluate")


def test_coarse_lst_does_not_start_on_the_guidance_stack_that_is_the_active_layer(desktop_session):
    defaults = desktop_session[0]["dialog_defaults"]
    assert defaults["active_layer"] == "Guidance stack"
    assert defaults["coarse_lst"] != "Guidance stack" and defaults["guidance"] == ["Guidance stack"]


def test_a_30_m_lst_is_labelled_with_how_it_will_be_sharpened_not_x1(desktop_session):
    label = desktop_session[0]["model_label_30m"]  # LT52240631988227CUB02_B6.TIF: Landsat 5 TM senses 120 m
    assert label == (
        "Model (auto: LST on the guidance grid: averaged to its native 120 m pixel, then x4 with "
        "mocolsk-x4-landsat-light)"
    )


def test_the_form_fits_800_by_600_with_every_button_on_screen(desktop_session):
    fit = desktop_session[0]["fit_800x600"]
    assert fit["size"] == [800, 600] and fit["horizontal_scroll_max"] == 0
    assert len(fit["button_right_edges"]) >= 4
    assert max(fit["button_right_edges"]) < fit["viewport_width"]


def test_a_second_run_gets_a_numbered_name_and_a_styled_uncertainty_layer(desktop_session):
    results = desktop_session[0]
    assert "LST 30 m, MoCoLSK blend x4 (K)" in results["layer_names"]
    assert "LST 30 m, MoCoLSK blend x4 (K) (2)" in results["layer_names"]
    sigma = results["uncertainty"]
    assert sigma["name"] == "Uncertainty, MoCoLSK blend x4 (K)"
    assert sigma["renderer"] == "QgsSingleBandPseudoColorRenderer" and sigma["legend_suffix"] == " K"
    step = (sigma["range"][1] - sigma["range"][0]) / 100
    assert sigma["painted"] == pytest.approx(sigma["percentiles_2_98"], abs=step)
    assert sigma["lightness"] == sorted(sigma["lightness"], reverse=True)
    assert all(label.endswith(" K") for label in sigma["labels"])


def test_the_example_model_runs_to_the_end_from_the_model_designers_run_button(desktop_session):
    results = desktop_session[0]
    assert results["model_dialog_provider"] == "mocolsk"
    run = results["model_run"]
    assert run["successful"], run["log"][-3000:]
    outputs = run["outputs"]
    report = next(value for key, value in outputs.items() if key.endswith("Evaluation report"))
    assert "Root-mean-square error" in Path(report).read_text(encoding="utf-8")
    assert "Done: x4 with mocolsk mocolsk-x4-landsat-light" in run["log"]


def test_a_batch_of_three_rows_runs_without_false_errors(desktop_session):
    batch = desktop_session[0]["batch"]
    assert batch["written"] == [True, True, True], batch["log"][-3000:]
    assert batch["loaded"] == ["batch_bicubic", "batch_mocolsk", "batch_tsharp"]
    assert "not correctly generated" not in batch["log"]
    assert "failed" not in batch["log"].lower()


def test_the_installer_uses_qgiss_python_not_the_python3_first_on_path(desktop_session):
    results, _, root = desktop_session
    foreign = root / "foreign-python" / "python3"
    assert results["sys_executable"] == str(foreign)  # what a plain sys.executable would have run
    installer = results["installer"]
    python = installer["python"]
    assert Path(python).parent == Path(sys.base_prefix) / "bin"
    assert f"Python: {python} (version {sys.version.split()[0]}" in installer["interpreter_text"]
    assert installer["exit_code"] == 0, installer["log"][-3000:]
    assert f"for {python} (Python {sys.version.split()[0]})" in installer["log"]
    assert installer["log_at_end"]
    assert not (foreign.parent / "calls").exists()
    runtime = root / "runtime"
    assert (runtime / "onnxruntime" / "__init__.py").is_file()
    installed_numpy = [path.name for path in runtime.glob("numpy-*.dist-info")]
    assert installed_numpy in ([], [f"numpy-{installer['qgis_numpy']}.dist-info"])


def test_c2_l2_files_go_through_both_dialogs_with_defaults_to_a_30m_lst_in_kelvin(desktop_session, c2_scene):
    c2 = desktop_session[0]["c2"]
    assert not c2["errors"], c2["errors"]
    build, downscale = c2["build"], c2["downscale"]
    assert build["successful"] and not build["red_log_lines"], build.get("log", "")[-3000:]
    assert "negative reflectance" in build["log"]
    assert c2["guidance_bands"] and all(": " in name for name in c2["guidance_bands"])
    assert downscale["successful"] and not downscale["red_log_lines"], downscale.get("log", "")[-3000:]
    assert downscale["model_label"] == (
        "Model (auto runs mocolsk-x4-landsat-light: LST 120 m / guidance 30 m = x4)"
    )
    assert "Landsat 8/9 Collection 2 Level-2 ST_B10" in downscale["log"]
    assert "Done: x4 with blend mocolsk-x4-landsat-light" in downscale["log"]
    assert not [message for message in c2["log_messages"] if message["level"] == 2]  # Qgis.Critical
    result = c2["result"]
    assert re.fullmatch(r"LST 30 m, MoCoLSK blend x4 \(K\)( \(\d+\))?", result["name"]), result["name"]
    low, high = np.nanmin(c2_scene.land_kelvin), np.nanmax(c2_scene.land_kelvin)
    assert 250 < low - 3 < result["kelvin_min"] and result["kelvin_max"] < high + 3 < 340
    dataset = gdal.Open(result["copy"])
    kelvin = dataset.GetRasterBand(1).ReadAsArray().astype(np.float64)
    valid = kelvin != dataset.GetRasterBand(1).GetNoDataValue()
    assert kelvin.shape == (160, 160) and valid.mean() > 0.9 and not valid[c2_scene.fill].all()
    assert abs(np.median(kelvin[c2_scene.water & valid]) - 294.0) < 1.0

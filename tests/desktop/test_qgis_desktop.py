"""The QGIS desktop application, as a new user meets it: the plugin installed from the zip into a clean
profile, the bundled sample loaded, "Downscale LST" opened from the Processing Toolbox and run with its
defaults. Runs `qgis` under Xvfb (desktop_session.py does the clicking); skipped only where xvfb-run or
qgis is missing. With MOCOLSK_SCREENSHOT_DIR set (make screenshot) its screenshots go there."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

TIMEOUT_S = 300
SESSION = Path(__file__).with_name("desktop_session.py")
SCREENSHOTS = ("dialog.png", "map.png", "modeler.png")
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
def desktop_session(tmp_path_factory):
    """Results of one desktop session: the JSON that desktop_session.py wrote, and its folder."""
    root = tmp_path_factory.mktemp("desktop")
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
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "PYTHONPATH")},
        "PYTHONPATH": os.pathsep.join(site_packages),
        "MOCOLSK_DESKTOP_OUT": str(out),
        "MOCOLSK_DESKTOP_DEADLINE_S": str(TIMEOUT_S - 60),
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
    return results, out, profiles


def test_the_plugin_runs_from_the_installed_zip(desktop_session):
    results, _, profiles = desktop_session
    assert results["plugin_loaded"]
    assert Path(results["plugin_file"]).is_relative_to(profiles / "default" / "python" / "plugins")
    assert results["toolbox_selected"] == "mocolsk:downscalelst"


def test_defaults_run_mocolsk_x4_on_the_sample_and_the_log_says_so(desktop_session):
    results, _, _ = desktop_session
    assert results["parameters"]["MODEL"] == "auto"
    log = results["log"]
    assert "Model: mocolsk-x4-landsat-light, the bundled package for x4" in log
    assert "Landsat 4/5 TM band 6 digital numbers" in log  # Auto units read the file name
    assert "Done: x4 with mocolsk mocolsk-x4-landsat-light" in log
    assert (
        results["model_label"] == "Model (auto runs mocolsk-x4-landsat-light: LST 120 m / guidance 30 m = x4)"
    )


def test_the_result_layer_is_named_after_what_it_is(desktop_session):
    results, _, _ = desktop_session
    assert results["result"]["name"] == "LST 30 m, MoCoLSK x4 (K)"


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


def test_screenshots_of_dialog_map_and_modeler_are_written(desktop_session):
    from qgis.PyQt.QtGui import QImage

    results, out, _ = desktop_session
    for name in SCREENSHOTS:
        image = QImage(str(out / name))
        assert not image.isNull() and image.width() > 600, name
    assert results["modeler_title"].endswith("Landsat guidance, downscale and evaluate")

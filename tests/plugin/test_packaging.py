"""The zip from `make package`, installed by `make install` into a fresh profile, runs under
qgis_process; without onnxruntime or torch the plugin still loads and says what to install."""

import configparser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import numpy as np
import pytest
from osgeo import gdal

from tests.c2l2 import write_c2l2_scene
from tests.conftest import REPO
from tests.plugin.conftest import PIP_CACHE
from tests.plugin.repository_rules import repository_problems

# Debian's qgis_process wrapper passes an option the 3.22 binary rejects; the binary works.
QGIS_PROCESS = "/usr/bin/qgis_process.bin"
QGIS_PYTHON = "/usr/bin/python3"
BLOCKER = """
import importlib.abc
import os
import shutil
import sys

BLOCKED = set(os.environ.get("MOCOLSK_TEST_BLOCK", "").split(","))


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
"""


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("package")
    zip_path = folder / "mocolsk_qgis.zip"
    make("package", f"PLUGIN_ZIP={zip_path}", f"PACKAGE_BUILD={folder / 'build'}")
    return zip_path


@pytest.fixture(scope="module")
def qgis_config(plugin_zip, tmp_path_factory):
    """A fresh QGIS configuration folder whose default profile has the plugin installed by `make install`."""
    config = tmp_path_factory.mktemp("qgis_config")
    profile = config / "profiles" / "default"
    make(
        "install",
        f"PLUGIN_ZIP={plugin_zip}",
        f"PACKAGE_BUILD={plugin_zip.parent / 'build'}",
        f"QGIS_PROFILE={profile}",
    )
    return config


def make(*arguments):
    completed = subprocess.run(
        ["make", "--no-print-directory", *arguments], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def qgis_process(config, *arguments, block=(), tmp_path=None, venv=True, env_extra=None):
    """Run qgis_process on the given configuration folder, with this virtual environment's
    packages (onnxruntime, torch) importable unless ``venv`` is False, and optionally some modules
    hidden. The repository is not on the path, so the plugin runs the engine bundled in the zip."""
    python_path = [sysconfig.get_paths()["purelib"]] if venv else []
    env = {
        **os.environ,
        "QGIS_CUSTOM_CONFIG_PATH": str(config),
        "QT_QPA_PLATFORM": "offscreen",
        **(env_extra or {}),
    }
    if block:
        blocker = tmp_path / "blocker"
        blocker.mkdir(exist_ok=True)
        (blocker / "sitecustomize.py").write_text(BLOCKER)
        python_path.insert(0, str(blocker))
        env["MOCOLSK_TEST_BLOCK"] = ",".join(block)
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    return subprocess.run(
        [QGIS_PROCESS, *arguments],
        cwd=tmp_path or config,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_zip_is_one_plugin_folder_with_engine_resources_and_metadata(plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert all(name.startswith("mocolsk_qgis/") for name in names)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    for required in (
        "mocolsk_qgis/__init__.py",
        "mocolsk_qgis/metadata.txt",
        "mocolsk_qgis/engine/pipeline.py",
        "mocolsk_qgis/engine/guidance.py",
        "mocolsk_qgis/resources/styles/lst_kelvin.qml",
        "mocolsk_qgis/resources/styles/lst_celsius.qml",
        "mocolsk_qgis/resources/icons/mocolsk.svg",
        "mocolsk_qgis/resources/models/mocolsk_guidance_downscale_evaluate.model3",
    ):
        assert required in names, required
    bundled = sorted(p.name for p in (REPO / "resources" / "models").glob("*.json"))
    for card in bundled:
        assert f"mocolsk_qgis/resources/models/{card}" in names
        assert f"mocolsk_qgis/resources/models/{card[:-5]}.onnx" in names
    help_pages = sorted(p.name for p in (REPO / "resources" / "help").glob("*.html"))
    assert {"downscalelst.html", "buildguidance.html", "evaluate.html", "finetune.html"} <= set(help_pages)
    for page in help_pages:
        assert f"mocolsk_qgis/resources/help/{page}" in names


def test_metadata_has_what_the_plugin_repository_requires(plugin_zip):
    metadata = configparser.ConfigParser()
    metadata.read_string(zipfile.ZipFile(plugin_zip).read("mocolsk_qgis/metadata.txt").decode("utf-8"))
    general = metadata["general"]
    for key in (
        "name",
        "qgisMinimumVersion",
        "description",
        "about",
        "version",
        "author",
        "email",
        "homepage",
        "repository",
        "tracker",
        "tags",
        "icon",
        "changelog",
    ):
        assert general.get(key, "").strip(), key
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert f"mocolsk_qgis/{general['icon']}" in zipfile.ZipFile(plugin_zip).namelist()


def test_zip_passes_the_plugin_repository_checks_and_carries_the_gpl(plugin_zip):
    assert repository_problems(plugin_zip) == []
    licence = zipfile.ZipFile(plugin_zip).read("mocolsk_qgis/LICENSE").decode("utf-8")
    assert "GNU GENERAL PUBLIC LICENSE" in licence and "Version 2, June 1991" in licence
    assert "or (at your option) any later version" in licence


def test_the_repository_checks_name_each_defect_of_a_bad_zip(plugin_zip, tmp_path):
    bad = tmp_path / "bad.zip"
    source = zipfile.ZipFile(plugin_zip)
    with zipfile.ZipFile(bad, "w") as out:
        for name in source.namelist():
            if name == "mocolsk_qgis/LICENSE":
                continue
            data = source.read(name)
            if name == "mocolsk_qgis/metadata.txt":
                data = data.replace(b"\nemail=", b"\nemail_removed=").replace(
                    b"tracker=https://", b"tracker="
                )
            out.writestr(name, data)
        out.writestr("mocolsk_qgis/engine/__pycache__/pipeline.cpython-311.pyc", b"compiled")
        out.writestr("mocolsk_qgis/bin/helper", b"\x7fELF\x02\x01\x01")
    problems = "\n".join(repository_problems(bad))
    for expected in (
        "mocolsk_qgis/LICENSE is missing",
        "metadata email is missing or empty",
        "metadata tracker",
        "is compiled Python",
        "inside a __pycache__ folder",
        "mocolsk_qgis/bin/helper is a binary executable",
    ):
        assert expected in problems, problems


def test_make_install_enables_the_plugin_in_the_profile(qgis_config):
    profile = qgis_config / "profiles" / "default"
    assert (profile / "python" / "plugins" / "mocolsk_qgis" / "engine" / "pipeline.py").is_file()
    assert "mocolsk_qgis=true" in (profile / "QGIS" / "QGIS3.ini").read_text()


def test_qgis_process_runs_downscale_from_the_installed_plugin(
    qgis_config, sample_scene, tiny_package_x4, tmp_path
):
    output = tmp_path / "lst_30m.tif"
    completed = qgis_process(
        qgis_config,
        "--json",
        "run",
        "mocolsk:downscalelst",
        "--",
        f"INPUT_LST={sample_scene.lst_120m}",
        f"GUIDANCE={sample_scene.guidance_30m}",
        "METHOD=0",
        f"MODEL_FILE={tiny_package_x4.card_path}",
        "THREADS=1",
        f"OUTPUT={output}",
        tmp_path=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads(completed.stdout[completed.stdout.index("{") :])
    assert results["results"]["OUTPUT"] == str(output)
    assert results["results"]["SCALE"] == 4
    assert results["results"]["DEVICE_USED"] == "onnxruntime CPU (1 threads)"
    values = gdal.Open(str(output)).ReadAsArray()
    assert values.shape == (64, 64) and np.all(values != -9999.0)
    assert sample_scene.lst_min_k - 5 < values.min() and values.max() < sample_scene.lst_max_k + 5


def test_qgis_process_goes_from_c2_l2_files_to_a_30m_lst_with_every_default(qgis_config, tmp_path):
    """SR_B2..SR_B7 (negative water reflectance, fill 0) -> Build guidance stack -> Downscale LST with an
    ST_B10 averaged to 120 m, nothing but the inputs and outputs given."""
    scene = write_c2l2_scene(tmp_path / "c2")
    stack = tmp_path / "guidance.tif"
    built = qgis_process(
        qgis_config,
        "run",
        "mocolsk:buildguidance",
        "--",
        *(f"{name.upper()}={path}" for name, path in scene.sr.items()),
        f"OUTPUT={stack}",
        tmp_path=tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "with negative reflectance (water, shadow) bounded to -1..1" in built.stdout
    output = tmp_path / "lst_30m.tif"
    completed = qgis_process(
        qgis_config,
        "--json",
        "run",
        "mocolsk:downscalelst",
        "--",
        f"INPUT_LST={scene.st_b10_averaged(4)}",
        f"GUIDANCE={stack}",
        f"OUTPUT={output}",
        tmp_path=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads(completed.stdout[completed.stdout.index("{") :])["results"]
    assert results["SCALE"] == 4 and results["LST_UNITS_USED"] == "landsat_c2_st_dn"
    kelvin = gdal.Open(str(output)).ReadAsArray()
    valid = kelvin != -9999.0
    assert valid.mean() > 0.9 and valid[scene.water].mean() > 0.95
    low, high = np.nanmin(scene.land_kelvin), np.nanmax(scene.land_kelvin)
    assert low - 3 < kelvin[valid].min() and kelvin[valid].max() < high + 3


@pytest.mark.parametrize(
    "backend, blocked, says",
    [(0, "onnxruntime", "ONNX Runtime is not installed"), (1, "torch", "PyTorch is not installed")],
)
def test_missing_runtime_keeps_the_algorithm_and_explains_the_install(
    backend, blocked, says, qgis_config, sample_scene, tiny_package_x4, tmp_path
):
    listed = qgis_process(qgis_config, "list", block=[blocked], tmp_path=tmp_path)
    assert "mocolsk:downscalelst" in listed.stdout
    output = tmp_path / "never.tif"
    completed = qgis_process(
        qgis_config,
        "run",
        "mocolsk:downscalelst",
        "--",
        f"INPUT_LST={sample_scene.lst_120m}",
        f"GUIDANCE={sample_scene.guidance_30m}",
        "METHOD=0",
        f"BACKEND={backend}",
        f"MODEL_FILE={tiny_package_x4.card_path}",
        f"OUTPUT={output}",
        block=[blocked],
        tmp_path=tmp_path,
    )
    text = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert says in text and "Plugins > MoCoLSK > Install runtime" in text
    assert f'mocolsk_qgis/install_runtime.py" {blocked}' in text
    assert "Traceback" not in text
    assert not output.exists()


def readme_qgis_process_commands() -> list[str]:
    """The README's qgis_process example, one shell command per entry (continuation lines joined)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("- **qgis_process**") :]
    block = block[block.index("```") + 3 :]
    block = block[: block.index("```")]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_readme_qgis_process_example_runs_as_written_on_a_fresh_install(
    plugin_zip, sample_scene, tmp_path
):
    """The plugin unzipped into a new profile's plugins folder (not enabled, as after a manual install),
    then the README's commands as they are written."""
    qgis_config = tmp_path / "qgis_config"
    plugins = qgis_config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(plugin_zip).extractall(plugins)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sample_scene.lst_120m, data / "lst_120m.tif")
    shutil.copy(sample_scene.guidance_30m, data / "guidance_30m.tif")
    commands = readme_qgis_process_commands()
    assert any("plugins enable mocolsk_qgis" in c for c in commands)
    env = {
        **os.environ,
        "QGIS_CUSTOM_CONFIG_PATH": str(qgis_config),
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
    }
    for command in commands:
        completed = subprocess.run(
            ["bash", "-c", command.replace("/data/", f"{data}/")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, command + completed.stdout + completed.stderr
    values = gdal.Open(str(data / "lst_30m.tif")).ReadAsArray()
    assert values.shape == (64, 64) and np.all(values != -9999.0)
    assert "mocolsk-x4-landsat-light" in completed.stdout


def test_qgis_process_runs_mocolsk_with_onnx_runtime_from_the_headless_installer(
    qgis_config, sample_scene, tiny_package_x4, tmp_path
):
    """QGIS's own Python (/usr/bin/python3, without this virtual environment) gets ONNX Runtime only
    through the installer; qgis_process then runs the network from that folder."""
    target = tmp_path / "runtime"
    installer = (
        qgis_config / "profiles" / "default" / "python" / "plugins" / "mocolsk_qgis" / "install_runtime.py"
    )
    env = {**os.environ, "PIP_CACHE_DIR": str(PIP_CACHE), "PYTHONPATH": ""}
    lacks = subprocess.run([QGIS_PYTHON, "-c", "import onnxruntime"], capture_output=True, env=env)
    assert lacks.returncode != 0, "this test needs a QGIS Python without onnxruntime"
    installed = subprocess.run(
        [QGIS_PYTHON, str(installer), "onnxruntime", "--target", str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (target / "onnxruntime" / "__init__.py").is_file()
    output = tmp_path / "lst_30m.tif"
    arguments = [
        "--json",
        "run",
        "mocolsk:downscalelst",
        "--",
        f"INPUT_LST={sample_scene.lst_120m}",
        f"GUIDANCE={sample_scene.guidance_30m}",
        "METHOD=0",
        f"MODEL_FILE={tiny_package_x4.card_path}",
        "THREADS=1",
        f"OUTPUT={output}",
    ]
    without = qgis_process(qgis_config, *arguments, tmp_path=tmp_path, venv=False)
    assert without.returncode != 0 and "ONNX Runtime is not installed" in without.stdout + without.stderr
    completed = qgis_process(
        qgis_config,
        *arguments,
        tmp_path=tmp_path,
        venv=False,
        env_extra={"MOCOLSK_RUNTIME_DIR": str(target)},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads(completed.stdout[completed.stdout.index("{") :])
    assert results["results"]["DEVICE_USED"] == "onnxruntime CPU (1 threads)"
    assert gdal.Open(str(output)).ReadAsArray().shape == (64, 64)


def test_the_installed_zip_offers_fine_tune_but_cannot_execute_it_and_says_it_lacks_the_training_package(
    qgis_config, tmp_path
):
    """The zip ships no `training`: the Toolbox shows Fine-tune greyed out with this message."""
    plugins = qgis_config / "profiles" / "default" / "python" / "plugins"
    script = (
        "import json\n"
        "from mocolsk_qgis.algorithms.finetune import FinetuneAlgorithm\n"
        "print(json.dumps(FinetuneAlgorithm().canExecute()))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(plugins), sysconfig.get_paths()["purelib"]]),
            "QT_QPA_PLATFORM": "offscreen",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    can, message = json.loads(completed.stdout.strip().splitlines()[-1])
    assert can is False
    assert "training package" in message and "plugin zip does not ship" in message

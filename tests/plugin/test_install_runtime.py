"""The runtime installer: where it installs, what it offers, and a real pip install through the
plugin's dialog (a QProcess running install_runtime.py, as the menu action does)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qgis.PyQt.QtCore import QCoreApplication

from engine import backends
from mocolsk_qgis import install_runtime
from mocolsk_qgis.runtime_dialog import InstallRuntimeDialog

from .conftest import PIP_CACHE


@pytest.fixture
def pip_cache(monkeypatch):
    monkeypatch.setenv("PIP_CACHE_DIR", str(PIP_CACHE))
    return PIP_CACHE


def test_runtimes_go_beside_the_profiles_plugins_folder_so_plugin_updates_keep_them(tmp_path, monkeypatch):
    monkeypatch.delenv(install_runtime.RUNTIME_DIR_ENV, raising=False)
    plugin = tmp_path / "profiles" / "default" / "python" / "plugins" / "mocolsk_qgis"
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    expected = tmp_path / "profiles" / "default" / "python" / "mocolsk_runtime" / version
    assert install_runtime.runtime_dir(plugin) == expected
    assert (
        install_runtime.runtime_dir(tmp_path / "repository" / "mocolsk_qgis").parent.parent.name
        == ".mocolsk_qgis"
    )
    monkeypatch.setenv(install_runtime.RUNTIME_DIR_ENV, str(tmp_path / "chosen"))
    assert install_runtime.runtime_dir(plugin) == tmp_path / "chosen"


def test_the_runtime_folder_is_appended_to_the_path_so_it_never_shadows_qgis_packages(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert not install_runtime.activate(tmp_path / "absent")
    assert install_runtime.activate(tmp_path)
    assert sys.path[-1] == str(tmp_path)
    install_runtime.activate(tmp_path)
    assert sys.path.count(str(tmp_path)) == 1


def test_the_gpu_build_is_offered_when_an_nvidia_gpu_is_present():
    assert (
        install_runtime.recommended_package("onnxruntime", gpu="NVIDIA H100 80GB HBM3") == "onnxruntime-gpu"
    )
    assert install_runtime.recommended_package("onnxruntime", gpu=None) == "onnxruntime"
    assert install_runtime.recommended_package("torch", gpu="NVIDIA H100 80GB HBM3") == "torch"
    dialog = InstallRuntimeDialog(package="onnxruntime", gpu="NVIDIA H100 80GB HBM3")
    assert [dialog.choice.itemData(i) for i in range(dialog.choice.count())] == [
        "onnxruntime-gpu",
        "onnxruntime",
        "torch",
    ]
    assert "NVIDIA H100 80GB HBM3" in dialog.intro.text()


def test_the_installer_asks_the_engines_gpu_probe_even_when_run_as_a_plain_script(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5d9a)'\n", encoding="utf-8")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert install_runtime.nvidia_gpu() == backends.nvidia_gpu_name() == "NVIDIA H100 80GB HBM3"
    script = (
        "import runpy; "
        f"print(runpy.run_path({str(install_runtime.PLUGIN_DIR / 'install_runtime.py')!r})['nvidia_gpu']())"
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert completed.stdout.strip() == "NVIDIA H100 80GB HBM3", completed.stderr
    monkeypatch.setenv("PATH", str(tmp_path / "absent"))
    assert install_runtime.nvidia_gpu() is None


def test_numpy_is_pinned_to_the_version_qgis_already_has():
    import numpy

    assert f"numpy=={numpy.__version__}" in install_runtime.pins()


def test_the_headless_command_runs_this_file_with_the_python_of_qgis():
    command = install_runtime.headless_command("onnxruntime")
    assert (
        command
        == f'"{install_runtime.qgis_python()}" "{install_runtime.PLUGIN_DIR / "install_runtime.py"}" onnxruntime'
    )
    assert Path(install_runtime.qgis_python()).name.startswith("python")


def test_the_dialog_installs_onnx_runtime_with_pip_and_shows_the_log(
    qgis_app, pip_cache, tmp_path, monkeypatch
):
    target = tmp_path / "runtime"
    monkeypatch.setenv(install_runtime.RUNTIME_DIR_ENV, str(target))
    monkeypatch.setattr(sys, "path", list(sys.path))
    dialog = InstallRuntimeDialog(package="onnxruntime", gpu="")
    assert str(target) in dialog.intro.text()
    dialog.start()
    assert not dialog.install_button.isEnabled() and dialog.progress.maximum() == 0  # busy while pip runs
    dialog.reject()
    assert "still running" in dialog.log.toPlainText()
    deadline = time.monotonic() + 240
    while dialog.exit_code is None:
        assert time.monotonic() < deadline, dialog.log.toPlainText()
        QCoreApplication.processEvents()
        time.sleep(0.05)
    log = dialog.log.toPlainText()
    assert dialog.exit_code == 0, log
    assert "Successfully installed" in log and "onnxruntime" in log
    assert (target / "onnxruntime" / "__init__.py").is_file()
    assert sys.path[-1] == str(target)
    assert dialog.progress.value() == dialog.progress.maximum() == 1


def test_the_dialog_reports_a_failed_pip_and_lets_the_user_retry(qgis_app, pip_cache, tmp_path, monkeypatch):
    blocker = tmp_path / "file-in-the-way"
    blocker.write_text("a file where the runtime folder should be")
    monkeypatch.setenv(install_runtime.RUNTIME_DIR_ENV, str(blocker / "runtime"))
    dialog = InstallRuntimeDialog(package="onnxruntime", gpu="")
    dialog.start()
    deadline = time.monotonic() + 60
    while dialog.exit_code is None:
        assert time.monotonic() < deadline
        QCoreApplication.processEvents()
        time.sleep(0.05)
    assert dialog.exit_code != 0
    assert dialog.install_button.isEnabled()
    log = dialog.log.toPlainText()
    assert "Cannot create" in log and "file-in-the-way" in log and "Traceback" not in log
    assert os.listdir(tmp_path) == ["file-in-the-way"]

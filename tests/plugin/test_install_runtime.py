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

    assert install_runtime.pins() == [f"numpy=={numpy.__version__}"]
    assert install_runtime.pins("1.24.2") == ["numpy==1.24.2"]  # QGIS's, as the dialog passes it


def fake_python(folder: Path, version: str) -> Path:
    """An executable ``python3`` that answers like a Python ``version`` and records each call."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "python3"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{folder}/calls"\necho {version}\n')
    script.chmod(0o755)
    return script


def test_a_foreign_python3_first_on_path_does_not_change_the_interpreter(tmp_path, monkeypatch):
    """Inside QGIS sys.executable is whatever python3 comes first on PATH (pyenv, conda); the installer
    takes the interpreter of the installation QGIS's Python runs from."""
    foreign = fake_python(tmp_path / "pyenv-shims", "3.12.1")
    monkeypatch.setenv("PATH", f"{foreign.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sys, "executable", str(foreign))
    python = install_runtime.qgis_python()
    assert Path(python).parent == Path(sys.prefix) / "bin"
    assert Path(python).name == f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert install_runtime.interpreter_version(python) == install_runtime.qgis_python_version()
    assert install_runtime.headless_command("onnxruntime").startswith(f'"{python}" ')
    dialog = InstallRuntimeDialog(package="onnxruntime", gpu="")
    assert dialog.python == python and dialog.install_button.isEnabled()
    assert f"Python: {python} (version {install_runtime.qgis_python_version()};" in dialog.interpreter.text()
    assert not (foreign.parent / "calls").exists()


def test_interpreters_are_looked_for_where_each_platform_installs_them():
    linux = install_runtime.python_candidates(["/usr"], "Linux", (3, 11))
    assert linux[:2] == [Path("/usr/bin/python3.11"), Path("/usr/bin/python3")]
    osgeo4w = install_runtime.python_candidates([r"C:\OSGeo4W\apps\Python312"], "Windows", (3, 12))
    assert osgeo4w[0] == Path(r"C:\OSGeo4W\apps\Python312") / "python.exe"
    bundle = "/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.9"
    macos = install_runtime.python_candidates([bundle], "Darwin", (3, 9))
    assert Path("/Applications/QGIS.app/Contents/MacOS/bin/python3") in macos


def test_an_interpreter_of_another_python_version_is_refused_before_anything_is_installed(
    qgis_app, tmp_path, monkeypatch
):
    foreign = fake_python(tmp_path / "conda" / "bin", "3.12.1")
    monkeypatch.setattr(install_runtime, "qgis_python", lambda: str(foreign))
    monkeypatch.setattr(install_runtime, "qgis_python_version", lambda: "3.11.2")
    dialog = InstallRuntimeDialog(package="onnxruntime", gpu="")
    assert not dialog.install_button.isEnabled()
    assert "is Python 3.12.1, but QGIS runs Python 3.11.2" in dialog.interpreter.text()
    messages = []
    target = tmp_path / "runtime"
    assert install_runtime.install("onnxruntime", target, log=messages.append, qgis_version="3.11.2") == 1
    assert "would not load in QGIS" in messages[0] and not target.exists()


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
    assert f"for {install_runtime.qgis_python()} (Python {install_runtime.qgis_python_version()})" in log
    assert (target / "onnxruntime" / "__init__.py").is_file()
    import numpy

    # onnxruntime's numpy, if pip put one there, is QGIS's version
    assert {path.name for path in target.glob("numpy-*.dist-info")} <= {
        f"numpy-{numpy.__version__}.dist-info"
    }
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

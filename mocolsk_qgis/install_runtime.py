"""Install ONNX Runtime or PyTorch for the plugin, into a folder of its own that it puts on sys.path.

The folder sits beside the QGIS profile's ``python/plugins`` (``python/mocolsk_runtime/pyX.Y``),
so reinstalling or updating the plugin keeps it, and nothing is written into the Python
installation QGIS ships with. pip installs with ``--target``; numpy is pinned to the version
the running Python already has, so the runtime matches the numpy GDAL and QGIS use. The folder
is appended to sys.path, so it never shadows a package QGIS already has.

Plain Python (no qgis import), so it also runs headless, with the Python that runs QGIS:

    <QGIS python> <plugin folder>/install_runtime.py [onnxruntime|onnxruntime-gpu|torch]

The plugin's menu action runs this same file in a QProcess and shows its log.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
RUNTIME_DIR_ENV = "MOCOLSK_RUNTIME_DIR"
# The plugin's menu under Plugins, where the installer's action sits.
MENU = "MoCoLSK"
PACKAGES = {
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime",
    "torch": "torch",
}
TITLES = {"onnxruntime": "ONNX Runtime", "onnxruntime-gpu": "ONNX Runtime with CUDA", "torch": "PyTorch"}
# Packages the runtime needs in the very version the running Python has (compiled extensions
# built against another numpy crash GDAL's or the runtime's).
PINNED = ("numpy",)


def runtime_dir(plugin_dir: Path = PLUGIN_DIR) -> Path:
    """Where runtimes go: $MOCOLSK_RUNTIME_DIR, else ``<profile>/python/mocolsk_runtime/pyX.Y`` when
    the plugin is installed in a QGIS profile, else a folder in the user's home."""
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    if os.environ.get(RUNTIME_DIR_ENV):
        return Path(os.environ[RUNTIME_DIR_ENV])
    if plugin_dir.parent.name == "plugins":
        return plugin_dir.parent.parent / "mocolsk_runtime" / version
    return Path.home() / ".mocolsk_qgis" / "runtime" / version


def activate(folder: Path | None = None) -> bool:
    """Append the runtime folder to sys.path when it exists; True when it is on the path."""
    folder = folder or runtime_dir()
    if not folder.is_dir():
        return False
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
        importlib.invalidate_caches()
    return True


def _engine_gpu_probe():
    """The engine's ``gpu`` module, loaded by its path: this file also runs as a plain script, outside
    the plugin package. The engine sits inside the plugin folder in the zip, beside it in the repository."""
    inside = PLUGIN_DIR / "engine" / "gpu.py"
    path = inside if inside.is_file() else PLUGIN_DIR.parent / "engine" / "gpu.py"
    spec = importlib.util.spec_from_file_location("mocolsk_engine_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nvidia_gpu() -> str | None:
    """The name of the first NVIDIA GPU that ``nvidia-smi`` lists, or None (the engine's probe)."""
    return _engine_gpu_probe().nvidia_gpu_name()


def recommended_package(runtime: str = "onnxruntime", gpu: str | None = None) -> str:
    """The pip package for ``runtime`` (onnxruntime or torch) on this machine: onnxruntime-gpu
    when an NVIDIA GPU is present."""
    if runtime == "onnxruntime" and gpu:
        return "onnxruntime-gpu"
    return runtime


def qgis_python() -> str:
    """The Python interpreter of the running QGIS (inside QGIS, sys.executable is QGIS itself)."""
    if Path(sys.executable).name.lower().startswith("python"):
        return sys.executable
    names = ("python.exe", "python3.exe") if platform.system() == "Windows" else ("python3", "python")
    for folder in (Path(sys.exec_prefix), Path(sys.exec_prefix, "bin")):
        for name in names:
            if (folder / name).is_file():
                return str(folder / name)
    return shutil.which("python3") or "python3"


def headless_command(package: str) -> str:
    """The shell command that installs ``package`` for this QGIS without its GUI."""
    return f'"{qgis_python()}" "{PLUGIN_DIR / "install_runtime.py"}" {package}'


def pip_command(package: str, target: Path, constraints: Path, cache_dir: Path | None = None) -> list[str]:
    command = [
        qgis_python(),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--upgrade",
        "--only-binary=:all:",
        "--target",
        str(target),
        "--constraint",
        str(constraints),
    ]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    return [*command, package]


def pins() -> list[str]:
    """``name==version`` of each pinned package the running Python has."""
    found = []
    for name in PINNED:
        try:
            found.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def install(
    package: str,
    target: Path | None = None,
    log: Callable[[str], None] = print,
    cache_dir: Path | None = None,
) -> int:
    """pip-install ``package`` into ``target`` (default: ``runtime_dir()``), streaming pip's log;
    returns pip's exit status (0: installed)."""
    if package not in PACKAGES:
        raise ValueError(f"{package!r} is not one of {', '.join(PACKAGES)}")
    target = target or runtime_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        log(
            f"Cannot create {target} ({error.strerror}); give another folder with --target or the "
            f"{RUNTIME_DIR_ENV} environment variable."
        )
        return 1
    python = qgis_python()
    has_pip = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True)
    if has_pip.returncode != 0:
        log(
            f"{python} has no pip. "
            + (
                "Install it with `sudo apt install python3-pip` (Debian, Ubuntu) or your system's "
                "package manager, then try again."
                if platform.system() == "Linux"
                else "Reinstall QGIS with its Python (the OSGeo4W and macOS installers ship pip)."
            )
        )
        return has_pip.returncode
    log(f"Installing {TITLES[package]} ({package}) for {python} into {target}")
    with tempfile.TemporaryDirectory() as work:
        constraints = Path(work, "constraints.txt")
        constraints.write_text("\n".join(pins()) + "\n")
        process = subprocess.Popen(
            pip_command(package, target, constraints, cache_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONNOUSERSITE": "1"},
        )
        for line in process.stdout:
            log(line.rstrip())
        status = process.wait()
    if status == 0:
        log(f"{TITLES[package]} is installed in {target}; the plugin adds that folder to Python's path.")
    else:
        log(f"pip failed (exit status {status}); the log above says why. Nothing of the plugin was changed.")
    return status


def main(argv: list[str] | None = None) -> int:
    gpu = nvidia_gpu()
    parser = argparse.ArgumentParser(
        prog="install_runtime.py",
        description="Install ONNX Runtime or PyTorch for the MoCoLSK QGIS plugin, into a folder it puts on "
        "Python's path. Run it with the Python that runs QGIS.",
    )
    parser.add_argument(
        "package",
        nargs="?",
        choices=sorted(PACKAGES),
        default=recommended_package("onnxruntime", gpu),
        help="default: onnxruntime, or onnxruntime-gpu when nvidia-smi lists a GPU",
    )
    parser.add_argument("--target", type=Path, help=f"install here instead of {runtime_dir()}")
    parser.add_argument("--cache-dir", type=Path, help="pip's download cache")
    args = parser.parse_args(argv)
    if gpu:
        print(f"NVIDIA GPU found: {gpu}")
    return install(args.package, args.target, cache_dir=args.cache_dir)


if __name__ == "__main__":
    raise SystemExit(main())

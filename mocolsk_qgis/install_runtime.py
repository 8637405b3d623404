"""Install ONNX Runtime or PyTorch for the plugin, into a folder of its own that it puts on sys.path.

The folder sits beside the QGIS profile's ``python/plugins`` (``python/mocolsk_runtime/pyX.Y``),
so reinstalling or updating the plugin keeps it, and nothing is written into the Python
installation QGIS ships with. pip installs with ``--target``; numpy is pinned to the version
QGIS already has, so the runtime matches the numpy GDAL and QGIS use. The folder is appended
to sys.path, so it never shadows a package QGIS already has.

Plain Python (no qgis import), so it also runs headless, with the Python that runs QGIS:

    <QGIS python> <plugin folder>/install_runtime.py [onnxruntime|onnxruntime-gpu|torch]

The plugin's menu action runs this same file in a QProcess and shows its log. Inside QGIS
``sys.executable`` is not QGIS's interpreter (Python derives it from the first ``python3`` on
PATH, which may be a pyenv or conda one), so ``qgis_python`` looks in the installation QGIS's
Python runs from (``sys.prefix``) instead, and the dialog refuses an interpreter whose version
differs from QGIS's.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import platform
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


def python_candidates(prefixes, system: str, version: tuple[int, int]) -> list[Path]:
    """Where the interpreter of a Python installed at each of ``prefixes`` lies, most specific name first:
    ``<prefix>/bin/pythonX.Y`` on Linux and macOS (also a QGIS.app bundle's ``Contents/MacOS/bin``),
    ``<prefix>\\python.exe`` on Windows (OSGeo4W's ``apps\\PythonXY``)."""
    major, minor = version
    candidates = []
    for prefix in map(Path, prefixes):
        if system == "Windows":
            folders, names = [prefix], ["python.exe", f"python{major}.exe"]
        else:
            folders, names = [prefix / "bin"], [f"python{major}.{minor}", f"python{major}", "python"]
            if ".app/Contents" in prefix.as_posix():
                bundle = prefix.as_posix().split(".app/Contents")[0] + ".app/Contents"
                folders.append(Path(bundle, "MacOS", "bin"))
        candidates += [folder / name for folder in folders for name in names]
    return candidates


def qgis_python() -> str:
    """The interpreter of the Python that runs QGIS (or this script): the one in its installation's prefix.

    Not ``sys.executable`` first: inside QGIS that is either QGIS itself or whatever ``python3`` comes first
    on PATH."""
    prefixes = dict.fromkeys((sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix))
    for candidate in python_candidates(prefixes, platform.system(), sys.version_info[:2]):
        if candidate.is_file():
            return str(candidate)
    if Path(sys.executable).name.lower().startswith("python"):
        return sys.executable
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def interpreter_version(python: str) -> str | None:
    """The full version ("3.11.2") of the interpreter ``python``, or None when it does not run."""
    try:
        answer = subprocess.run(
            [python, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = answer.stdout.strip()
    return version if answer.returncode == 0 and version[:1].isdigit() else None


def qgis_python_version() -> str:
    """The version of the Python running now ("3.11.2"): inside QGIS, QGIS's."""
    return ".".join(map(str, sys.version_info[:3]))


def interpreter_problem(python: str, version: str | None, expected: str) -> str | None:
    """Why ``python`` (reporting ``version``) must not install for a QGIS that runs Python ``expected``,
    or None when it may: compiled packages built for another X.Y do not load in QGIS."""
    if version is None:
        return (
            f"{python} does not run, so the runtime cannot be installed for QGIS's Python {expected}. "
            "Install the runtime from a shell with the Python that QGIS ships with."
        )
    if version.split(".")[:2] != expected.split(".")[:2]:
        return (
            f"{python} is Python {version}, but QGIS runs Python {expected}: packages installed with it "
            f"would not load in QGIS. Run this installer with QGIS's own Python {expected}."
        )
    return None


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


def numpy_version() -> str | None:
    """The version of the numpy this Python uses (the imported one when numpy is loaded, as in QGIS)."""
    module = sys.modules.get("numpy")
    if module is not None:
        return module.__version__
    try:
        return importlib.metadata.version("numpy")
    except importlib.metadata.PackageNotFoundError:
        return None


def pins(numpy: str | None = None) -> list[str]:
    """``name==version`` of each pinned package: numpy at ``numpy`` (QGIS's, passed by the dialog), else at
    the version the running Python has. Compiled extensions built against another numpy crash GDAL's or the
    runtime's."""
    numpy = numpy or numpy_version()
    return [f"numpy=={numpy}"] if numpy else []


def install(
    package: str,
    target: Path | None = None,
    log: Callable[[str], None] = print,
    cache_dir: Path | None = None,
    numpy: str | None = None,
    qgis_version: str | None = None,
) -> int:
    """pip-install ``package`` into ``target`` (default: ``runtime_dir()``) with the Python of this
    installation, numpy pinned to ``numpy`` (default: this Python's), streaming pip's log; returns pip's exit
    status (0: installed). With ``qgis_version`` (the Python version QGIS runs) an interpreter of another
    version is refused before anything is installed."""
    if package not in PACKAGES:
        raise ValueError(f"{package!r} is not one of {', '.join(PACKAGES)}")
    python = qgis_python()
    version = interpreter_version(python)
    problem = interpreter_problem(python, version, qgis_version or qgis_python_version())
    if problem:
        log(problem)
        return 1
    target = target or runtime_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        log(
            f"Cannot create {target} ({error.strerror}); give another folder with --target or the "
            f"{RUNTIME_DIR_ENV} environment variable."
        )
        return 1
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
    pinned = pins(numpy)
    log(
        f"Installing {TITLES[package]} ({package}) for {python} (Python {version}) into {target}"
        + (f", with {', '.join(pinned)} as QGIS has" if pinned else "")
    )
    with tempfile.TemporaryDirectory() as work:
        constraints = Path(work, "constraints.txt")
        constraints.write_text("\n".join(pinned) + "\n")
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
    parser.add_argument("--numpy", help="the numpy version QGIS uses (default: this Python's)")
    parser.add_argument(
        "--qgis-python-version", help="the Python version QGIS runs: refuse to install for another one"
    )
    args = parser.parse_args(argv)
    if gpu:
        print(f"NVIDIA GPU found: {gpu}")
    return install(
        args.package,
        args.target,
        cache_dir=args.cache_dir,
        numpy=args.numpy,
        qgis_version=args.qgis_python_version,
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""pyproject.toml makes `engine` and `training` one installable package with the plugin's version."""

import configparser
import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

import engine

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_package_version_is_the_engines_and_the_plugins():
    assert PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "engine.__version__"}
    metadata = configparser.ConfigParser()
    metadata.read(REPO / "metadata.txt", encoding="utf-8")
    assert metadata["general"]["version"] == engine.__version__


def test_every_folder_of_python_code_in_engine_and_training_is_installed():
    """A folder without __init__.py, or outside the include patterns, would be left out of the wheel."""
    code_folders = {
        ".".join(folder.relative_to(REPO).parts)
        for top in ("engine", "training")
        for folder in [REPO / top, *(REPO / top).rglob("*")]
        if folder.is_dir() and any(folder.glob("*.py"))
    }
    installed = set(PROJECT["tool"]["setuptools"]["packages"]["find"]["include"])
    found = {
        name
        for name in find_namespace_packages(str(REPO), include=sorted(installed))
        if (REPO.joinpath(*name.split(".")) / "__init__.py").is_file()
    }
    assert code_folders == found

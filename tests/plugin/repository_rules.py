"""The checks plugins.qgis.org applies to an uploaded zip (qgis/QGIS-Django, plugins/validator.py),
offline: the site also fetches each URL, which needs a network and is left to the upload."""

from __future__ import annotations

import configparser
import re
import zipfile
from pathlib import Path
from urllib.parse import urlparse

MAX_SIZE_BYTES = 25_000_000
REQUIRED = (
    "name",
    "description",
    "version",
    "qgisMinimumVersion",
    "author",
    "email",
    "about",
    "tracker",
    "repository",
)
BOOLEANS = ("experimental", "deprecated", "server")
PLACEHOLDER_URLS = {"tracker": "http://bugs", "repository": "http://repo", "homepage": "http://homepage"}
FORBIDDEN_DIRS = ("__MACOSX", ".git", "__pycache__")
# ELF, Windows PE, Mach-O (32/64 bit, both byte orders) and universal binaries.
EXECUTABLE_MAGIC = (
    b"\x7fELF",
    b"MZ",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
)
VERSION = re.compile(r"^\d+(\.\d+){1,2}$")


def repository_problems(zip_path: Path) -> list[str]:
    """Every reason plugins.qgis.org would refuse ``zip_path``; empty when it would accept it."""
    problems = []
    if zip_path.stat().st_size > MAX_SIZE_BYTES:
        problems.append(f"the zip is {zip_path.stat().st_size} bytes, over the {MAX_SIZE_BYTES} limit")
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        return ["the file is not a zip"]
    with archive:
        names = archive.namelist()
        bad = archive.testzip()
        if bad:
            problems.append(f"{bad} is corrupt in the zip")
        for name in names:
            parts = name.split("/")
            if ".." in name or name.startswith("/"):
                problems.append(f"{name} holds path information")
            if name.endswith((".pyc", ".pyo")):
                problems.append(f"{name} is compiled Python")
            problems += [f"{name} is inside a {d} folder" for d in FORBIDDEN_DIRS if d in parts[:-1]]
            if not name.endswith("/") and archive.read(name)[:4].startswith(EXECUTABLE_MAGIC):
                problems.append(f"{name} is a binary executable")
        roots = sorted({name.split("/")[0] for name in names})
        if len(roots) != 1:
            return [*problems, f"the zip must hold one plugin folder, it holds {roots}"]
        root = roots[0]
        if not re.match(r"^[A-Za-z][A-Za-z0-9-_]+$", root):
            problems.append(
                f"folder name {root!r} must start with a letter and hold only letters, digits, - and _"
            )
        for required in ("__init__.py", "metadata.txt", "LICENSE"):
            if f"{root}/{required}" not in names:
                problems.append(f"{root}/{required} is missing")
        if f"{root}/metadata.txt" not in names:
            return problems
        parser = configparser.ConfigParser()
        parser.optionxform = str
        try:
            parser.read_string(archive.read(f"{root}/metadata.txt").decode("utf-8"))
        except (configparser.Error, UnicodeDecodeError) as error:
            return [*problems, f"metadata.txt does not parse: {error}"]
        if not parser.has_section("general"):
            return [*problems, "metadata.txt has no [general] section"]
        general = dict(parser.items("general"))
        problems += [
            f"metadata {key} is missing or empty" for key in REQUIRED if not general.get(key, "").strip()
        ]
        for key in ("version", "qgisMinimumVersion", "qgisMaximumVersion"):
            if key in general and not VERSION.match(general[key].strip()):
                problems.append(f"metadata {key} {general[key]!r} is not a dotted version")
        for key in BOOLEANS:
            if key in general and general[key].strip().lower() not in ("true", "false", "1", "0"):
                problems.append(f"metadata {key} {general[key]!r} is not a boolean")
        for key, placeholder in PLACEHOLDER_URLS.items():
            url = general.get(key, "").strip()
            if not url:
                continue
            parsed = urlparse(url)
            if url == placeholder or not (parsed.scheme in ("http", "https") and parsed.netloc):
                problems.append(f"metadata {key} {url!r} is not a usable URL")
        if "/" in general.get("author", ""):
            problems.append("metadata author must not contain slashes")
        icon = general.get("icon", "").strip().removeprefix("./")
        if icon and f"{root}/{icon}" not in names:
            problems.append(f"metadata icon {icon} is not in the zip")
    return problems

"""The engine and the resources, wherever the plugin runs from.

In the installed zip the engine and resources are copied inside the plugin folder
(``mocolsk_qgis/engine``, ``mocolsk_qgis/resources``); in the repository they sit beside it.
The engine uses relative imports only, so both locations load the same code.
"""

from importlib import import_module
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent

if (PLUGIN_DIR / "engine" / "__init__.py").is_file():
    from . import engine
else:
    import engine

errors = import_module(f"{engine.__name__}.errors")
package = import_module(f"{engine.__name__}.package")

RESOURCES_DIR = next(
    (folder for folder in (PLUGIN_DIR / "resources", PLUGIN_DIR.parent / "resources") if folder.is_dir()),
    PLUGIN_DIR / "resources",
)


def engine_module(name: str):
    """An engine submodule, imported when an algorithm runs so that loading the plugin
    never pulls in GDAL-heavy or optional code."""
    return import_module(f"{engine.__name__}.{name}")


def resource(*parts: str) -> Path:
    """Path of a file under ``resources/`` (icons, styles, models)."""
    return RESOURCES_DIR.joinpath(*parts)

"""The GDAL boundary: only `engine/raster/` talks to GDAL. The scene stages, the pipeline, the guidance
stack, the evaluation and the plugin move numpy windows and pass GDAL handles on as opaque values;
a GDAL method called anywhere else would put raster I/O back where it cannot be found."""

from __future__ import annotations

import ast
from pathlib import Path

from osgeo import gdal

ROOT = Path(__file__).resolve().parents[2]
RASTER_LAYER = ROOT / "engine" / "raster"
# Every method and attribute of GDAL's datasets, bands and drivers (GetRasterBand, ReadAsArray, WriteArray,
# FlushCache, SetMetadata, RasterXSize, ...), as this GDAL names them.
GDAL_HANDLE_NAMES = {
    name
    for kind in (gdal.MajorObject, gdal.Dataset, gdal.Band, gdal.Driver)
    for name in dir(kind)
    if name[:1].isupper()
}
GDAL_MODULES = {"gdal", "osr", "ogr", "gdal_array", "gdalconst"}


def sources_outside_the_raster_layer() -> list[Path]:
    files = [*sorted((ROOT / "engine").rglob("*.py")), *sorted((ROOT / "mocolsk_qgis").rglob("*.py"))]
    return [path for path in files if RASTER_LAYER not in path.parents]


def gdal_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Each GDAL import, GDAL module attribute and GDAL handle method or attribute in ``path``, as
    "file:line name"."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        name = None
        if isinstance(node, ast.Import):
            name = next((alias.name for alias in node.names if alias.name.split(".")[0] == "osgeo"), None)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "osgeo":
            name = f"from {node.module} import"
        elif isinstance(node, ast.Attribute):
            on_module = isinstance(node.value, ast.Name) and node.value.id in GDAL_MODULES
            if on_module or node.attr in GDAL_HANDLE_NAMES:
                name = f".{node.attr}"
        if name:
            uses.append((node.lineno, f"{path.relative_to(root)}:{node.lineno} {name}"))
    return [use for _, use in sorted(uses)]


def test_the_scan_finds_a_gdal_method_call(tmp_path):
    code = tmp_path / "stage.py"
    code.write_text("def f(dataset):\n    return dataset.GetRasterBand(1).ReadAsArray(0, 0, 4, 4)\n")
    assert [use.split(" ")[1] for use in gdal_uses(code, tmp_path)] == [".GetRasterBand", ".ReadAsArray"]


def test_no_gdal_call_outside_engine_raster():
    uses = [use for path in sources_outside_the_raster_layer() for use in gdal_uses(path)]
    listing = "\n".join(uses)
    assert uses == [], f"GDAL used outside engine/raster/ (add a function there and call it):\n{listing}"

"""Downscale LST's parameters, as Processing sees them, stay what the recorded definitions say: name, class,
label, default, flags (Advanced and Optional), tooltip and the type-specific settings, in order. They were
recorded from the algorithm before its declarations became data; regenerate the file only for a deliberate
change: ``python -m tests.plugin.test_downscale_parameters`` (QT_QPA_PLATFORM=offscreen)."""

import json
from pathlib import Path

RECORDED = Path(__file__).parent / "data" / "downscale_parameters.json"
# Settings each parameter class adds to the common ones, read through these methods when it has them (not
# the extensions a raster destination offers, which depend on this machine's GDAL drivers).
SETTINGS = (
    "options",
    "usesStaticStrings",
    "allowMultiple",
    "dataType",
    "minimum",
    "maximum",
    "parentLayerParameterName",
    "layerType",
    "createByDefault",
    "fileFilter",
    "behavior",
    "extension",
    "multiLine",
    "defaultFileExtension",
)


def machine_neutral(value, replacements: dict):
    """``value`` with what depends on this machine (its runtime, its bundled packages) named instead."""
    if isinstance(value, str):
        for text, name in replacements.items():
            value = value.replace(text, name)
        return value
    if isinstance(value, (list, tuple)):
        return [machine_neutral(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: machine_neutral(item, replacements) for key, item in value.items()}
    return value


def described(parameter, replacements: dict) -> dict:
    """What Processing knows of one parameter definition, as plain JSON values."""
    description = {
        "name": parameter.name(),
        "class": type(parameter).__name__,
        "type": parameter.type(),
        "description": parameter.description(),
        "default": parameter.defaultValue(),
        "flags": int(parameter.flags()),
        "help": parameter.help(),
    }
    for setting in SETTINGS:
        if hasattr(parameter, setting):
            value = getattr(parameter, setting)()
            description[setting] = (
                value if isinstance(value, (str, bool, list, float)) or value is None else int(value)
            )
    return json.loads(json.dumps(machine_neutral(description, replacements)))


def downscale_definitions() -> dict:
    """The parameters and outputs of a fresh Downscale LST algorithm."""
    from mocolsk_qgis._engine import package
    from mocolsk_qgis.algorithms.common import bundled_models_help, runtime_description
    from mocolsk_qgis.algorithms.downscale import DownscaleAlgorithm

    algorithm = DownscaleAlgorithm()
    algorithm.initAlgorithm()
    replacements = {
        runtime_description(): "{runtime}",
        bundled_models_help(): "{bundled_models}",
        **{name: "{bundled_package}" for name in package.bundled_packages()},
    }
    return {
        "parameters": [described(p, replacements) for p in algorithm.parameterDefinitions()],
        "outputs": [
            {"name": o.name(), "type": o.type(), "description": o.description()}
            for o in algorithm.outputDefinitions()
        ],
    }


def test_downscale_declares_the_recorded_parameters_and_outputs_in_order(mocolsk_provider):
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    now = downscale_definitions()
    assert [p["name"] for p in now["parameters"]] == [p["name"] for p in recorded["parameters"]]
    for current, expected in zip(now["parameters"], recorded["parameters"]):
        assert current == expected, current["name"]
    assert now["outputs"] == recorded["outputs"]


if __name__ == "__main__":
    from qgis.core import QgsApplication

    application = QgsApplication([], False)
    application.initQgis()
    RECORDED.write_text(
        json.dumps(downscale_definitions(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )

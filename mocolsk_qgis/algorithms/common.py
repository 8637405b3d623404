"""What the MoCoLSK algorithms share: the model parameters and the bridge into the engine.

The bridge turns QgsProcessingFeedback into the engine's progress, cancel and log callbacks,
and every engine error into a QgsProcessingException carrying the engine's message.
"""

import platform
import sys
from pathlib import Path

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
)
from qgis.PyQt.QtGui import QIcon

from .._engine import engine_module, errors, package, resource

MODEL = "MODEL"
MODEL_FILE = "MODEL_FILE"
# The bundled-model option that lets the engine pick the package whose scale matches the pixel ratio.
AUTO_MODEL = "auto"

OPTIONAL_RUNTIMES = ("onnxruntime", "torch")

# (engine value, label) pairs of the LST units every algorithm that reads an LST offers;
# Processing stores the index, the engine wants the value.
LST_UNIT_CHOICES = (
    ("auto", "Auto-detect (from the band's unit, the file name, then the value range)"),
    ("kelvin", "Kelvin"),
    ("celsius", "Celsius"),
    ("landsat_c2_st_dn", "Landsat 8/9 Collection 2 Level-2 ST_B10 (DN x 0.00341802 + 149)"),
    ("modis_lst_dn", "MODIS MOD11/MYD11 LST (DN x 0.02)"),
    ("landsat5_tm_b6_dn", "Landsat 4/5 TM band 6 digital numbers (brightness temperature)"),
)


class MoCoLSKAlgorithm(QgsProcessingAlgorithm):
    """Base class: common metadata and helpers; subclasses declare parameters and run."""

    def createInstance(self):  # noqa: N802 (QGIS API)
        return type(self)()

    def group(self):
        return ""

    def groupId(self):  # noqa: N802
        return ""

    def icon(self):
        return QIcon(str(resource("icons", "mocolsk.svg")))

    def svgIconPath(self):  # noqa: N802
        return str(resource("icons", "mocolsk.svg"))

    def helpUrl(self):  # noqa: N802
        return "https://github.com/mocolsk/mocolsk-qgis#readme"


def with_help(parameter: QgsProcessingParameterDefinition, text: str, advanced: bool = False):
    """Attach the tooltip help of a parameter (and mark it advanced) in one expression."""
    parameter.setHelp(text)
    if advanced:
        parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


def bundled_models_help() -> str:
    """One line per bundled package: name, scale and the guidance bands it expects."""
    lines = []
    for name, card_path in package.bundled_packages().items():
        try:
            card = package.load_package(card_path, verify=False).card
        except errors.PackageError as error:
            lines.append(f"{name}: unusable ({error})")
            continue
        lines.append(f"{name}: x{card.scale}, guidance bands {', '.join(card.guidance_band_names)}")
    return "; ".join(lines) or "none installed"


def bundled_accuracy_help() -> str:
    """An HTML paragraph: for each bundled package, its held-out accuracy and the method
    its benchmark recommends at its scale (the engine's ``accuracy_summary``)."""
    card_module = load_engine_module("card")
    items = []
    for name, card_path in package.bundled_packages().items():
        try:
            card = package.load_package(card_path, verify=False).card
        except errors.PackageError:
            continue
        summary = card_module.accuracy_summary(card)
        if summary:
            items.append(f"<li>x{card.scale} ({name}): {summary}.</li>")
    if not items:
        return ""
    return (
        "<p><b>Which method?</b> Measured on whole real Landsat scenes never used in training (see the "
        "README's "
        "accuracy section); choose the recommended method for your scale:</p><ul>" + "".join(items) + "</ul>"
    )


def model_parameters(auto: bool = False) -> list:
    """The bundled-model choice and the optional custom package file.

    With ``auto`` the first option and default is "auto": the engine picks the bundled package whose scale
    matches the LST/guidance pixel ratio, so that a first run needs no model choice.
    """
    names = list(package.bundled_packages())
    options = [AUTO_MODEL, *names] if auto else names
    auto_help = (
        f"{AUTO_MODEL} (the default) uses the bundled model whose scale matches the pixel ratio, e.g. "
        "x4 for a 120 m LST with 30 m guidance; the log says which. "
        if auto
        else ""
    )
    label = (
        "Model (bundled package; auto: the one matching the pixel ratio)"
        if auto
        else "Model (bundled package)"
    )
    choice = with_help(
        QgsProcessingParameterEnum(
            MODEL,
            label,
            options=options,
            defaultValue=options[0] if options else None,
            optional=True,
            usesStaticStrings=True,
        ),
        "A model package shipped with the plugin, chosen by name; its card fixes the scale factor and the "
        "guidance "
        f"bands it expects, in order. {auto_help}Bundled: {bundled_models_help()}.",
    )
    custom = with_help(
        QgsProcessingParameterFile(
            MODEL_FILE,
            "Model package file (overrides the bundled choice)",
            behavior=QgsProcessingParameterFile.File,
            fileFilter="MoCoLSK model package (*.json *.onnx)",
            optional=True,
        ),
        "A model package exported with `python -m training export`: the NAME.json card beside its "
        "NAME.onnx weights. Either file may be chosen.",
    )
    return [choice, custom]


def chosen_model(
    algorithm: QgsProcessingAlgorithm, parameters: dict, context, auto: bool = False
) -> str | None:
    """The package file if one is given, else the bundled package name; with ``auto`` (parameters from
    ``model_parameters(auto=True)``), None when none is chosen: the engine then picks by the pixel ratio."""
    custom = algorithm.parameterAsFile(parameters, MODEL_FILE, context)
    if custom:
        return custom
    name = algorithm.parameterAsEnumString(parameters, MODEL, context)
    if auto and name in ("", AUTO_MODEL):
        return None
    if name:
        return name
    raise QgsProcessingException(
        "No model chosen: pick a bundled model package, or give a model package file "
        "(NAME.json beside NAME.onnx)."
    )


def file_path(layer, role: str) -> str:
    """The file behind a raster layer; the engine reads files with GDAL, not QGIS layers."""
    if layer is None:
        raise QgsProcessingException(
            f"The {role} layer could not be loaded; check that it exists and is a raster."
        )
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            f"The {role} layer {layer.name()!r} is not a file-based raster (provider "
            f"{layer.providerType()!r}); "
            f"save it as a GeoTIFF first (Raster > Conversion > Translate) and use that file."
        )
    return layer.source()


def install_hint(module: str) -> str:
    """The command that installs ``module`` into the Python this QGIS runs."""
    if platform.system() == "Windows":
        return f"For this QGIS: in its OSGeo4W Shell run `python -m pip install {module}`, then restart QGIS."
    python = Path(sys.exec_prefix, "bin", "python3")
    return (
        f"For this QGIS (Python {sys.version_info.major}.{sys.version_info.minor} in {sys.exec_prefix}): run "
        f"`{python} -m pip install --user {module}` (on Debian/Ubuntu add --break-system-packages), then "
        "restart QGIS."
    )


def missing_module(error: BaseException) -> str | None:
    """The optional runtime (onnxruntime, torch) whose absence caused ``error``, if any."""
    while error is not None:
        if isinstance(error, ImportError) and error.name and error.name.split(".")[0] in OPTIONAL_RUNTIMES:
            return error.name.split(".")[0]
        error = error.__cause__
    return None


def processing_error(error: Exception) -> QgsProcessingException:
    """The engine's message, plus the exact install command when a runtime is missing."""
    module = missing_module(error)
    return QgsProcessingException(f"{error} {install_hint(module)}" if module else str(error))


def load_engine_module(name: str):
    """An engine module; a missing optional runtime becomes an explanation, not a traceback."""
    try:
        return engine_module(name)
    except ImportError as error:
        module = missing_module(error)
        if module is None:
            raise
        raise QgsProcessingException(
            f"The MoCoLSK engine needs the Python package {module}, which QGIS's Python lacks. "
            f"{install_hint(module)}"
        ) from error


class EngineCallbacks:
    """Progress, cancel and log callbacks for the engine, backed by a Processing feedback."""

    def __init__(self, feedback):
        self.feedback = feedback

    def progress(self, percent: float) -> None:
        self.feedback.setProgress(percent)

    def is_cancelled(self) -> bool:
        return self.feedback.isCanceled()

    def log(self, message: str) -> None:
        self.feedback.pushInfo(message)


def run_engine(feedback, function, *args, **kwargs):
    """Call an engine function with the feedback callbacks; engine errors become
    QgsProcessingException, a cancellation says that nothing was written."""
    callbacks = EngineCallbacks(feedback)
    try:
        return function(
            *args,
            progress=callbacks.progress,
            is_cancelled=callbacks.is_cancelled,
            log=callbacks.log,
            **kwargs,
        )
    except errors.Cancelled as error:
        raise QgsProcessingException(f"Cancelled: {error}") from error
    except errors.EngineError as error:
        raise processing_error(error) from error

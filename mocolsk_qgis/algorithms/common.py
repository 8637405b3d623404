"""What the MoCoLSK algorithms share: the model parameters and the bridge into the engine.

The bridge turns QgsProcessingFeedback into the engine's progress, cancel and log callbacks,
and every engine error into a QgsProcessingException carrying the engine's message.
"""

import functools
import re
from dataclasses import dataclass, field

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingUtils,
)
from qgis.PyQt.QtCore import QLocale
from qgis.PyQt.QtGui import QIcon

from .. import install_runtime
from .._engine import engine_module, errors, package, resource
from ..i18n import tr

MODEL = "MODEL"
MODEL_FILE = "MODEL_FILE"
# The bundled-model option that lets the engine pick the package whose scale matches the pixel ratio.
AUTO_MODEL = engine_module("auto_model").AUTO_MODEL

OPTIONAL_RUNTIMES = ("onnxruntime", "torch")


def help_html(algorithm: str, **values) -> str:
    """The algorithm's help page, ``resources/help/<algorithm>.html``, in the QGIS language when a
    ``<algorithm>.<lang>.html`` exists; ``values`` fill its ``{placeholders}``."""
    language = QLocale().name().split("_")[0]
    localized = resource("help", f"{algorithm}.{language}.html")
    path = localized if localized.is_file() else resource("help", f"{algorithm}.html")
    return path.read_text(encoding="utf-8").strip().format(**values)


# (engine value, label) pairs of the LST units every algorithm that reads an LST offers;
# Processing stores the index, the engine wants the value. The engine's errors use the same labels.
_units = engine_module("units")


def option_label(label: str) -> str:
    """``label`` without its closing explanation in brackets, for compact drop-downs and batch-table columns;
    the engine's messages quote the whole label, which starts the same."""
    return re.sub(r"\s*\([^()]*\)$", "", label)


LST_UNIT_CHOICES = tuple((name, option_label(_units.UNIT_LABELS[name])) for name in _units.LST_UNITS)


def releases_layers_on_error(process_algorithm):
    """Wraps ``processAlgorithm`` so that a failed run closes the input layers it loaded.

    After a run whose ``processAlgorithm`` raised, QGIS 3.22 keeps that run's processing context, and the
    layers loaded for its raster parameters, alive: two more open files with every failed Downscale LST run
    (measured by the soak test). Removing those layers from the context's temporary store closes them and
    lets the context go.
    """

    @functools.wraps(process_algorithm)
    def wrapper(self, parameters, context, feedback):
        try:
            return process_algorithm(self, parameters, context, feedback)
        except Exception:
            store = context.temporaryLayerStore()
            used = {}
            for definition in self.parameterDefinitions():
                if definition.type() == "raster":
                    layers = [self.parameterAsRasterLayer(parameters, definition.name(), context)]
                elif definition.type() == "multilayer":
                    layers = self.parameterAsLayerList(parameters, definition.name(), context)
                else:
                    continue
                used.update({layer.id(): layer for layer in layers if layer is not None})
            for layer_id in used:
                if store.mapLayer(layer_id) is not None:
                    store.removeMapLayer(store.mapLayer(layer_id))
            raise

    return wrapper


class MoCoLSKAlgorithm(QgsProcessingAlgorithm):
    """Base class: common metadata and helpers; subclasses declare parameters and run."""

    def createInstance(self):  # noqa: N802 (QGIS API)
        return type(self)()

    def tr(self, text: str) -> str:
        return tr(text)

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

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 (QGIS API)
        """Forget the layers to load that have no file: the batch dialog hands an optional output left
        empty (Uncertainty) on as a layer to load, and QGIS 3.22 would then report, in red, that "the
        following layers were not correctly generated" with an empty name."""
        layers = context.layersToLoadOnCompletion()
        if any(not path.strip() for path in layers):
            context.setLayersToLoadOnCompletion({path: d for path, d in layers.items() if path.strip()})
        return {}

    def checkParameterValues(self, parameters, context):  # noqa: N802
        """QGIS's checks; where a raster file does not load, say why (missing, empty, not a raster)
        instead of QGIS's "not found"."""
        ok, message = super().checkParameterValues(parameters, context)
        if ok:
            return ok, message
        for definition in self.parameterDefinitions():
            if definition.type() not in ("raster", "multilayer"):
                continue
            values = parameters.get(definition.name())
            for value in values if isinstance(values, (list, tuple)) else [values]:
                if (
                    isinstance(value, str)
                    and value
                    and not QgsProcessingUtils.mapLayerFromString(
                        value, context, True, QgsProcessingUtils.LayerHint.Raster
                    )
                ):
                    reason = load_engine_module("raster").unreadable_reason(value)
                    return False, f"{definition.description()}: {reason}."
        return ok, message


class RasterDestination(QgsProcessingParameterRasterDestination):
    """A raster destination whose file dialog offers the formats the engine writes (GeoTIFF first)."""

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return [extension.lstrip(".") for extension in load_engine_module("raster").output_formats()]

    def defaultFileExtension(self):  # noqa: N802
        return "tif"


def with_help(parameter: QgsProcessingParameterDefinition, text: str, advanced: bool = False):
    """Attach the tooltip help of a parameter (and mark it advanced) in one expression."""
    parameter.setHelp(text)
    if advanced:
        parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


@dataclass(frozen=True)
class ParameterSpec:
    """One algorithm parameter as data: its class, name, label and tooltip (untranslated, ``tr`` applies
    when it is built), the (value, label) choices of an enum, the class's other keyword arguments, and
    whether it sits under Advanced."""

    kind: type
    name: str
    label: str
    tooltip: str
    choices: tuple = ()
    advanced: bool = False
    arguments: dict = field(default_factory=dict)

    def build(self, **label_values) -> QgsProcessingParameterDefinition:
        """The parameter definition; ``label_values`` fill the label's ``{placeholders}``."""
        arguments = dict(self.arguments)
        if self.choices:
            arguments["options"] = [tr(label) for _, label in self.choices]
        parameter = self.kind(self.name, tr(self.label).format(**label_values), **arguments)
        return with_help(parameter, tr(self.tooltip), self.advanced)


def spec(
    kind: type, name: str, label: str, tooltip: str, choices=(), advanced=False, **arguments
) -> ParameterSpec:
    """A ``ParameterSpec``, with the class's keyword arguments (defaultValue, optional...) given as keywords."""
    return ParameterSpec(kind, name, label, tooltip, tuple(choices), advanced, arguments)


def bundled_models_help() -> str:
    """One line per bundled package: name, scale and the guidance bands it expects."""
    lines = []
    for name, card_path in package.bundled_packages().items():
        try:
            card = package.load_package(card_path, verify=False).card
        except errors.PackageError as error:
            lines.append(tr("{name}: unusable ({error})").format(name=name, error=error))
            continue
        lines.append(
            tr("{name}: x{scale}, guidance bands {bands}").format(
                name=name, scale=card.scale, bands=", ".join(card.guidance_band_names)
            )
        )
    return "; ".join(lines) or tr("none installed")


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
        tr(
            "<p><b>Which method?</b> Measured on whole real Landsat scenes never used in training (see the "
            "README's accuracy section); choose the recommended method for your scale:</p>"
        )
        + "<ul>"
        + "".join(items)
        + "</ul>"
    )


def auto_models_text() -> str:
    """The package Model "auto" runs for each scale (the engine's ``auto_packages``), e.g.
    "x2: mocolsk-x2-landsat-light, x4: mocolsk-x4-landsat-light"."""
    packages = engine_module("auto_model").auto_packages(package.bundled_scales())
    return ", ".join(f"x{scale}: {name}" for scale, name in packages.items()) or tr("none installed")


def model_parameters(auto_label: str | None = None, auto_help: str = "") -> list:
    """The bundled-model choice and the optional custom package file.

    With ``auto_label`` (the choice's label, saying what "auto" does) the first option and default is "auto",
    so that a first run needs no model choice; ``auto_help`` explains it in the tooltip.
    """
    names = list(package.bundled_packages())
    options = [AUTO_MODEL, *names] if auto_label else names
    label = auto_label or tr("Model (bundled package)")
    choice = with_help(
        QgsProcessingParameterEnum(
            MODEL,
            label,
            options=options,
            defaultValue=options[0] if options else None,
            optional=True,
            usesStaticStrings=True,
        ),
        tr(
            "A model package shipped with the plugin, chosen by name; its card fixes the scale factor and the "
            "guidance bands it expects, in order. "
        )
        + auto_help
        + tr("Bundled: {models}.").format(models=bundled_models_help()),
    )
    custom = with_help(
        QgsProcessingParameterFile(
            MODEL_FILE,
            tr("Model package file (overrides Model)"),
            behavior=QgsProcessingParameterFile.File,
            fileFilter=tr("MoCoLSK model package (*.json *.onnx)"),
            optional=True,
        ),
        tr(
            "A model package exported with `python -m training export`: the NAME.json card beside its "
            "NAME.onnx weights. Either file may be chosen."
        ),
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
        tr(
            "No model chosen: pick a bundled model package, or give a model package file "
            "(NAME.json beside NAME.onnx)."
        )
    )


def unloadable_layer_error(role: str, source) -> QgsProcessingException:
    """Why the ``role`` layer given as ``source`` (a path, usually) did not load: missing, empty or not a
    raster."""
    if isinstance(source, str) and source:
        reason = load_engine_module("raster").unreadable_reason(source)
        return QgsProcessingException(
            tr("The {role} layer could not be loaded: {reason}.").format(role=role, reason=reason)
        )
    return QgsProcessingException(
        tr("The {role} layer could not be loaded; check that it exists and is a raster.").format(role=role)
    )


def file_path(layer, role: str, source=None) -> str:
    """The file behind a raster layer; the engine reads files with GDAL, not QGIS layers.

    ``source`` is the parameter's raw value, to say why a layer did not load."""
    if layer is None:
        raise unloadable_layer_error(role, source)
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            tr(
                "The {role} layer {name!r} is not a file-based raster (provider {provider!r}); save it as a "
                "GeoTIFF first (Raster > Conversion > Translate) and use that file."
            ).format(role=role, name=layer.name(), provider=layer.providerType())
        )
    return layer.source()


@functools.lru_cache(maxsize=1)
def runtime_description() -> str:
    """What Downscale LST's default backend and device would run on here (engine.backends), looked up
    once per session; the installer clears it."""
    return load_engine_module("backends").describe_runtime("onnxruntime", "auto")


def install_hint(module: str) -> str:
    """How to install ``module`` (onnxruntime, torch) for this QGIS: the plugin's menu action, or
    headless (qgis_process) its installer run with this QGIS's Python."""
    package = install_runtime.recommended_package(module, install_runtime.nvidia_gpu())
    return (
        f"Install it with Plugins > {install_runtime.MENU} > Install runtime (ONNX Runtime, PyTorch)…, or from a shell: "
        f"{install_runtime.headless_command(package)} ; then run the algorithm again."
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
    if isinstance(error, errors.RuntimeMissing):
        return QgsProcessingException(f"{error.summary} {install_hint(error.module)}")
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
    """Call an engine function with the feedback callbacks; engine errors and file-system failures become
    QgsProcessingException (a message, no traceback), a cancellation says that nothing was written.
    Other exceptions are internal errors and keep their traceback."""
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
        raise QgsProcessingException(tr("Cancelled: {error}").format(error=error)) from error
    except errors.EngineError as error:
        raise processing_error(error) from error
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise QgsProcessingException(
            tr(
                "{error}{where}; check that the file exists and is readable, and that the output folder is "
                "writable and has free space."
            ).format(error=error.strerror or error, where=where)
        ) from error
    except MemoryError as error:
        raise QgsProcessingException(
            tr("Not enough memory for this run; lower the tile size (Advanced) or close other programs.")
        ) from error

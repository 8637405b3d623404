"""Processing algorithm "Fine-tune on this scene" (mocolsk:finetune).

Runs the training package's self-supervised fine-tuning on the user's LST and guidance
layers for a bounded number of steps and writes a new model package. Needs PyTorch and
the MoCoLSK training package in QGIS's Python; says how to get them when they are missing.
"""

import sys
from importlib.util import find_spec

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from .common import (
    LST_UNIT_CHOICES,
    MoCoLSKAlgorithm,
    chosen_model,
    file_path,
    help_html,
    install_hint,
    model_parameters,
    releases_layers_on_error,
    run_engine,
    tr,
    with_help,
)

MAX_STEPS = 5000


NO_TORCH = (
    "Fine-tuning trains the network with PyTorch, which is not installed in the Python that QGIS runs. "
)
NO_TRAINING = (
    "Fine-tuning needs the MoCoLSK training package (the training/ folder of the MoCoLSK source repository), "
    "which the plugin zip does not ship. Get the repository and add its folder to QGIS's Python path "
    "(Settings > Options > System > Environment: PYTHONPATH), or run "
    "`python -m training finetune MODEL LST GUIDANCE OUT.json` from that folder."
)


def missing_requirement() -> str | None:
    """What fine-tuning needs and this QGIS's Python lacks (PyTorch, the training package), or None.

    Looked up without importing either, so that listing the algorithms stays fast."""
    if not importable("torch"):
        return tr(NO_TORCH) + install_hint("torch")
    if not importable("training.finetune"):
        return tr(NO_TRAINING)
    return None


def importable(name: str) -> bool:
    """Whether ``name`` can be imported (its parent packages are imported to find it)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def finetune_function():
    """``training.finetune.finetune_on_scene``, or an exception saying what to install."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise QgsProcessingException(tr(NO_TORCH) + install_hint("torch")) from error
    try:
        from training.finetune import finetune_on_scene
    except ImportError as error:
        raise QgsProcessingException(tr(NO_TRAINING)) from error
    return finetune_on_scene


class FinetuneAlgorithm(MoCoLSKAlgorithm):
    LST = "LST"
    LST_UNITS = "LST_UNITS"
    GUIDANCE = "GUIDANCE"
    STEPS = "STEPS"
    OVERWRITE = "OVERWRITE"
    OUTPUT = "OUTPUT"

    def name(self):
        return "finetune"

    def displayName(self):  # noqa: N802
        return self.tr("Fine-tune on this scene")

    def shortHelpString(self):  # noqa: N802
        return help_html(self.name())

    def tags(self):
        return ["lst", "fine-tuning", "self-supervised", "training", "model package", "mocolsk"]

    def canExecute(self):  # noqa: N802
        """Whether PyTorch and the training package are importable; if not, what to install."""
        missing = missing_requirement()
        return missing is None, missing or ""

    def initAlgorithm(self, config=None):  # noqa: N802
        for parameter in model_parameters():
            self.addParameter(parameter)
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterLayer(self.LST, self.tr("Land surface temperature (coarse)")),
                self.tr(
                    "The scene's LST raster (first band), in any of the units Downscale LST reads (see LST "
                    "units); nodata pixels are ignored."
                ),
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    self.LST_UNITS,
                    self.tr("LST units"),
                    options=[self.tr(label) for _, label in LST_UNIT_CHOICES],
                    defaultValue=0,
                ),
                self.tr(
                    "Units of the LST raster values; Auto-detect reads the product name, the band's unit, then "
                    "the value range, as Downscale LST does."
                ),
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterLayer(self.GUIDANCE, self.tr("Guidance stack (fine)")),
                self.tr(
                    "A multi-band raster with the model's guidance bands in the order its card lists them "
                    "(e.g. from 'Build guidance stack'); it is averaged onto the LST grid."
                ),
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterNumber(
                    self.STEPS,
                    self.tr("Training steps"),
                    QgsProcessingParameterNumber.Integer,
                    defaultValue=200,
                    minValue=1,
                    maxValue=MAX_STEPS,
                ),
                self.tr(
                    "The most optimisation steps to run (batches of 4 patches); training stops earlier when "
                    "validation stops improving. A few hundred take minutes on a CPU."
                ),
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterBoolean(
                    self.OVERWRITE, self.tr("Overwrite an existing model package"), defaultValue=False
                ),
                self.tr(
                    "Replace the package at the output path (NAME.json, NAME.onnx, NAME.pt) if one exists; "
                    "otherwise the run refuses to touch it."
                ),
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterFileDestination(
                    self.OUTPUT,
                    self.tr("Fine-tuned model package"),
                    fileFilter=self.tr("MoCoLSK model package (*.json)"),
                ),
                self.tr("The new package's card, NAME.json; NAME.onnx and NAME.pt are written beside it."),
            )
        )
        self.addOutput(QgsProcessingOutputFile(self.OUTPUT, self.tr("Fine-tuned model package")))

    @releases_layers_on_error
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        finetune = finetune_function()
        model = chosen_model(self, parameters, context)
        lst = file_path(self.parameterAsRasterLayer(parameters, self.LST, context), "LST")
        guidance = file_path(self.parameterAsRasterLayer(parameters, self.GUIDANCE, context), "guidance")
        result = run_engine(
            feedback,
            finetune,
            model,
            lst,
            guidance,
            self.parameterAsFileOutput(parameters, self.OUTPUT, context),
            steps=self.parameterAsInt(parameters, self.STEPS, context),
            lst_units=LST_UNIT_CHOICES[self.parameterAsEnum(parameters, self.LST_UNITS, context)][0],
            overwrite=self.parameterAsBoolean(parameters, self.OVERWRITE, context),
        )
        return {self.OUTPUT: str(result.card_path)}

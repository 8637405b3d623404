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
    install_hint,
    model_parameters,
    releases_layers_on_error,
    run_engine,
    with_help,
)

LST = "LST"
LST_UNITS = "LST_UNITS"
GUIDANCE = "GUIDANCE"
STEPS = "STEPS"
OVERWRITE = "OVERWRITE"
OUTPUT = "OUTPUT"
MAX_STEPS = 5000
# Measured with `python -m training.studies.finetune_study` (training/README.md).
FINDINGS = (
    "Measured on two real scenes whose fine thermal band was kept back as truth (coarse LST = that band "
    "area-averaged x4, bundled x4 package, 200 steps at most): the self-supervised validation improved on "
    "the "
    "parent by 2.3 % and 11.6 %, yet at the fine resolution fine-tuning made results worse. Against the real "
    "thermal band, RMSE of the fine-tuned model / parent / bicubic: Landsat 8 NW Florida, clear-sky pixels, "
    "0.486 / 0.365 / 0.249 K; Landsat 7 Raleigh at its thermal band's 57 m, 0.984 / 0.807 / 0.813 K. "
    "Fine-tuning teaches the network the detail of the coarse grid, which Landsat-like fine thermal data do "
    "not hold: keep the parent package unless you can "
    "check the fine-tuned one against independent fine-resolution temperature."
)


NO_TORCH = (
    "Fine-tuning trains the network with PyTorch, which is not installed in the Python that QGIS runs. "
)
NO_TRAINING = (
    "Fine-tuning needs the MoCoLSK training package (the training/ folder of the MoCoLSK source "
    "repository), which the plugin zip does not ship. Get the repository and add its folder to "
    "QGIS's "
    "Python path (Settings > Options > System > Environment: PYTHONPATH), or run "
    "`python -m training finetune MODEL LST GUIDANCE OUT.json` from that folder."
)


def missing_requirement() -> str | None:
    """What fine-tuning needs and this QGIS's Python lacks (PyTorch, the training package), or None.

    Looked up without importing either, so that listing the algorithms stays fast."""
    if not importable("torch"):
        return NO_TORCH + install_hint("torch")
    if not importable("training.finetune"):
        return NO_TRAINING
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
        raise QgsProcessingException(NO_TORCH + install_hint("torch")) from error
    try:
        from training.finetune import finetune_on_scene
    except ImportError as error:
        raise QgsProcessingException(NO_TRAINING) from error
    return finetune_on_scene


class FinetuneAlgorithm(MoCoLSKAlgorithm):
    def name(self):
        return "finetune"

    def displayName(self):  # noqa: N802
        return "Fine-tune on this scene"

    def shortHelpString(self):  # noqa: N802
        return (
            "Adapts a model package to one scene without any fine-resolution LST (self-supervised): the "
            "guidance is averaged onto the LST grid, the LST is averaged once more by the model's scale, and "
            "the network learns to recover the LST from that. This assumes the LST-guidance relation holds "
            "across scales, as TsHARP and DMS do. Runs at most the given number of steps with PyTorch on the "
            "CPU.\n\n"
            "Validation, the only check possible here, is self-supervised: recovering the coarse LST from a "
            "x{s} coarser copy on held-out blocks (s is the model's scale); no 30 m truth exists. A few "
            "blocks of "
            "the LST grid are held out (with a guard band around them) and on them the fine-tuned network, "
            "the "
            "parent package and bicubic, all with coarse-mean conservation, are scored. Training keeps its "
            "best "
            "step and stops early when validation stops improving; the new package (NAME.json, NAME.onnx, "
            "NAME.pt) is written only if that step beats the parent by at least 2 %, otherwise the run "
            "fails and "
            "says by how much it lost. Its card records this validation instead of the parent's held-out "
            "metrics.\n\n"
            f"{FINDINGS}\n\n"
            "An existing package is replaced only if 'Overwrite an existing model package' is ticked. "
            "Cancelling "
            "writes nothing; the source package is never changed."
        )

    def canExecute(self):  # noqa: N802
        """Whether PyTorch and the training package are importable; if not, what to install."""
        missing = missing_requirement()
        return missing is None, missing or ""

    def initAlgorithm(self, config=None):  # noqa: N802
        for parameter in model_parameters():
            self.addParameter(parameter)
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterLayer(LST, "Land surface temperature (coarse)"),
                "The scene's LST raster (first band), in any of the units Downscale LST reads (see LST units); "
                "nodata pixels are ignored.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterEnum(
                    LST_UNITS, "LST units", options=[label for _, label in LST_UNIT_CHOICES], defaultValue=0
                ),
                "Units of the LST raster values; Auto-detect reads the product name, the band's unit, then the value "
                "range, as Downscale LST does.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterRasterLayer(GUIDANCE, "Guidance stack (fine)"),
                "A multi-band raster with the model's guidance bands in the order its card lists them "
                "(e.g. from 'Build guidance stack'); it is averaged onto the LST grid.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterNumber(
                    STEPS, "Training steps", QgsProcessingParameterNumber.Integer, 200, False, 1, MAX_STEPS
                ),
                "The most optimisation steps to run (batches of 4 patches); training stops earlier when "
                "validation "
                "stops improving. A few hundred take minutes on a CPU.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterBoolean(
                    OVERWRITE, "Overwrite an existing model package", defaultValue=False
                ),
                "Replace the package at the output path (NAME.json, NAME.onnx, NAME.pt) if one exists; "
                "otherwise the run refuses to touch it.",
            )
        )
        self.addParameter(
            with_help(
                QgsProcessingParameterFileDestination(
                    OUTPUT, "Fine-tuned model package", fileFilter="MoCoLSK model package (*.json)"
                ),
                "The new package's card, NAME.json; NAME.onnx and NAME.pt are written beside it.",
            )
        )
        self.addOutput(QgsProcessingOutputFile(OUTPUT, "Fine-tuned model package"))

    @releases_layers_on_error
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        finetune = finetune_function()
        model = chosen_model(self, parameters, context)
        lst = file_path(self.parameterAsRasterLayer(parameters, LST, context), "LST")
        guidance = file_path(self.parameterAsRasterLayer(parameters, GUIDANCE, context), "guidance")
        result = run_engine(
            feedback,
            finetune,
            model,
            lst,
            guidance,
            self.parameterAsFileOutput(parameters, OUTPUT, context),
            steps=self.parameterAsInt(parameters, STEPS, context),
            lst_units=LST_UNIT_CHOICES[self.parameterAsEnum(parameters, LST_UNITS, context)][0],
            overwrite=self.parameterAsBoolean(parameters, OVERWRITE, context),
        )
        return {OUTPUT: str(result.card_path)}

"""Processing algorithm "Fine-tune on this scene" (mocolsk:finetune).

Runs the training package's self-supervised fine-tuning on the user's LST and guidance
layers for a bounded number of steps and writes a new model package. Needs PyTorch and
the MoCoLSK training package in QGIS's Python; says how to get them when they are missing.
"""
from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from .common import MoCoLSKAlgorithm, chosen_model, file_path, install_hint, model_parameters, run_engine, with_help

LST = "LST"
LST_UNITS = "LST_UNITS"
GUIDANCE = "GUIDANCE"
STEPS = "STEPS"
OUTPUT = "OUTPUT"
UNITS = ["kelvin", "celsius"]
MAX_STEPS = 5000


def finetune_function():
    """``training.finetune.finetune_on_scene``, or an exception saying what to install."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise QgsProcessingException(
            "Fine-tuning trains the network with PyTorch, which is not installed in the Python that QGIS runs. "
            + install_hint("torch")
        ) from error
    try:
        from training.finetune import finetune_on_scene
    except ImportError as error:
        raise QgsProcessingException(
            "Fine-tuning needs the MoCoLSK training package (the training/ folder of the MoCoLSK source "
            "repository), which the plugin zip does not ship. Get the repository and add its folder to QGIS's "
            "Python path (Settings > Options > System > Environment: PYTHONPATH), or run "
            "`python -m training finetune MODEL LST GUIDANCE OUT.json` from that folder."
        ) from error
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
            "across scales, as TsHARP and DMS do. Runs a bounded number of steps with PyTorch on the CPU, "
            "reports validation RMSE on held-out blocks before and after, and writes a new package "
            "(NAME.json, NAME.onnx, NAME.pt). Cancelling writes nothing; the source package is never changed."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        for parameter in model_parameters():
            self.addParameter(parameter)
        self.addParameter(with_help(
            QgsProcessingParameterRasterLayer(LST, "Land surface temperature (coarse)"),
            "The scene's LST raster (first band), in Kelvin or Celsius; nodata pixels are ignored.",
        ))
        self.addParameter(with_help(
            QgsProcessingParameterEnum(LST_UNITS, "LST units", options=UNITS, defaultValue="kelvin", usesStaticStrings=True),
            "Units of the LST raster values.",
        ))
        self.addParameter(with_help(
            QgsProcessingParameterRasterLayer(GUIDANCE, "Guidance stack (fine)"),
            "A multi-band raster with the model's guidance bands in the order its card lists them "
            "(e.g. from 'Build guidance stack'); it is averaged onto the LST grid.",
        ))
        self.addParameter(with_help(
            QgsProcessingParameterNumber(STEPS, "Training steps", QgsProcessingParameterNumber.Integer, 200, False, 1, MAX_STEPS),
            "How many optimisation steps to run (batches of 4 patches); a few hundred take minutes on a CPU.",
        ))
        self.addParameter(QgsProcessingParameterFileDestination(
            OUTPUT, "Fine-tuned model package", fileFilter="MoCoLSK model package (*.json)"))
        self.addOutput(QgsProcessingOutputFile(OUTPUT, "Fine-tuned model package"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        finetune = finetune_function()
        model = chosen_model(self, parameters, context)
        lst = file_path(self.parameterAsRasterLayer(parameters, LST, context), "LST")
        guidance = file_path(self.parameterAsRasterLayer(parameters, GUIDANCE, context), "guidance")
        result = run_engine(
            feedback, finetune, model, lst, guidance,
            self.parameterAsFileOutput(parameters, OUTPUT, context),
            steps=self.parameterAsInt(parameters, STEPS, context),
            lst_units=self.parameterAsEnumString(parameters, LST_UNITS, context),
        )
        return {OUTPUT: str(result.card_path)}

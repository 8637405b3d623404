"""The "MoCoLSK" Processing provider."""

from pathlib import Path

from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ._engine import engine, resource
from .algorithms.build_guidance import BuildGuidanceAlgorithm
from .algorithms.downscale import DownscaleAlgorithm
from .algorithms.evaluate import EvaluateAlgorithm
from .algorithms.finetune import FinetuneAlgorithm
from .i18n import tr

# The example model's algorithm name: its file's stem without the provider prefix.
EXAMPLE_MODEL = "guidance_downscale_evaluate"


class BundledModel(QgsProcessingModelAlgorithm):
    """A .model3 shipped with the plugin, listed under its title but with an id free of spaces and commas
    (``mocolsk:<file stem without "mocolsk_">``), so that scripts and batch files can name it."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.loaded = self.fromFile(str(path))

    def name(self):
        return self.path.stem.removeprefix("mocolsk_")

    def createInstance(self):  # noqa: N802 (QGIS API)
        return BundledModel(self.path)


class MoCoLSKProvider(QgsProcessingProvider):
    def id(self):
        return "mocolsk"

    def name(self):
        return tr("MoCoLSK LST downscaling")

    def longName(self):  # noqa: N802
        return tr("MoCoLSK land surface temperature downscaling (engine {version})").format(
            version=engine.__version__
        )

    def icon(self):
        return QIcon(str(resource("icons", "mocolsk.svg")))

    def svgIconPath(self):  # noqa: N802
        return str(resource("icons", "mocolsk.svg"))

    def versionInfo(self):  # noqa: N802
        return engine.__version__

    def loadAlgorithms(self):  # noqa: N802
        for algorithm in (
            DownscaleAlgorithm(),
            EvaluateAlgorithm(),
            BuildGuidanceAlgorithm(),
            FinetuneAlgorithm(),
        ):
            self.addAlgorithm(algorithm)
        for path in sorted(resource("models").glob("*.model3")):
            model = BundledModel(path)
            if model.loaded:
                self.addAlgorithm(model)

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]

    def defaultRasterFileExtension(self):  # noqa: N802
        return "tif"

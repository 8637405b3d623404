"""The "MoCoLSK" Processing provider."""

from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ._engine import engine, resource
from .algorithms.build_guidance import BuildGuidanceAlgorithm
from .algorithms.downscale import DownscaleAlgorithm
from .algorithms.evaluate import EvaluateAlgorithm
from .algorithms.finetune import FinetuneAlgorithm


class MoCoLSKProvider(QgsProcessingProvider):
    def id(self):
        return "mocolsk"

    def name(self):
        return "MoCoLSK LST downscaling"

    def longName(self):  # noqa: N802
        return f"MoCoLSK land surface temperature downscaling (engine {engine.__version__})"

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
            model = QgsProcessingModelAlgorithm()
            if model.fromFile(str(path)):
                self.addAlgorithm(model)

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]

    def defaultRasterFileExtension(self):  # noqa: N802
        return "tif"

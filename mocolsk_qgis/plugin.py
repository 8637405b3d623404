"""Plugin entry point: registers the Processing provider and the "Install runtime" menu action."""

from qgis.core import QgsApplication
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from ._engine import resource
from .install_runtime import MENU
from .provider import MoCoLSKProvider


class MoCoLSKPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.install_action = None

    def initProcessing(self):  # noqa: N802 (QGIS hook, also called by qgis_process)
        if self.provider is None:
            provider = MoCoLSKProvider()
            # The registry takes ownership and deletes a provider it refuses (duplicate id).
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self):  # noqa: N802
        self.initProcessing()
        self.install_action = QAction(
            QIcon(str(resource("icons", "mocolsk.svg"))),
            "Install runtime (ONNX Runtime, PyTorch)…",
            self.iface.mainWindow(),
        )
        self.install_action.triggered.connect(self.show_installer)
        self.iface.addPluginToMenu(MENU, self.install_action)

    def show_installer(self):
        from .runtime_dialog import InstallRuntimeDialog

        InstallRuntimeDialog(self.iface.mainWindow()).exec_()

    def unload(self):
        if self.install_action is not None:
            self.iface.removePluginMenu(MENU, self.install_action)
            self.install_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

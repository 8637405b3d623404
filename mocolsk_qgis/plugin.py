"""Plugin entry point: registers the Processing provider; adds no menus of its own."""

from qgis.core import QgsApplication

from .provider import MoCoLSKProvider


class MoCoLSKPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS hook, also called by qgis_process)
        if self.provider is None:
            provider = MoCoLSKProvider()
            # The registry takes ownership and deletes a provider it refuses (duplicate id).
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

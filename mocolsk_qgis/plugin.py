"""Plugin entry point: registers the Processing provider; in the desktop, shows guidance stacks in natural
colour, offers the example model in the Model Designer (Plugins menu and the Toolbox's context menu) and
the "Install runtime" action (ONNX Runtime, PyTorch)."""

from qgis.core import QgsApplication, QgsProcessingModelAlgorithm, QgsProject, QgsRasterLayer
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from ._engine import resource
from .i18n import tr
from .install_runtime import MENU
from .provider import EXAMPLE_MODEL, MoCoLSKProvider
from .style import natural_colour, shows_default_bands


def show_guidance_in_natural_colour(layers) -> None:
    """Guidance stacks added to the project with QGIS's default bands 1, 2, 3 (blue, green, red: false
    colour) are shown as red, green, blue; layers whose colours someone chose are left alone."""
    for layer in layers:
        if isinstance(layer, QgsRasterLayer) and layer.isValid() and shows_default_bands(layer):
            if natural_colour(layer):
                layer.triggerRepaint()


def open_in_modeler(model):
    """The Model Designer with ``model`` (a QgsProcessingModelAlgorithm) loaded, shown."""
    from processing.modeler.ModelerDialog import ModelerDialog

    dialog = ModelerDialog.create(model)
    dialog.show()
    dialog.activate()
    return dialog


def editable_copy(model):
    """A plain copy of ``model`` without its file, so that the designer's Save asks where to write instead
    of overwriting the plugin's file. The copy keeps ``model``'s provider: the designer's Run opens a
    Processing dialog on it, and QGIS 3.22 crashes (segmentation fault) on an algorithm without one."""
    copy = QgsProcessingModelAlgorithm()
    copy.loadVariant(model.toVariant())
    copy.setProvider(model.provider())
    return copy


def example_model():
    """An editable copy of the bundled example model."""
    return editable_copy(QgsApplication.processingRegistry().algorithmById(f"mocolsk:{EXAMPLE_MODEL}"))


class MoCoLSKPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.action = None
        self.context_actions = []
        self.modeler = None
        self.install_action = None

    def initProcessing(self):  # noqa: N802 (QGIS hook, also called by qgis_process)
        if self.provider is None:
            provider = MoCoLSKProvider()
            # The registry takes ownership and deletes a provider it refuses (duplicate id).
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self):  # noqa: N802
        self.initProcessing()
        QgsProject.instance().layersAdded.connect(show_guidance_in_natural_colour)
        self.action = QAction(
            QIcon(str(resource("icons", "mocolsk.svg"))),
            tr("Open example model in the Model Designer"),
            self.iface.mainWindow(),
        )
        self.action.triggered.connect(self.open_example)
        self.iface.addPluginToMenu(MENU, self.action)
        self.context_actions = [open_in_modeler_action()]
        from processing.gui.ProviderActions import ProviderContextMenuActions

        ProviderContextMenuActions.registerProviderContextMenuActions(self.context_actions)
        self.install_action = QAction(
            QIcon(str(resource("icons", "mocolsk.svg"))),
            tr("Install runtime (ONNX Runtime, PyTorch)…"),
            self.iface.mainWindow(),
        )
        self.install_action.triggered.connect(self.show_installer)
        self.iface.addPluginToMenu(MENU, self.install_action)

    def open_example(self):
        self.modeler = open_in_modeler(example_model())

    def show_installer(self):
        from .runtime_dialog import InstallRuntimeDialog

        InstallRuntimeDialog(self.iface.mainWindow()).exec_()

    def unload(self):
        if self.install_action is not None:
            self.iface.removePluginMenu(MENU, self.install_action)
            self.install_action = None
        if self.action is not None:
            QgsProject.instance().layersAdded.disconnect(show_guidance_in_natural_colour)
            self.iface.removePluginMenu(MENU, self.action)
            self.action = None
            from processing.gui.ProviderActions import ProviderContextMenuActions

            ProviderContextMenuActions.deregisterProviderContextMenuActions(self.context_actions)
            self.context_actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None


def open_in_modeler_action():
    """The Toolbox context-menu action "Open in Model Designer…" for MoCoLSK's models (the Models
    provider's own "Edit Model…" is offered for its models only)."""
    from processing.gui.ContextAction import ContextAction

    class OpenInModelerAction(ContextAction):
        def __init__(self):
            super().__init__()
            self.name = tr("Open in Model Designer…")
            self.modeler = None

        def isEnabled(self):  # noqa: N802 (ContextAction API)
            return (
                isinstance(self.itemData, QgsProcessingModelAlgorithm)
                and self.itemData.provider() is not None
                and self.itemData.provider().id() == "mocolsk"
            )

        def execute(self):
            self.modeler = open_in_modeler(editable_copy(self.itemData))

    return OpenInModelerAction()

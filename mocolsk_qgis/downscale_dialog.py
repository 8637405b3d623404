"""The Downscale LST dialog: its Model label says which bundled model "auto" will run for the layers chosen
(the engine decides) and follows the LST, guidance and native pixel; its Coarse LST never starts on a
multiband guidance stack; its form fits a small dialog."""

from qgis.core import QgsProcessingContext, QgsProcessingParameters, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication, QEvent
from qgis.PyQt.QtWidgets import QComboBox, QLabel

from ._engine import engine_module, errors
from .i18n import tr

AUTO_LABEL = "Model (auto: by pixel ratio)"
# Characters a drop-down shows at least when the dialog is narrow; it widens with the dialog.
NARROW_COMBO_CHARACTERS = 16


def auto_model_label(lst, guidance, native_pixel_m: float = 0.0) -> str:
    """The Model label for these layers: what the engine's auto runs for their files (``auto_model_for``,
    the same measure and decision as a run), or the plain label when a layer is not a readable raster file."""
    layers = (lst, guidance)
    if any(layer is None or not layer.isValid() or layer.providerType() != "gdal" for layer in layers):
        return tr(AUTO_LABEL)
    try:
        auto = engine_module("pipeline").auto_model_for(
            lst.source(), guidance.source(), native_pixel_m or None
        )
    except errors.EngineError:
        return tr(AUTO_LABEL)
    return tr("Model ({auto})").format(auto=auto.label)


def show_auto_model(dialog) -> None:
    """Keep the Model label of a Processing AlgorithmDialog of Downscale LST up to date."""
    panel = dialog.mainWidget()
    wrappers = panel.wrappers
    label = wrappers["MODEL"].wrappedLabel()
    if label is None:
        return
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    algorithm = dialog.algorithm()

    def update(*_):
        if wrappers["MODEL"].parameterValue() not in (None, "", engine_module("auto_model").AUTO_MODEL):
            label.setText(tr("Model"))
            return
        lst = QgsProcessingParameters.parameterAsRasterLayer(
            algorithm.parameterDefinition("INPUT_LST"), wrappers["INPUT_LST"].parameterValue(), context
        )
        guidance = QgsProcessingParameters.parameterAsLayerList(
            algorithm.parameterDefinition("GUIDANCE"), wrappers["GUIDANCE"].parameterValue(), context
        )
        native = wrappers["NATIVE_PIXEL_M"].parameterValue() if "NATIVE_PIXEL_M" in wrappers else 0
        label.setText(auto_model_label(lst, guidance[0] if guidance else None, float(native or 0)))

    for name in ("INPUT_LST", "GUIDANCE", "MODEL", "NATIVE_PIXEL_M"):
        wrappers[name].widgetValueHasChanged.connect(update)
    dialog.show_auto_model = update  # kept with the dialog; also lets setParameters() callers refresh
    update()


def single_band_rasters(project) -> list:
    """The project's valid single-band raster layers, in the Layers panel's order (top first)."""
    layers = [node.layer() for node in project.layerTreeRoot().findLayers()]
    return [
        layer
        for layer in layers
        if isinstance(layer, QgsRasterLayer) and layer.isValid() and layer.bandCount() == 1
    ]


def keep_guidance_stack_out_of_coarse_lst(dialog) -> None:
    """QGIS starts Coarse LST on the active layer, which right after Build guidance stack is the stack: start
    it on the first single-band raster instead (none if there is none), and the stack under Guidance."""
    wrappers = dialog.mainWidget().wrappers
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    algorithm = dialog.algorithm()
    chosen = QgsProcessingParameters.parameterAsRasterLayer(
        algorithm.parameterDefinition("INPUT_LST"), wrappers["INPUT_LST"].parameterValue(), context
    )
    if chosen is None or chosen.bandCount() == 1:
        return
    candidates = single_band_rasters(QgsProject.instance())
    wrappers["INPUT_LST"].setParameterValue(candidates[0] if candidates else None, context)
    if not wrappers["GUIDANCE"].parameterValue():
        wrappers["GUIDANCE"].setParameterValue([chosen], context)


def fit_narrow(dialog) -> None:
    """Let the form shrink with the dialog (800 x 600 and less) instead of scrolling sideways, which hid the
    "..." buttons: long labels wrap, and drop-downs may be narrower than their longest option."""
    panel = dialog.mainWidget()
    for label in panel.findChildren(QLabel):
        label.setWordWrap(True)
    for combo in panel.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(NARROW_COMBO_CHARACTERS)
        # Qt keeps the minimum size it computed for the old policy until the style changes.
        QCoreApplication.sendEvent(combo, QEvent(QEvent.StyleChange))


def downscale_dialog(algorithm, parent=None):
    """The standard Processing dialog for Downscale LST, with the Model label saying what auto runs, Coarse LST
    not starting on a guidance stack, and a form that fits a small dialog."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    dialog = AlgorithmDialog(algorithm, parent=parent)
    fit_narrow(dialog)
    keep_guidance_stack_out_of_coarse_lst(dialog)
    show_auto_model(dialog)
    return dialog

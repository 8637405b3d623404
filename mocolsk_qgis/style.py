"""Temperature styles for outputs loaded into the project.

The QML files in ``resources/styles`` fix the colour ramp and the legend units; the stretch
is re-fitted to each output (the cumulative cut the QML records), because a fixed range
cannot suit both a tropical afternoon and a polar night.
"""

from qgis.core import QgsColorRampShader, QgsProcessingLayerPostProcessorInterface, QgsRasterLayer
from qgis.PyQt import sip

from ._engine import resource

STYLES = {
    "kelvin": "lst_kelvin.qml",
    "celsius": "lst_celsius.qml",
    "difference": "lst_difference.qml",
}


def stretch_to_data(layer: QgsRasterLayer, symmetric: bool = False) -> None:
    """Spread the ramp of a single-band pseudocolour renderer over the layer's own values.

    The fitted renderer replaces the layer's one, so that the layer's legend (and the Layers panel) is rebuilt.
    """
    renderer = layer.renderer().clone()
    shader = renderer.shader().rasterShaderFunction()
    origin = renderer.minMaxOrigin()
    low, high = layer.dataProvider().cumulativeCut(
        renderer.band(), origin.cumulativeCutLower(), origin.cumulativeCutUpper(), layer.extent(), 250000
    )
    if symmetric:
        high = max(abs(low), abs(high))
        low = -high
    if not high > low:
        low, high = low - 0.5, low + 0.5
    old_low, old_high = shader.minimumValue(), shader.maximumValue()
    suffix = shader.legendSettings().suffix()
    items = []
    for item in shader.colorRampItemList():
        value = low + (item.value - old_low) / (old_high - old_low) * (high - low)
        label = f"{value:+.1f}{suffix}" if symmetric else f"{value:.1f}{suffix}"
        items.append(QgsColorRampShader.ColorRampItem(value, item.color, label))
    shader.setMinimumValue(low)
    shader.setMaximumValue(high)
    shader.setColorRampItemList(items)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high)
    layer.setRenderer(renderer)


class TemperatureStyle(QgsProcessingLayerPostProcessorInterface):
    """Applies one of the QML styles to a result layer and fits its stretch."""

    def __init__(self, style: str):
        super().__init__()
        self.style = style

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS interface)
        if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
            return
        message, ok = layer.loadNamedStyle(str(resource("styles", STYLES[self.style])))
        if not ok:
            feedback.reportError(f"Could not apply the temperature style: {message}")
            return
        stretch_to_data(layer, symmetric=self.style == "difference")
        layer.triggerRepaint()


# A processing context deletes its post-processors when it is destroyed, but Python must
# keep each one alive until then or QGIS calls an empty shell; deleted ones are dropped here.
_PENDING: list = []


def style_on_load(context, output_path: str, style: str) -> None:
    """Style the layer at ``output_path`` when Processing loads it into the project."""
    if context.willLoadLayerOnCompletion(output_path):
        _PENDING[:] = [processor for processor in _PENDING if not sip.isdeleted(processor)]
        post_processor = TemperatureStyle(style)
        _PENDING.append(post_processor)
        context.layerToLoadOnCompletionDetails(output_path).setPostProcessor(post_processor)

"""Temperature styles for outputs loaded into the project.

The QML files in ``resources/styles`` fix the colour ramp and the legend units; the stretch
is re-fitted to each output (the cumulative cut the QML records), because a fixed range
cannot suit both a tropical afternoon and a polar night. The uncertainty map gets a
sequential ramp over its own 2nd-98th percentiles. A loaded output whose name a layer of the
project already has gets a number, so that runs side by side can be told apart.
"""

from qgis.core import (
    QgsColorRampShader,
    QgsMultiBandColorRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt import sip

from ._engine import resource
from .i18n import tr

STYLES = {
    "kelvin": "lst_kelvin.qml",
    "celsius": "lst_celsius.qml",
    "difference": "lst_difference.qml",
    "uncertainty": "lst_uncertainty.qml",
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
    decimals = shader.labelPrecision()
    items = []
    for item in shader.colorRampItemList():
        value = low + (item.value - old_low) / (old_high - old_low) * (high - low)
        label = f"{value:+.{decimals}f}{suffix}" if symmetric else f"{value:.{decimals}f}{suffix}"
        items.append(QgsColorRampShader.ColorRampItem(value, item.color, label))
    shader.setMinimumValue(low)
    shader.setMaximumValue(high)
    shader.setColorRampItemList(items)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high)
    layer.setRenderer(renderer)


def band_descriptions(layer: QgsRasterLayer) -> list[str]:
    """The band descriptions ("red", "nir", ...) of a raster layer, "" for an unnamed band."""
    names = (layer.bandName(band) for band in range(1, layer.bandCount() + 1))
    return [name.split(": ", 1)[1].strip().lower() if ": " in name else "" for name in names]


def natural_colour(layer: QgsRasterLayer) -> bool:
    """Show a guidance stack as natural colour: its bands described red, green and blue as R, G, B,
    stretched as QGIS stretches multiband layers. False (layer untouched) when it lacks one of them."""
    names = band_descriptions(layer)
    if not {"red", "green", "blue"} <= set(names):
        return False
    red, green, blue = (names.index(colour) + 1 for colour in ("red", "green", "blue"))
    layer.setRenderer(QgsMultiBandColorRenderer(layer.dataProvider(), red, green, blue))
    layer.setDefaultContrastEnhancement()
    return True


def shows_default_bands(layer: QgsRasterLayer) -> bool:
    """Whether a multiband layer still shows QGIS's default bands 1, 2, 3 (nobody chose its colours)."""
    renderer = layer.renderer()
    return isinstance(renderer, QgsMultiBandColorRenderer) and (
        renderer.redBand(),
        renderer.greenBand(),
        renderer.blueBand(),
    ) == (1, 2, 3)


class NaturalColour(QgsProcessingLayerPostProcessorInterface):
    """Shows a guidance stack loaded by Processing in natural colour."""

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS interface)
        if isinstance(layer, QgsRasterLayer) and layer.isValid() and natural_colour(layer):
            layer.triggerRepaint()


def distinct_name(layer, project) -> str:
    """``layer``'s name, numbered ("name (2)", "name (3)", ...) when another layer of ``project`` has it."""
    taken = {other.name() for other in project.mapLayers().values() if other.id() != layer.id()}
    name, number = layer.name(), 2
    while name in taken:
        name, number = f"{layer.name()} ({number})", number + 1
    return name


class TemperatureStyle(QgsProcessingLayerPostProcessorInterface):
    """Applies one of the QML styles to a result layer, fits its stretch, and numbers its name when the
    project already has a layer of that name."""

    def __init__(self, style: str):
        super().__init__()
        self.style = style

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS interface)
        if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
            return
        message, ok = layer.loadNamedStyle(str(resource("styles", STYLES[self.style])))
        if not ok:
            feedback.reportError(
                tr("Could not apply the temperature style: {message}").format(message=message)
            )
            return
        stretch_to_data(layer, symmetric=self.style == "difference")
        project = context.project() or QgsProject.instance()
        layer.setName(distinct_name(layer, project))
        layer.triggerRepaint()


# A processing context deletes its post-processors when it is destroyed, but Python must
# keep each one alive until then or QGIS calls an empty shell; deleted ones are dropped here.
_PENDING: list = []


def style_on_load(context, output_path: str, style: str) -> None:
    """Style the layer at ``output_path`` when Processing loads it into the project."""
    post_process_on_load(context, output_path, TemperatureStyle(style))


def natural_colour_on_load(context, output_path: str) -> None:
    """Show the guidance stack at ``output_path`` in natural colour when Processing loads it."""
    post_process_on_load(context, output_path, NaturalColour())


def post_process_on_load(context, output_path: str, post_processor) -> None:
    if context.willLoadLayerOnCompletion(output_path):
        _PENDING[:] = [processor for processor in _PENDING if not sip.isdeleted(processor)]
        _PENDING.append(post_processor)
        context.layerToLoadOnCompletionDetails(output_path).setPostProcessor(post_processor)

"""The Downscale LST dialog says which bundled model "auto" will run for the layers chosen, and updates it
as the LST or guidance layers change."""

import math

from qgis.core import (
    QgsCoordinateTransform,
    QgsProcessingContext,
    QgsProcessingParameters,
    QgsProject,
    QgsUnitTypes,
)
from qgis.PyQt.QtCore import QCoreApplication

from ._engine import engine_module, package

AUTO_LABEL = "Model (auto: the bundled package for the LST/guidance pixel ratio)"


def tr(text: str) -> str:
    return QCoreApplication.translate("MoCoLSK", text)


def lst_pixel_in_guidance_crs(lst, guidance) -> float:
    """The LST pixel in the guidance CRS's units, as the side of the square of its area (as the engine
    measures it: pixels in degrees are not square in metres)."""
    if lst.crs() == guidance.crs():
        return math.sqrt(lst.rasterUnitsPerPixelX() * lst.rasterUnitsPerPixelY())
    transform = QgsCoordinateTransform(lst.crs(), guidance.crs(), QgsProject.instance())
    box = transform.transformBoundingBox(lst.extent())
    return math.sqrt(box.width() / lst.width() * box.height() / lst.height())


def auto_model_label(lst, guidance, native_pixel_m: float = 0.0) -> str:
    """The Model label for these layers: the package(s) auto runs, or why none fits. The engine decides: an
    LST finer than its sensor's native pixel (``native_pixel_m``, else a Landsat name or MTL) counts at that
    pixel, and a ratio no package fits is averaged onto a coarser grid or cascaded."""
    if lst is None or guidance is None or not lst.isValid() or not guidance.isValid():
        return tr(AUTO_LABEL)
    lst_pixel = lst_pixel_in_guidance_crs(lst, guidance)
    guidance_pixel = guidance.rasterUnitsPerPixelX()
    units = QgsUnitTypes.toAbbreviatedString(guidance.crs().mapUnits())
    ratio = lst_pixel / guidance_pixel
    pixels = f"LST {lst_pixel:.4g} {units} / guidance {guidance_pixel:.4g} {units}"
    native = (
        (native_pixel_m, "")
        if native_pixel_m
        else engine_module("sensors").native_lst_pixel(lst.source(), {})
    )
    if native and units == "m" and native[0] / guidance_pixel > ratio:
        ratio = native[0] / guidance_pixel
        pixels = f"LST {lst_pixel:.4g} m, sensed at {native[0]:g} m / guidance {guidance_pixel:.4g} m"
    steps = engine_module("grids").bundled_plan(ratio, package.bundled_scales())
    if not steps:
        return tr(
            "Model (auto: no bundled package for {pixels} = x{ratio:.3g}; choose a package file)"
        ).format(pixels=pixels, ratio=ratio)
    total = math.prod(scale for _, scale in steps)
    if abs(total / ratio - 1.0) > engine_module("grids").SCALE_TOLERANCE:
        pixels += f", averaged onto {total * guidance_pixel:.4g} {units}"
    return tr("Model (auto runs {names}: {pixels} = {scales})").format(
        names=" then ".join(name for name, _ in steps),
        pixels=pixels,
        scales=" then ".join(f"x{scale}" for _, scale in steps),
    )


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
        if wrappers["MODEL"].parameterValue() not in (None, "", "auto"):
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


def downscale_dialog(algorithm, parent=None):
    """The standard Processing dialog for Downscale LST, with the Model label saying what auto runs."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    dialog = AlgorithmDialog(algorithm, parent=parent)
    show_auto_model(dialog)
    return dialog

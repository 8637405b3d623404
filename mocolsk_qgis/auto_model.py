"""The Downscale LST dialog says which bundled model "auto" will run for the layers chosen, and updates it
as the LST or guidance layers change; its Coarse LST never starts on a multiband guidance stack."""

import math

from qgis.core import (
    QgsCoordinateTransform,
    QgsProcessingContext,
    QgsProcessingParameters,
    QgsProject,
    QgsRasterLayer,
    QgsUnitTypes,
)
from qgis.PyQt.QtCore import QCoreApplication, QEvent
from qgis.PyQt.QtWidgets import QComboBox, QLabel

from ._engine import engine_module, package
from .i18n import tr

AUTO_LABEL = "Model (auto: by pixel ratio)"
# Characters a drop-down shows at least when the dialog is narrow; it widens with the dialog.
NARROW_COMBO_CHARACTERS = 16


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
    on_guidance_grid = ratio < 1.0 + engine_module("grids").SCALE_TOLERANCE
    native = (
        (native_pixel_m, "")
        if native_pixel_m
        else engine_module("sensors").native_lst_pixel(lst.source(), {})
    )
    native = native if native and units == "m" else None
    if native and native[0] / guidance_pixel > ratio:
        ratio = native[0] / guidance_pixel
        pixels = f"LST {lst_pixel:.4g} m, sensed at {native[0]:g} m / guidance {guidance_pixel:.4g} m"
    steps = engine_module("grids").bundled_plan(ratio, package.bundled_scales())
    if on_guidance_grid:
        return guidance_grid_label(
            f"{lst_pixel:.4g} {units}", native[0] if native else None, steps, guidance_pixel
        )
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


def guidance_grid_label(lst_pixel: str, native_pixel_m: float | None, steps, guidance_pixel_m: float) -> str:
    """The Model label for an LST on the guidance grid (a Landsat thermal band delivered at 30 m): how it will
    be sharpened from its sensor's native pixel (``native_pixel_m``, with ``steps`` the (package, scale) pairs
    auto runs from there), or that Native LST pixel (m) must say that pixel."""
    if native_pixel_m is None:
        return tr(
            "Model (auto: LST on the guidance grid ({pixel}); set Native LST pixel (m) to the pixel its sensor saw)"
        ).format(pixel=lst_pixel)
    if not steps:
        return tr(
            "Model (auto: LST on the guidance grid, native pixel {native:g} m: no bundled package fits; choose a "
            "package file)"
        ).format(native=native_pixel_m)
    coarse_m = math.prod(scale for _, scale in steps) * guidance_pixel_m
    plan = " then ".join(f"x{scale} with {name}" for name, scale in steps)
    if abs(coarse_m / native_pixel_m - 1.0) <= engine_module("grids").SCALE_TOLERANCE:
        return tr(
            "Model (auto: LST on the guidance grid: averaged to its native {native:g} m pixel, then {plan})"
        ).format(native=native_pixel_m, plan=plan)
    return tr(
        "Model (auto: LST on the guidance grid, native pixel {native:g} m: averaged onto {coarse:.4g} m, then {plan})"
    ).format(native=native_pixel_m, coarse=coarse_m, plan=plan)


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

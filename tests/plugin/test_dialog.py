"""The Toolbox dialog of "Downscale LST": it builds, shows the help, runs the algorithm in
QGIS's background task and loads the styled result. (The README's screenshots come from the desktop
test, tests/desktop.)"""

import re
import time
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from processing.gui.AlgorithmDialog import AlgorithmDialog
from qgis.core import (
    QgsApplication,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.gui import QgsBrowserGuiModel
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import QScrollArea, QTextBrowser, QToolButton

BICUBIC = 1


@pytest.fixture
def dialog(mocolsk_provider, qgis_iface, qgis_parent, sample_scene, monkeypatch):
    # pytest-qgis's stub interface has no browser model; the parameters panel asks for one
    browser_model = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser_model, raising=False)
    project = QgsProject.instance()
    lst = QgsRasterLayer(str(sample_scene.lst_120m), "LST 120 m (Landsat 5 TM B6)")
    guidance = QgsRasterLayer(str(sample_scene.guidance_30m), "Guidance 30 m (TOA reflectance)")
    project.addMapLayers([lst, guidance])
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("mocolsk:downscalelst")
    dialog = AlgorithmDialog(algorithm, parent=qgis_parent)
    dialog.setParameters({"INPUT_LST": lst, "GUIDANCE": [guidance]})
    dialog.resize(1100, 820)
    yield dialog, lst, guidance
    dialog.close()
    project.removeAllMapLayers()


def wait_until(condition, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background task"
        QCoreApplication.processEvents()
        time.sleep(0.02)


def test_dialog_renders_with_the_algorithm_help(dialog, tmp_path):
    dialog, lst, guidance = dialog
    dialog.show()
    dialog.resize(1100, 820)  # show() restores the size of the last Processing dialog
    QCoreApplication.processEvents()
    help_text = " ".join(browser.toPlainText() for browser in dialog.findChildren(QTextBrowser))
    assert "Downscales a coarse land surface temperature" in help_text
    parameters = dialog.createProcessingParameters()
    assert parameters["INPUT_LST"] == lst.id() or parameters["INPUT_LST"] == lst.source()
    image = dialog.grab().toImage()
    assert (image.width(), image.height()) == (1100, 820)
    path = tmp_path / "dialog.png"
    assert image.save(str(path))
    pixels = np.frombuffer(image.constBits().asstring(image.sizeInBytes()), np.uint8)
    assert pixels.std() > 10  # widgets and text were drawn, not a blank window


def test_dialog_runs_the_algorithm_in_the_background_and_loads_the_styled_result(dialog, tmp_path):
    dialog, _, _ = dialog
    output = tmp_path / "from_dialog.tif"
    dialog.setParameters({"METHOD": BICUBIC, "OUTPUT": str(output)})
    dialog.runAlgorithm()
    wait_until(
        lambda: any(layer.source() == str(output) for layer in QgsProject.instance().mapLayers().values())
    )
    layer = next(
        layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == str(output)
    )
    assert isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer)
    assert layer.renderer().shader().rasterShaderFunction().legendSettings().suffix() == " K"


def test_the_dialog_says_which_bundled_model_auto_runs_for_the_chosen_layers(
    mocolsk_provider, qgis_iface, qgis_parent, sample_scene, monkeypatch
):
    browser_model = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser_model, raising=False)
    project = QgsProject.instance()
    lst = QgsRasterLayer(str(sample_scene.lst_120m), "LST 120 m")
    guidance = QgsRasterLayer(str(sample_scene.guidance_30m), "Guidance 30 m")
    gdal.Translate(str(sample_scene.folder / "lst_60m.tif"), str(sample_scene.lst_120m), xRes=60, yRes=60)
    lst_60m = QgsRasterLayer(str(sample_scene.folder / "lst_60m.tif"), "LST 60 m")
    lst_30m = QgsRasterLayer(str(sample_scene.reference_30m), "LST 30 m")
    st_b10 = sample_scene.folder / "LC08_L2SP_224063_20200801_20200906_02_T1_ST_B10.TIF"
    gdal.Translate(str(st_b10), str(sample_scene.lst_120m), xRes=30, yRes=30)
    lst_st_b10 = QgsRasterLayer(str(st_b10), "ST_B10")
    gdal.Translate(str(sample_scene.folder / "lst_960m.tif"), str(sample_scene.lst_120m), xRes=960, yRes=960)
    lst_960m = QgsRasterLayer(str(sample_scene.folder / "lst_960m.tif"), "LST 960 m")
    project.addMapLayers([lst, guidance, lst_60m, lst_30m, lst_st_b10, lst_960m])
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("mocolsk:downscalelst")
    dialog = algorithm.createCustomParametersWidget(qgis_parent)
    try:
        label = dialog.mainWidget().wrappers["MODEL"].wrappedLabel()
        dialog.setParameters({"INPUT_LST": lst, "GUIDANCE": [guidance]})
        assert label.text() == "Model (auto runs mocolsk-x4-landsat-light: LST 120 m / guidance 30 m = x4)"
        dialog.setParameters({"INPUT_LST": lst_60m, "GUIDANCE": [guidance]})
        assert label.text() == "Model (auto runs mocolsk-x2-landsat-light: LST 60 m / guidance 30 m = x2)"
        dialog.setParameters({"INPUT_LST": lst_30m, "GUIDANCE": [guidance]})
        assert label.text() == (
            "Model (auto: LST on the guidance grid (30 m); set Native LST pixel (m) to the pixel its sensor saw)"
        )
        dialog.setParameters({"INPUT_LST": lst_st_b10, "GUIDANCE": [guidance]})
        assert label.text() == (
            "Model (auto: LST on the guidance grid, native pixel 100 m: averaged onto 120 m, then x4 with "
            "mocolsk-x4-landsat-light)"
        )
        dialog.setParameters({"INPUT_LST": lst_960m, "GUIDANCE": [guidance]})
        assert label.text() == (
            "Model (auto runs mocolsk-x4-landsat-light then mocolsk-x8-landsat-light: LST 960 m / guidance 30 m "
            "= x4 then x8)"
        )
        dialog.setParameters({"MODEL": "mocolsk-x8-landsat-light"})
        assert label.text() == "Model"
    finally:
        dialog.close()
        project.removeAllMapLayers()


def test_coarse_lst_never_defaults_to_the_multiband_guidance_stack_that_is_the_active_layer(
    mocolsk_provider, qgis_iface, qgis_parent, sample_scene, monkeypatch
):
    """Right after Build guidance stack the stack is the active layer, which QGIS offers as the first raster
    parameter's default."""
    browser_model = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser_model, raising=False)
    project = QgsProject.instance()
    lst = QgsRasterLayer(str(sample_scene.lst_120m), "LST 120 m")
    stack = QgsRasterLayer(str(sample_scene.guidance_30m), "Guidance stack")
    project.addMapLayers([lst, stack])
    qgis_iface.setActiveLayer(stack)
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("mocolsk:downscalelst")
    dialog = algorithm.createCustomParametersWidget(qgis_parent)
    try:
        wrappers = dialog.mainWidget().wrappers
        assert wrappers["INPUT_LST"].parameterValue() in (lst.id(), lst.source())
        assert wrappers["GUIDANCE"].parameterValue() in ([stack.id()], [stack.source()])
    finally:
        dialog.close()
        project.removeAllMapLayers()


def test_the_model_label_names_the_packages_and_scales_a_run_of_auto_uses(
    mocolsk_provider, qgis_iface, qgis_parent, sample_scene, monkeypatch, run_algorithm, tmp_path
):
    """For each LST the dialog's label is the engine's decision for the same files, and MoCoLSK with Model
    auto runs those packages at those scales: pixel ratios x2, x4, a cascade beyond x8, pixels in degrees, and
    LSTs on the guidance grid whose native pixel is read from the product name or given."""
    from engine.pipeline import auto_model_for

    browser_model = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser_model, raising=False)
    folder, lst_120m = sample_scene.folder, str(sample_scene.lst_120m)
    st_b10 = folder / "LC08_L2SP_224063_20200801_20200906_02_T1_ST_B10.TIF"
    lsts = {  # file -> Native LST pixel (m) given
        gdal.Translate(str(folder / "agree_60m.tif"), lst_120m, xRes=60, yRes=60).GetDescription(): 0.0,
        lst_120m: 0.0,
        gdal.Translate(str(folder / "agree_960m.tif"), lst_120m, xRes=960, yRes=960).GetDescription(): 0.0,
        gdal.Warp(
            str(folder / "agree_0.0011deg.tif"), lst_120m, dstSRS="EPSG:4326", xRes=0.0011, yRes=0.0011
        ).GetDescription(): 0.0,
        gdal.Translate(str(st_b10), lst_120m, xRes=30, yRes=30).GetDescription(): 0.0,
        str(sample_scene.reference_30m): 120.0,
    }
    project = QgsProject.instance()
    guidance = QgsRasterLayer(str(sample_scene.guidance_30m), "Guidance 30 m")
    layers = {path: QgsRasterLayer(path, Path(path).stem) for path in lsts}
    project.addMapLayers([guidance, *layers.values()])
    dialog = (
        QgsApplication.processingRegistry()
        .createAlgorithmById("mocolsk:downscalelst")
        .createCustomParametersWidget(qgis_parent)
    )
    try:
        label = dialog.mainWidget().wrappers["MODEL"].wrappedLabel()
        ran = set()
        for path, native_m in lsts.items():
            dialog.setParameters(
                {"INPUT_LST": layers[path], "GUIDANCE": [guidance], "NATIVE_PIXEL_M": native_m}
            )
            auto = auto_model_for(path, str(sample_scene.guidance_30m), native_m or None)
            assert label.text() == f"Model ({auto.label})"
            assert all(name in label.text() and f"x{scale}" in label.text() for name, scale in auto.steps)
            feedback = QgsProcessingFeedback()
            messages = []
            feedback.pushInfo = messages.append
            results = run_algorithm(
                "mocolsk:downscalelst",
                {
                    "INPUT_LST": path,
                    "GUIDANCE": [str(sample_scene.guidance_30m)],
                    "NATIVE_PIXEL_M": native_m,
                    "METHOD": 0,  # MoCoLSK-Net, Model auto
                    "OUTPUT": str(tmp_path / f"{Path(path).stem}.tif"),
                },
                feedback,
            )
            assert results["SCALE"] == auto.total_scale
            assert any(f"with mocolsk {' then '.join(auto.names)} on " in line for line in messages), messages
            ran.add(auto.scales)
        assert ran == {(2,), (4,), (4, 8)}
    finally:
        dialog.close()
        project.removeAllMapLayers()


@pytest.mark.parametrize("size", [(800, 600), (688, 523)])
def test_the_form_fits_a_small_dialog_without_scrolling_sideways(
    size, mocolsk_provider, qgis_iface, qgis_parent, sample_scene, monkeypatch
):
    """688 x 523 is QGIS's default size for a Processing dialog; the "..." buttons of Guidance layers and
    Model package file sit at the right edge of the form."""
    browser_model = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser_model, raising=False)
    project = QgsProject.instance()
    lst = QgsRasterLayer(
        str(sample_scene.lst_120m), "LST 120 m (Landsat 5 TM band 6, brightness temperature)"
    )
    guidance = QgsRasterLayer(str(sample_scene.guidance_30m), "Guidance 30 m")
    project.addMapLayers([lst, guidance])
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("mocolsk:downscalelst")
    dialog = algorithm.createCustomParametersWidget(qgis_parent)
    try:
        dialog.setParameters({"INPUT_LST": lst, "GUIDANCE": [guidance]})
        dialog.show()
        dialog.resize(*size)  # after show(), which restores the size of the last Processing dialog
        for _ in range(5):
            QCoreApplication.processEvents()
        form = max(dialog.findChildren(QScrollArea), key=lambda area: area.widget().minimumSizeHint().width())
        assert form.horizontalScrollBar().maximum() == 0
        buttons = [
            button
            for button in form.widget().findChildren(QToolButton)
            if button.isVisible() and button.text() == "…"
        ]
        assert len(buttons) >= 4  # Coarse LST, Guidance layers, Model package file, the outputs
        for button in buttons:
            assert button.mapTo(form.viewport(), button.rect().topRight()).x() < form.viewport().width()
    finally:
        dialog.close()
        project.removeAllMapLayers()


def test_the_help_panel_starts_with_a_five_step_quick_start_and_keeps_the_details_below(mocolsk_provider):
    help_html = QgsApplication.processingRegistry().algorithmById("mocolsk:downscalelst").shortHelpString()
    quick_start, details = help_html.split("<p><b>Details</b></p>")
    assert quick_start.startswith("<p><b>Quick start</b></p>")
    assert quick_start.count("<li>") == 5
    assert len(re.sub(r"<[^>]+>", " ", quick_start).split()) < 80
    assert "Downscales a coarse land surface temperature" in details and "Uncertainty (K)." in details

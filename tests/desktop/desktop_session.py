"""What a new user does in the QGIS desktop with the plugin installed from the zip, run inside QGIS by
``qgis --code desktop_session.py`` (see test_qgis_desktop.py).

Loads the bundled sample's 120 m LST and its 30 m guidance (built with "Build guidance stack"), opens
"Downscale LST" from the Processing Toolbox, presses Run with the default parameters and records what the
user sees: the result layer's name, its legend and stretch next to the raster's statistics, the dialog's
log, and screenshots of the dialog, the whole window and the example model in the Model Designer. Writes
results.json to $MOCOLSK_DESKTOP_OUT, then ends the process (quitting QGIS normally can abort here).
"""

import json
import os
import time
import traceback
from pathlib import Path

import processing
from processing.gui.AlgorithmDialog import AlgorithmDialog
from qgis.core import (
    QgsApplication,
    QgsColorRampLegendNode,
    QgsMultiBandColorRenderer,
    QgsNumericFormatContext,
    QgsProject,
    QgsRasterBandStats,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QTextBrowser, QTextEdit
from qgis.utils import iface, plugins

OUT = Path(os.environ["MOCOLSK_DESKTOP_OUT"])
DEADLINE_S = float(os.environ.get("MOCOLSK_DESKTOP_DEADLINE_S", "240"))
STARTED = time.monotonic()
results = {"errors": [], "messages": [], "step": "start"}
state = {}
_timers = []


def finish():
    results["seconds"] = round(time.monotonic() - STARTED, 1)
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    os._exit(0)


def guarded(step):
    def run():
        results["step"] = step.__name__
        try:
            step()
        except Exception:
            results["errors"].append(f"{step.__name__}: {traceback.format_exc()}")
            finish()

    return run


def later(ms, step):
    QTimer.singleShot(ms, guarded(step))


def poll(condition, then, name, every_ms=200):
    """Call ``then`` once ``condition()`` holds, checking every ``every_ms``; the deadline ends the run."""

    def check():
        if condition():
            timer.stop()
            guarded(then)()
        elif time.monotonic() - STARTED > DEADLINE_S:
            timer.stop()
            results["errors"].append(f"timed out waiting for {name}")
            finish()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(every_ms)
    _timers.append(timer)


def grab(widget, name):
    QApplication.processEvents()
    path = OUT / name
    widget.grab().save(str(path))
    results.setdefault("screenshots", []).append(str(path))


def record_message(message, tag, level):
    results["messages"].append(f"{tag}: {message}")


def prepare_layers():
    import mocolsk_qgis
    from mocolsk_qgis._engine import resource

    results["plugin_file"] = mocolsk_qgis.__file__
    results["plugin_loaded"] = "mocolsk_qgis" in plugins
    sample = resource("sample", "landsat5-tm-1988")
    work = OUT / "work"
    work.mkdir(exist_ok=True)
    lst = processing.run(
        "gdal:warpreproject",
        {
            "INPUT": str(sample / "LT52240631988227CUB02_B6.TIF"),
            "RESAMPLING": 5,
            "TARGET_RESOLUTION": 120,
            "DATA_TYPE": 6,
            "NODATA": 255,
            "OUTPUT": str(work / "lst_120m_tm_b6_dn.tif"),
        },
    )["OUTPUT"]
    processing.runAndLoadResults(
        "mocolsk:buildguidance",
        {
            "LANDSAT_MTL": str(sample / "LT52240631988227CUB02_MTL.txt"),
            "SR_ENCODING": 2,
            "OUTPUT": str(work / "guidance_30m_toa.tif"),
        },
    )
    guidance = next(layer for layer in QgsProject.instance().mapLayers().values() if layer.bandCount() > 1)
    renderer = guidance.renderer()
    results["guidance"] = {
        "bands": [guidance.bandName(band) for band in range(1, guidance.bandCount() + 1)],
        "rgb": [renderer.redBand(), renderer.greenBand(), renderer.blueBand()]
        if isinstance(renderer, QgsMultiBandColorRenderer)
        else None,
    }
    state["lst"] = iface.addRasterLayer(lst, Path(lst).stem)
    state["guidance"] = guidance
    state["inputs"] = {lst, str(work / "guidance_30m_toa.tif")}
    later(300, open_from_toolbox)


def open_from_toolbox():
    processing_plugin = plugins["processing"]
    processing_plugin.toolboxAction.setChecked(True)
    toolbox = processing_plugin.toolbox
    toolbox.searchBox.setText("Downscale LST")
    QApplication.processEvents()
    tree = toolbox.algorithmTree
    pending = [tree.model().index(row, 0) for row in range(tree.model().rowCount())]
    while pending:
        index = pending.pop(0)
        tree.setCurrentIndex(index)
        algorithm = tree.selectedAlgorithm()
        if algorithm is not None and algorithm.id() == "mocolsk:downscalelst":
            break
        pending.extend(tree.model().index(row, 0, index) for row in range(tree.model().rowCount(index)))
    results["toolbox_selected"] = tree.selectedAlgorithm().id() if tree.selectedAlgorithm() else None
    later(500, fill_and_run)
    toolbox.executeAlgorithm()  # modal, as when the user double-clicks; returns when the dialog closes
    later(200, check_result)


def algorithm_dialog():
    dialogs = [w for w in QApplication.topLevelWidgets() if isinstance(w, AlgorithmDialog) and w.isVisible()]
    return dialogs[0] if dialogs else None


def fill_and_run():
    dialog = algorithm_dialog()
    state["dialog"] = dialog
    results["dialog_title"] = dialog.windowTitle()
    dialog.setParameters({"INPUT_LST": state["lst"], "GUIDANCE": [state["guidance"]]})
    dialog.resize(1100, 820)
    parameters = dialog.createProcessingParameters()
    results["parameters"] = {key: str(value) for key, value in parameters.items()}
    results["model_label"] = dialog.mainWidget().wrappers["MODEL"].wrappedLabel().text()
    grab(dialog, "dialog.png")
    dialog.runAlgorithm()
    poll(result_layer_loaded, after_run, "the result layer")


def result_layer():
    for layer in QgsProject.instance().mapLayers().values():
        if (
            isinstance(layer, QgsRasterLayer)
            and layer.source() not in state["inputs"]
            and layer.bandCount() == 1
        ):
            return layer
    return None


def result_layer_loaded():
    return result_layer() is not None


def after_run():
    dialog = state["dialog"]
    logs = [
        edit.toPlainText() for edit in dialog.findChildren(QTextEdit) if not isinstance(edit, QTextBrowser)
    ]
    results["log"] = max(logs, key=len) if logs else ""
    dialog.close()


def check_result():
    import numpy as np
    from osgeo import gdal

    layer = result_layer()
    state["result"] = layer
    renderer = layer.renderer()
    shader = renderer.shader().rasterShaderFunction()
    stats = layer.dataProvider().bandStatistics(1, QgsRasterBandStats.All, layer.extent(), 0)
    origin = renderer.minMaxOrigin()
    dataset = gdal.Open(layer.source())
    values = dataset.GetRasterBand(1).ReadAsArray().astype(np.float64)
    values = values[values != dataset.GetRasterBand(1).GetNoDataValue()]
    node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
    legend = iface.layerTreeView().layerTreeModel().layerLegendNodes(node, True)
    ramps = [item for item in legend if isinstance(item, QgsColorRampLegendNode)]

    def drawn(low, high):
        item = QgsColorRampLegendNode(node, shader.createColorRamp(), shader.legendSettings(), low, high)
        return item.data(Qt.DecorationRole).toImage()

    label = shader.legendSettings().numericFormat().formatDouble
    suffix = shader.legendSettings().suffix()
    panel = ramps[0].data(Qt.DecorationRole).toImage() if ramps else None
    results["result"] = {
        "name": layer.name(),
        "source": layer.source(),
        "painted_min": shader.minimumValue(),
        "painted_max": shader.maximumValue(),
        "raster_min": stats.minimumValue,
        "raster_max": stats.maximumValue,
        "data_cut": [
            float(np.percentile(values, 100 * origin.cumulativeCutLower())),
            float(np.percentile(values, 100 * origin.cumulativeCutUpper())),
        ],
        "legend_suffix": suffix,
        "legend_labels": [
            f"{label(shader.minimumValue(), QgsNumericFormatContext())}{suffix}",
            f"{label(shader.maximumValue(), QgsNumericFormatContext())}{suffix}",
        ],
        "legend_nodes": [type(item).__name__ for item in legend],
        "legend_draws_painted_range": panel is not None
        and panel == drawn(shader.minimumValue(), shader.maximumValue()),
        "legend_draws_style_range_280_320": panel is not None and panel == drawn(280.0, 320.0),
    }
    iface.layerTreeView().setCurrentLayer(layer)
    iface.mapCanvas().setExtent(layer.extent())
    iface.mapCanvas().refreshAllLayers()
    later(1500, expand_legend)


def expand_legend():
    view = iface.layerTreeView()
    node = QgsProject.instance().layerTreeRoot().findLayer(state["result"].id())
    node.setExpanded(True)
    view.expand(view.node2index(node))
    later(1500, screenshot_map)


def screenshot_map():
    canvas = iface.mapCanvas()
    canvas.waitWhileRendering()
    grab(iface.mainWindow(), "map.png")
    later(100, open_example_model)


def open_example_model():
    plugins["mocolsk_qgis"].open_example()
    later(1500, screenshot_modeler)


def screenshot_modeler():
    modeler = plugins["mocolsk_qgis"].modeler
    modeler.resize(1400, 900)
    if hasattr(modeler, "zoomFull"):
        modeler.zoomFull()
    results["modeler_title"] = modeler.windowTitle()
    later(800, screenshot_modeler_and_finish)


def screenshot_modeler_and_finish():
    grab(plugins["mocolsk_qgis"].modeler, "modeler.png")
    finish()


QgsApplication.messageLog().messageReceived.connect(record_message)
iface.mainWindow().resize(1400, 900)
later(1000, prepare_layers)
poll(lambda: False, finish, "the end of the session", every_ms=1000)

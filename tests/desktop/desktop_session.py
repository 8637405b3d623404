"""What a new user does in the QGIS desktop with the plugin installed from the zip, run inside QGIS by
``qgis --code desktop_session.py`` (see test_qgis_desktop.py).

Loads the bundled sample's 120 m LST, its 30 m thermal band and the 30 m guidance (built with "Build guidance
stack", which leaves the stack the active layer), opens "Downscale LST" from the Processing Toolbox, records
what the dialog starts with, its Model label for the 30 m LST and whether its form fits 800 x 600, presses Run
with the default parameters and records what the user sees: the result layer's name, its legend and stretch
next to the raster's statistics, the dialog's log. Then runs the same again with the Uncertainty output (names
and styles of both layers), opens the example model in the Model Designer and presses its Run button on the
sample, runs a batch of three rows, and installs ONNX Runtime from the plugin's menu with a foreign python3
first on PATH. Last, a Landsat 8 Collection 2 Level-2 file set ($MOCOLSK_DESKTOP_C2) through the "Build
guidance stack" and "Downscale LST" dialogs with their defaults. Screenshots of each go to
$MOCOLSK_DESKTOP_OUT with results.json; then the process ends (quitting QGIS normally can abort here).
"""

import json
import os
import sys
import time
import traceback
from pathlib import Path

import processing
from processing.gui.AlgorithmDialog import AlgorithmDialog
from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
from qgis.core import (
    QgsApplication,
    QgsColorRampLegendNode,
    QgsMultiBandColorRenderer,
    QgsNumericFormatContext,
    QgsProcessing,
    QgsProject,
    QgsRasterBandStats,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QScrollArea, QTextBrowser, QTextEdit, QToolButton
from qgis.utils import iface, plugins

OUT = Path(os.environ["MOCOLSK_DESKTOP_OUT"])
DEADLINE_S = float(os.environ.get("MOCOLSK_DESKTOP_DEADLINE_S", "240"))
STARTED = time.monotonic()
# Build guidance stack's reflectance parameters and the SR_B files' names for them in the JSON.
C2_SR_PARAMETERS = {
    "BLUE": "blue",
    "GREEN": "green",
    "RED": "red",
    "NIR": "nir",
    "SWIR1": "swir1",
    "SWIR2": "swir2",
}
# How long each Collection 2 dialog may run before the step gives up on it.
C2_DIALOG_S = 120
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
    results["sys_executable"] = sys.executable
    sample = resource("sample", "landsat5-tm-1988")
    state["sample"] = sample
    work = OUT / "work"
    work.mkdir(exist_ok=True)
    state["work"] = work
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
    state["lst"] = iface.addRasterLayer(lst, Path(lst).stem)
    state["lst_30m"] = iface.addRasterLayer(str(sample / "LT52240631988227CUB02_B6.TIF"), "B6 30 m")
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
    iface.setActiveLayer(guidance)  # as after Build guidance stack from the Toolbox
    state["guidance"] = guidance
    state["inputs"] = {lst, str(work / "guidance_30m_toa.tif"), state["lst_30m"].source()}
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


def layer_name(value):
    """The name of the layer a parameter widget holds (an id, a source or a layer)."""
    for layer in QgsProject.instance().mapLayers().values():
        if value in (layer, layer.id(), layer.source()):
            return layer.name()
    return value


def form_fit(dialog):
    """Whether the form scrolls sideways and where its visible "..." buttons end, in the form's viewport."""
    form = max(dialog.findChildren(QScrollArea), key=lambda area: area.widget().minimumSizeHint().width())
    buttons = [b for b in form.widget().findChildren(QToolButton) if b.isVisible() and b.text() == "…"]
    return {
        "size": [dialog.width(), dialog.height()],
        "horizontal_scroll_max": form.horizontalScrollBar().maximum(),
        "viewport_width": form.viewport().width(),
        "button_right_edges": [b.mapTo(form.viewport(), b.rect().topRight()).x() for b in buttons],
    }


def fill_and_run():
    dialog = algorithm_dialog()
    state["dialog"] = dialog
    results["dialog_title"] = dialog.windowTitle()
    wrappers = dialog.mainWidget().wrappers
    results["dialog_defaults"] = {
        "active_layer": state["guidance"].name(),
        "coarse_lst": layer_name(wrappers["INPUT_LST"].parameterValue()),
        "guidance": [layer_name(value) for value in wrappers["GUIDANCE"].parameterValue() or []],
    }
    dialog.setParameters({"INPUT_LST": state["lst_30m"], "GUIDANCE": [state["guidance"]]})
    results["model_label_30m"] = wrappers["MODEL"].wrappedLabel().text()
    dialog.setParameters({"INPUT_LST": state["lst"], "GUIDANCE": [state["guidance"]]})
    dialog.resize(800, 600)
    QApplication.processEvents()
    results["fit_800x600"] = form_fit(dialog)
    parameters = dialog.createProcessingParameters()
    results["parameters"] = {key: str(value) for key, value in parameters.items()}
    results["model_label"] = wrappers["MODEL"].wrappedLabel().text()
    grab(dialog, "dialog.png")
    dialog.runButton().click()
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
    later(100, run_again_with_uncertainty)


def run_again_with_uncertainty():
    """The same run again, now with the Uncertainty output: both layers load under their own names."""
    import numpy as np
    from osgeo import gdal

    processing.runAndLoadResults(
        "mocolsk:downscalelst",
        {
            "INPUT_LST": state["lst"].source(),
            "GUIDANCE": [state["guidance"].source()],
            "OUTPUT": QgsProcessing.TEMPORARY_OUTPUT,
            "UNCERTAINTY": QgsProcessing.TEMPORARY_OUTPUT,
        },
    )
    layers = QgsProject.instance().mapLayers().values()
    results["layer_names"] = sorted(layer.name() for layer in layers)
    sigma = next(layer for layer in layers if layer.name().startswith("Uncertainty"))
    renderer = sigma.renderer()
    shader = renderer.shader().rasterShaderFunction()
    dataset = gdal.Open(sigma.source())
    values = dataset.GetRasterBand(1).ReadAsArray().astype(np.float64)
    values = values[values != dataset.GetRasterBand(1).GetNoDataValue()]
    results["uncertainty"] = {
        "name": sigma.name(),
        "renderer": type(renderer).__name__,
        "painted": [renderer.classificationMin(), renderer.classificationMax()],
        "percentiles_2_98": [float(np.percentile(values, 2)), float(np.percentile(values, 98))],
        "range": [float(values.min()), float(values.max())],
        "legend_suffix": shader.legendSettings().suffix(),
        "labels": [item.label for item in shader.colorRampItemList()],
        "lightness": [item.color.lightness() for item in shader.colorRampItemList()],
    }
    root = QgsProject.instance().layerTreeRoot()
    view = iface.layerTreeView()
    for node in root.findLayers():
        node.setItemVisibilityChecked(node.layerId() == sigma.id())
        node.setExpanded(node.layerId() == sigma.id())
        view.setExpanded(view.node2index(node), node.layerId() == sigma.id())
    view.setCurrentLayer(sigma)
    iface.mapCanvas().refreshAllLayers()
    later(1500, screenshot_uncertainty)


def screenshot_uncertainty():
    iface.mapCanvas().waitWhileRendering()
    grab(iface.mainWindow(), "uncertainty.png")
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
    later(100, run_model_from_the_designer)


def run_model_from_the_designer():
    """Press the designer's green Run (a modal Processing dialog on the model) and run it on the sample."""
    later(800, fill_and_run_model)
    plugins["mocolsk_qgis"].modeler.actionRun().trigger()  # returns when the dialog closes
    later(200, open_batch)


def fill_and_run_model():
    dialog = algorithm_dialog()
    state["model_dialog"] = dialog
    results["model_dialog_provider"] = dialog.algorithm().provider().id()
    sample = state["sample"]
    wrappers = dialog.mainWidget().wrappers
    results["model_dialog_defaults"] = {
        name: str(layer_name(wrappers[name].parameterValue())) for name in wrappers
    }
    bands = ("blue", "green", "red", "nir", "swir1", "swir2", "dem")
    dialog.setParameters(
        {
            **dict.fromkeys(bands),
            "landsat_mtl": str(sample / "LT52240631988227CUB02_MTL.txt"),
            "reflectance_values": 2,  # Landsat Level-1 digital numbers, to TOA reflectance with the MTL
            "coarse_lst": state["lst"],
            "reference_lst": state["lst_30m"],
        }
    )
    dialog.algorithmFinished.connect(model_finished)
    dialog.resize(1100, 800)
    dialog.runButton().click()
    poll(
        lambda: "model_run" in results or "Execution failed" in dialog_log(dialog),
        after_model_run,
        "the example model's run",
    )


def model_finished(successful, outputs):
    results["model_run"] = {"successful": successful, "outputs": {k: str(v) for k, v in outputs.items()}}


def after_model_run():
    dialog = state["model_dialog"]
    results.setdefault("model_run", {"successful": False, "outputs": {}})["log"] = dialog_log(dialog)
    dialog.showLog()
    grab(dialog, "modeler_run.png")
    dialog.close()


def dialog_log(dialog):
    logs = [
        edit.toPlainText() for edit in dialog.findChildren(QTextEdit) if not isinstance(edit, QTextBrowser)
    ]
    return max(logs, key=len) if logs else ""


def open_batch():
    """Downscale LST as a batch of three rows (bicubic, TsHARP, MoCoLSK), Uncertainty left empty."""
    dialog = BatchAlgorithmDialog(
        QgsApplication.processingRegistry().createAlgorithmById("mocolsk:downscalelst"), iface.mainWindow()
    )
    state["batch"] = dialog
    dialog.show()
    panel = dialog.mainWidget()
    panel.addRow(2)
    panel.checkLoadLayersOnCompletion.setChecked(True)
    column = panel.parameter_to_column
    context = panel.processing_context
    outputs = [state["work"] / f"batch_{name}.tif" for name in ("bicubic", "tsharp", "mocolsk")]
    for row, (method, output) in enumerate(zip((1, 2, 0), outputs)):
        panel.wrappers[row][column["INPUT_LST"]].setParameterValue(state["lst"].source(), context)
        panel.wrappers[row][column["GUIDANCE"]].setParameterValue([state["guidance"].source()], context)
        panel.wrappers[row][column["METHOD"]].setParameterValue(method, context)
        panel.tblParameters.cellWidget(row + 1, column["OUTPUT"]).setValue(str(output))
    table = panel.tblParameters
    columns = [c for c in range(table.columnCount()) if not table.isColumnHidden(c)]
    results["batch_columns"] = {table.horizontalHeaderItem(c).text(): table.columnWidth(c) for c in columns}
    results["batch_table_width"] = sum(table.columnWidth(c) for c in columns)
    dialog.resize(1400, 400)
    grab(dialog, "batch.png")
    dialog.runAlgorithm()  # runs the rows one after the other, here
    results["batch"] = {
        "log": dialog_log(dialog),
        "written": [output.is_file() for output in outputs],
        "loaded": sorted(
            layer.name() for layer in QgsProject.instance().mapLayers().values() if "batch_" in layer.source()
        ),
    }
    dialog.close()
    later(300, open_installer)


def open_installer():
    """Plugins > MoCoLSK > Install runtime, with a foreign python3 first on PATH: press Install."""
    later(800, press_install)
    plugins["mocolsk_qgis"].show_installer()  # modal; returns when the dialog closes
    later(200, run_collection2)


def installer_dialog():
    from mocolsk_qgis.runtime_dialog import InstallRuntimeDialog

    dialogs = [
        w for w in QApplication.topLevelWidgets() if isinstance(w, InstallRuntimeDialog) and w.isVisible()
    ]
    return dialogs[0] if dialogs else None


def press_install():
    dialog = installer_dialog()
    state["installer"] = dialog
    results["installer"] = {
        "python": dialog.python,
        "interpreter_text": dialog.interpreter.text(),
        "install_enabled": dialog.install_button.isEnabled(),
    }
    dialog.install_button.click()
    poll(lambda: dialog.exit_code is not None, after_install, "the runtime installer", every_ms=500)


def after_install():
    import numpy

    dialog = state["installer"]
    bar = dialog.log.verticalScrollBar()
    results["installer"].update(
        {
            "exit_code": dialog.exit_code,
            "log": dialog.log.toPlainText(),
            "log_at_end": bar.value() == bar.maximum(),
            "qgis_numpy": numpy.__version__,
        }
    )
    later(300, screenshot_installer)


def screenshot_installer():
    dialog = state["installer"]
    grab(dialog, "installer.png")
    dialog.close()


def run_collection2():
    """A Landsat 8 Collection 2 Level-2 file set ($MOCOLSK_DESKTOP_C2, a JSON of its paths), loaded as a user
    drags the files in: "Build guidance stack" from SR_B2..SR_B7, then "Downscale LST" on ST_B10 at 120 m,
    each opened as a dialog, given only its input layers, and run with every other parameter at its
    default. Its outcome goes to results["c2"] (and its errors there), so that a failure here fails only
    the test of this step."""
    record = results["c2"] = {"errors": [], "log_messages": []}
    if not os.environ.get("MOCOLSK_DESKTOP_C2"):
        record["errors"].append("MOCOLSK_DESKTOP_C2 is not set")
        return finish()
    files = json.loads(Path(os.environ["MOCOLSK_DESKTOP_C2"]).read_text(encoding="utf-8"))
    state["c2_started"] = time.monotonic()
    QgsApplication.messageLog().messageReceived.connect(record_c2_message)
    c2_step(load_collection2, files)()


def record_c2_message(message, tag, level):
    results["c2"]["log_messages"].append({"tag": tag, "level": int(level), "message": message})


def c2_step(step, *arguments):
    """``step`` as a slot whose exception is recorded in results["c2"] and ends the session."""

    def run():
        results["step"] = step.__name__
        try:
            step(*arguments)
        except Exception:
            results["c2"]["errors"].append(f"{step.__name__}: {traceback.format_exc()}")
            finish()

    return run


def load_collection2(files):
    layers = {name: iface.addRasterLayer(path, Path(path).stem) for name, path in files["sr"].items()}
    state["c2_lst"] = iface.addRasterLayer(files["st_b10_120m"], Path(files["st_b10_120m"]).stem)
    parameters = {parameter: layers[name] for parameter, name in C2_SR_PARAMETERS.items()}
    run_in_dialog("mocolsk:buildguidance", parameters, "build", downscale_collection2)


def run_in_dialog(algorithm_id, parameters, key, then):
    """Open ``algorithm_id``'s dialog, set ``parameters``, press Run and record in results["c2"][key] whether
    it succeeded, its outputs, its log and the lines the log shows in red (errors); then ``then(record)``
    once it has finished, failed or run for C2_DIALOG_S seconds."""
    dialog = processing.createAlgorithmDialog(algorithm_id, {})
    state[f"c2_{key}_dialog"] = dialog
    dialog.show()
    dialog.setParameters(parameters)
    dialog.resize(900, 700)
    record = results["c2"][key] = {"successful": None, "outputs": {}}
    if "MODEL" in dialog.mainWidget().wrappers:
        record["model_label"] = dialog.mainWidget().wrappers["MODEL"].wrappedLabel().text()

    def finished(successful, outputs):
        record.update(successful=successful, outputs={k: str(v) for k, v in outputs.items()})

    def ended():
        record["log"] = dialog_log(dialog)
        record["red_log_lines"] = red_log_lines(dialog)
        record["seconds"] = round(time.monotonic() - started, 1)
        dialog.close()
        then(record)

    dialog.algorithmFinished.connect(finished)
    started = time.monotonic()
    dialog.runButton().click()
    poll(
        lambda: (
            record["successful"] is not None
            or "Execution failed" in dialog_log(dialog)
            or time.monotonic() - started > C2_DIALOG_S
        ),
        c2_step(ended),
        f"{algorithm_id} on the Collection 2 files",
    )


def red_log_lines(dialog):
    """The text a dialog's log paints red: the errors the algorithm or Processing reported."""
    from qgis.PyQt.QtGui import QColor

    edits = [edit for edit in dialog.findChildren(QTextEdit) if not isinstance(edit, QTextBrowser)]
    document = max(edits, key=lambda edit: len(edit.toPlainText())).document()
    lines, block = [], document.begin()
    while block.isValid():
        iterator = block.begin()
        while not iterator.atEnd():
            fragment = iterator.fragment()
            if fragment.charFormat().foreground().color() == QColor("red"):
                lines.append(fragment.text())
            iterator += 1
        block = block.next()
    return lines


def downscale_collection2(build):
    if not build["successful"]:
        return finish()
    guidance = next(
        layer
        for layer in QgsProject.instance().mapLayers().values()
        if layer.source() == build["outputs"]["OUTPUT"]
    )
    results["c2"]["guidance_bands"] = [guidance.bandName(band) for band in range(1, guidance.bandCount() + 1)]
    parameters = {"INPUT_LST": state["c2_lst"], "GUIDANCE": [guidance]}
    run_in_dialog("mocolsk:downscalelst", parameters, "downscale", check_collection2_result)


def check_collection2_result(downscale):
    """The result layer's name and source, a copy of its file for the test to read, its value range."""
    import shutil

    import numpy as np
    from osgeo import gdal

    record = results["c2"]
    QgsApplication.messageLog().messageReceived.disconnect(record_c2_message)
    record["seconds"] = round(time.monotonic() - state["c2_started"], 1)
    if not downscale["successful"]:
        return finish()
    source = downscale["outputs"]["OUTPUT"]
    layer = next(layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == source)
    dataset = gdal.Open(source)
    values = dataset.GetRasterBand(1).ReadAsArray().astype(np.float64)
    values = values[values != dataset.GetRasterBand(1).GetNoDataValue()]
    copy = OUT / "c2_lst_30m.tif"
    shutil.copyfile(source, copy)
    record["result"] = {
        "name": layer.name(),
        "source": source,
        "copy": str(copy),
        "kelvin_min": float(values.min()),
        "kelvin_max": float(values.max()),
        "kelvin_median": float(np.median(values)),
    }
    finish()


QgsApplication.messageLog().messageReceived.connect(record_message)
iface.mainWindow().resize(1400, 900)
later(1000, prepare_layers)
poll(lambda: False, finish, "the end of the session", every_ms=1000)

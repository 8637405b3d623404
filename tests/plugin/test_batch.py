"""Batch processing: the Toolbox's batch dialog runs "Downscale LST" twice, one row each."""

import numpy as np
from osgeo import gdal
from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
from processing.tools import dataobjects
from qgis.core import QgsApplication, QgsProject, QgsSingleBandPseudoColorRenderer
from qgis.PyQt.QtWidgets import QTextEdit

BICUBIC, TSHARP = 1, 2


def test_batch_dialog_runs_two_rows(mocolsk_provider, qgis_parent, sample_scene, tmp_path):
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("mocolsk:downscalelst")
    dialog = BatchAlgorithmDialog(algorithm, parent=qgis_parent)
    panel = dialog.mainWidget()
    panel.addRow()
    panel.checkLoadLayersOnCompletion.setChecked(True)
    context = dataobjects.createContext()
    column = panel.parameter_to_column
    outputs = [tmp_path / "bicubic.tif", tmp_path / "tsharp.tif"]
    for row, (method, output) in enumerate(zip((BICUBIC, TSHARP), outputs)):
        panel.wrappers[row][column["INPUT_LST"]].setParameterValue(str(sample_scene.lst_120m), context)
        panel.wrappers[row][column["GUIDANCE"]].setParameterValue([str(sample_scene.guidance_30m)], context)
        panel.wrappers[row][column["METHOD"]].setParameterValue(method, context)
        panel.tblParameters.cellWidget(row + 1, column["OUTPUT"]).setValue(str(output))
    try:
        dialog.runAlgorithm()
        bicubic, tsharp = (gdal.Open(str(path)).ReadAsArray() for path in outputs)
        assert bicubic.shape == tsharp.shape == (64, 64)
        assert np.all(bicubic != -9999.0) and np.all(tsharp != -9999.0)
        assert np.abs(bicubic - tsharp).max() > 0.1  # TsHARP used the guidance, bicubic did not
        log = "\n".join(edit.toPlainText() for edit in dialog.findChildren(QTextEdit))
        assert "Batch execution completed" in log, log
        # the optional Uncertainty column left empty is not reported as a layer that failed to load
        assert "not correctly generated" not in log
        loaded = {layer.source(): layer for layer in QgsProject.instance().mapLayers().values()}
        assert {str(path) for path in outputs} <= set(loaded)
        # every row's layer gets the temperature style (each run has its own post-processor)
        assert all(
            isinstance(loaded[str(path)].renderer(), QgsSingleBandPseudoColorRenderer) for path in outputs
        )
    finally:
        QgsProject.instance().removeAllMapLayers()
        dialog.close()


def test_the_batch_table_stays_compact_with_short_option_labels_and_headers(mocolsk_provider):
    """The batch table sizes each column to its header and its widest option (it was 3,719 px wide)."""
    algorithm = QgsApplication.processingRegistry().algorithmById("mocolsk:downscalelst")
    shown = [
        parameter
        for parameter in algorithm.parameterDefinitions()
        if not parameter.flags() & (parameter.FlagAdvanced | parameter.FlagHidden)
    ]
    for parameter in shown:
        if parameter.type() == "enum":
            assert all(len(option) <= 50 for option in parameter.options()), parameter.options()
        if parameter.name() != "DEVICE":  # says what auto runs on here
            assert len(parameter.description()) <= 50, parameter.description()

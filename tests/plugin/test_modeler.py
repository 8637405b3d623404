"""The example graphical-modeler model: build guidance -> downscale -> evaluate."""

from pathlib import Path

import numpy as np
import processing
from osgeo import gdal
from qgis.core import QgsApplication, QgsProcessingModelAlgorithm

MODEL_FILE = (
    Path(__file__).resolve().parents[2]
    / "resources"
    / "models"
    / "mocolsk_guidance_downscale_evaluate.model3"
)


def load_model():
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL_FILE))
    return model


def test_model_chains_the_three_algorithms(mocolsk_provider):
    model = load_model()
    ok, errors = model.validate()
    assert ok, errors
    children = {child.childId(): child for child in model.childAlgorithms().values()}
    assert {c.algorithmId() for c in children.values()} == {
        "mocolsk:buildguidance",
        "mocolsk:downscalelst",
        "mocolsk:evaluate",
    }
    assert model.dependsOnChildAlgorithms("evaluate") == {"downscale", "build_guidance"}


def test_model_runs_on_the_landsat_sample(mocolsk_provider, sample_scene, tiny_package_x4, tmp_path):
    parameters = {name: str(path) for name, path in sample_scene.sr_bands.items()}
    parameters.update(
        {
            "coarse_lst": str(sample_scene.lst_120m),
            "reference_lst": str(sample_scene.reference_30m),
            "model_package": str(tiny_package_x4.card_path),
            "build_guidance:Guidance stack": str(tmp_path / "guidance.tif"),
            "downscale:Downscaled LST": str(tmp_path / "lst_30m.tif"),
            "evaluate:Evaluation report": str(tmp_path / "report.html"),
            "evaluate:Difference": str(tmp_path / "difference.tif"),
        }
    )
    results = processing.run("mocolsk:guidance_downscale_evaluate", parameters)
    downscaled = gdal.Open(results["downscale:Downscaled LST"]).ReadAsArray()
    assert downscaled.shape == (64, 64) and np.all(downscaled != -9999.0)
    assert "Root-mean-square error" in Path(results["evaluate:Evaluation report"]).read_text(encoding="utf-8")
    reference = gdal.Open(str(sample_scene.reference_30m)).ReadAsArray()
    np.testing.assert_allclose(
        gdal.Open(str(tmp_path / "difference.tif")).ReadAsArray(), downscaled - reference, atol=1e-3
    )


def test_model_is_offered_by_the_provider_under_an_id_without_spaces_or_commas(mocolsk_provider):
    algorithm = QgsApplication.processingRegistry().algorithmById("mocolsk:guidance_downscale_evaluate")
    assert algorithm is not None and algorithm.group() == "MoCoLSK examples"
    assert algorithm.displayName() == "Landsat guidance, downscale and evaluate"
    instance = QgsApplication.processingRegistry().createAlgorithmById("mocolsk:guidance_downscale_evaluate")
    assert instance.id() == "mocolsk:guidance_downscale_evaluate"


def test_model_dialog_lists_inputs_in_workflow_order_with_labelled_outputs(mocolsk_provider):
    model = load_model()
    order = [parameter.parameterName() for parameter in model.orderedParameters()]
    workflow = ("blue", "swir2", "landsat_mtl", "dem", "model", "coarse_lst", "reference_lst")
    assert [order.index(name) for name in workflow] == sorted(order.index(name) for name in workflow)
    destinations = [p for p in model.parameterDefinitions() if p.isDestination()]
    assert {p.description() for p in destinations} == {
        "Guidance stack (fine grid)",
        "Downscaled LST (guidance grid, K)",
        "Evaluation report (HTML)",
        "Difference to the reference (K)",
    }
    choice = model.parameterDefinition("model")
    bundled = sorted(p.stem for p in (MODEL_FILE.parent).glob("mocolsk-*.json"))
    assert choice.options() == ["auto", *bundled] and choice.defaultValue() == "auto"


def test_model_diagram_boxes_are_wide_enough_for_their_labels(mocolsk_provider):
    from qgis.PyQt.QtGui import QFont, QFontMetricsF

    model = load_model()
    font = QFont()
    font.setPixelSize(12)  # the designer's box font
    metrics = QFontMetricsF(font)
    components = [*model.parameterComponents().values(), *model.childAlgorithms().values()]
    for child in model.childAlgorithms().values():
        components.extend(child.modelOutputs().values())
    for component in components:
        label = component.description() or model.parameterDefinition(component.parameterName()).description()
        assert metrics.horizontalAdvance(label) + 40 < component.size().width(), label


def test_toolbox_offers_open_in_model_designer_for_the_example_model_only(mocolsk_provider):
    from processing.gui.ProviderActions import ProviderContextMenuActions

    from mocolsk_qgis.plugin import editable_copy

    registry = QgsApplication.processingRegistry()
    model = registry.algorithmById("mocolsk:guidance_downscale_evaluate")
    actions = [a for a in ProviderContextMenuActions.actions if a.name == "Open in Model Designer…"]
    assert len(actions) == 1
    action = actions[0]
    action.itemData = model
    assert action.isEnabled()
    action.itemData = registry.algorithmById("mocolsk:downscalelst")
    assert not action.isEnabled()
    copy = editable_copy(model)
    assert copy.sourceFilePath() == ""  # the designer's Save asks where to write; the plugin's file stays
    assert set(copy.childAlgorithms()) == set(model.childAlgorithms())


def test_the_designers_run_dialog_opens_on_the_example_model_with_its_provider(
    mocolsk_provider, qgis_iface, monkeypatch
):
    """The designer's Run opens a Processing dialog on a copy of its model; on a model without a provider
    QGIS 3.22 crashes there (QgsProcessingAlgorithmDialogBase::setAlgorithm). The desktop test presses Run."""
    import processing.modeler.ModelerDialog
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.gui import QgsBrowserGuiModel

    # pytest-qgis's stand-in iface lacks the iconSize() the designer and the browser model the parameters
    # panel ask a real one for.
    monkeypatch.setattr(processing.modeler.ModelerDialog, "iface", None)
    browser_model = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser_model, raising=False)

    from mocolsk_qgis.plugin import example_model, open_in_modeler

    designer = open_in_modeler(example_model())
    try:
        to_run = designer.model().create()
        assert to_run.provider() is not None and to_run.provider().id() == "mocolsk"
        assert designer.model().sourceFilePath() == ""
        dialog = AlgorithmDialog(to_run, parent=designer)
        assert dialog.algorithm().provider().id() == "mocolsk"
        dialog.close()
    finally:
        designer.setDirty(False)
        designer.close()

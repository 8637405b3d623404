""" "Downscale LST" through processing.run on the real Landsat 5 sample: grid, units, styles,
cancellation and every bad input surfacing as a QgsProcessingException."""

import numpy as np
import processing
import pytest
from osgeo import gdal, osr
from qgis.core import (
    QgsColorRampLegendNode,
    QgsLayerTreeModel,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtCore import Qt

from .conftest import SCALE, block_mean, coarse_geotransform, write_geotiff

ALGORITHM = "mocolsk:downscalelst"
MOCOLSK, BICUBIC, TSHARP, DMS = 0, 1, 2, 3
KELVIN, CELSIUS = 0, 1


def downscale_parameters(scene, output, **overrides):
    parameters = {
        "INPUT_LST": str(scene.lst_120m),
        "LST_BAND": 1,
        "GUIDANCE": [str(scene.guidance_30m)],
        "METHOD": MOCOLSK,
        "OUTPUT": str(output),
    }
    parameters.update(overrides)
    return parameters


def run_and_load(parameters):
    """Runs the algorithm as the toolbox does, loading the output into the project; returns the loaded layer."""
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    results = processing.runAndLoadResults(ALGORITHM, parameters, context=context)
    loaded = [
        layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == results["OUTPUT"]
    ]
    assert len(loaded) == 1
    return loaded[0]


def read(path):
    dataset = gdal.Open(str(path))
    band = dataset.GetRasterBand(1)
    return dataset, band, band.ReadAsArray()


def test_mocolsk_output_is_kelvin_on_the_guidance_grid(
    run_algorithm, sample_scene, tiny_package_x4, tmp_path
):
    output = tmp_path / "lst_30m.tif"
    results = run_algorithm(
        ALGORITHM, downscale_parameters(sample_scene, output, MODEL_FILE=str(tiny_package_x4.card_path))
    )

    assert results["OUTPUT"] == str(output) and results["SCALE"] == SCALE
    assert results["LST_UNITS_USED"] == "kelvin"
    dataset, band, values = read(output)
    guidance = gdal.Open(str(sample_scene.guidance_30m))
    assert (dataset.RasterXSize, dataset.RasterYSize) == (guidance.RasterXSize, guidance.RasterYSize)
    assert dataset.GetGeoTransform() == pytest.approx(guidance.GetGeoTransform())
    assert osr.SpatialReference(dataset.GetProjection()).IsSame(
        osr.SpatialReference(guidance.GetProjection())
    )
    assert band.GetNoDataValue() == -9999.0 and band.GetUnitType() == "K"
    assert np.all(values != -9999.0)
    assert sample_scene.lst_min_k - 5 < values.min() and values.max() < sample_scene.lst_max_k + 5
    # coarse-pixel conservation (on by default): the output averages back to the input LST
    coarse = gdal.Open(str(sample_scene.lst_120m)).ReadAsArray()
    np.testing.assert_allclose(block_mean(values.astype(np.float64)), coarse, atol=1e-3)
    assert results["MAX_CONSERVATION_RESIDUAL_K"] < 1e-3


def test_classic_method_writes_celsius_and_loads_with_a_celsius_legend(
    mocolsk_provider, sample_scene, tmp_path
):
    output = tmp_path / "lst_celsius.tif"
    layer = run_and_load(downscale_parameters(sample_scene, output, METHOD=TSHARP, OUTPUT_UNITS=CELSIUS))
    _, band, values = read(output)
    assert band.GetUnitType() == "degC"
    assert sample_scene.lst_min_k - 278.15 < values.min() and values.max() < sample_scene.lst_max_k - 268.15
    try:
        renderer = layer.renderer()
        assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
        shader = renderer.shader().rasterShaderFunction()
        assert shader.legendSettings().suffix() == " °C"
        # the stretch follows this output's values, not the QML's placeholder range
        assert (
            values.min() - 0.5
            <= renderer.classificationMin()
            < renderer.classificationMax()
            <= values.max() + 0.5
        )
        labels = [item.label for item in shader.colorRampItemList()]
        assert all(label.endswith("°C") for label in labels)
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


@pytest.mark.parametrize("units, suffix", [(KELVIN, " K"), (CELSIUS, " °C")])
def test_the_layers_panel_legend_shows_the_fitted_stretch_in_the_output_units(
    units, suffix, mocolsk_provider, sample_scene, tmp_path
):
    root = QgsProject.instance().layerTreeRoot()
    layers_panel = QgsLayerTreeModel(root)
    layer = run_and_load(
        downscale_parameters(sample_scene, tmp_path / "lst.tif", METHOD=TSHARP, OUTPUT_UNITS=units)
    )
    try:
        tree_layer = root.findLayer(layer.id())
        ramps = [
            node
            for node in layers_panel.layerLegendNodes(tree_layer)
            if isinstance(node, QgsColorRampLegendNode)
        ]
        assert len(ramps) == 1 and ramps[0].settings().suffix() == suffix
        renderer = layer.renderer()
        shader = renderer.shader().rasterShaderFunction()
        fitted = QgsColorRampLegendNode(
            tree_layer,
            shader.createColorRamp(),
            shader.legendSettings(),
            renderer.classificationMin(),
            renderer.classificationMax(),
        )
        # the legend node draws its min and max labels into its icon; it must match one drawn for the fitted range
        assert ramps[0].data(Qt.DecorationRole).toImage() == fitted.data(Qt.DecorationRole).toImage()
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_a_temporary_output_is_named_after_what_it_is(mocolsk_provider, sample_scene, tiny_package_x4):
    layer = run_and_load(
        downscale_parameters(
            sample_scene,
            QgsProcessing.TEMPORARY_OUTPUT,
            MODEL_FILE=str(tiny_package_x4.card_path),
            OUTPUT_UNITS=KELVIN,
        )
    )
    name = layer.name()
    QgsProject.instance().removeMapLayer(layer.id())
    assert name == "LST 30 m, MoCoLSK x4 (K)"


def test_an_output_file_the_user_named_loads_under_its_base_name(mocolsk_provider, sample_scene, tmp_path):
    layer = run_and_load(downscale_parameters(sample_scene, tmp_path / "afternoon_30m.tif", METHOD=DMS))
    name = layer.name()
    QgsProject.instance().removeMapLayer(layer.id())
    assert name == "afternoon_30m"


def test_cancelled_run_raises_and_leaves_no_file(run_algorithm, sample_scene, tiny_package_x4, tmp_path):
    output = tmp_path / "cancelled.tif"
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel() if percent > 0 else None)
    with pytest.raises(QgsProcessingException, match="[Cc]ancelled"):
        run_algorithm(
            ALGORITHM,
            downscale_parameters(
                sample_scene, output, MODEL_FILE=str(tiny_package_x4.card_path), TILE_SIZE=16
            ),
            feedback=feedback,
        )
    assert list(tmp_path.iterdir()) == []


def test_progress_reaches_100_and_the_log_says_what_was_decided(run_algorithm, sample_scene, tmp_path):
    feedback = QgsProcessingFeedback()
    percents, messages = [], []
    feedback.progressChanged.connect(percents.append)
    feedback.pushInfo = messages.append
    run_algorithm(
        ALGORITHM, downscale_parameters(sample_scene, tmp_path / "out.tif", METHOD=BICUBIC), feedback=feedback
    )
    assert percents[-1] == 100
    assert any("LST units: kelvin" in m for m in messages)
    assert any(m.startswith("Done: x4 with bicubic") for m in messages)


def test_the_qa_mask_is_grown_by_the_pixels_given(run_algorithm, sample_scene, tmp_path):
    lst = gdal.Open(str(sample_scene.lst_120m))
    cloud = np.zeros((lst.RasterYSize, lst.RasterXSize), np.uint8)
    cloud[10, 10] = 1
    qa = write_geotiff(tmp_path / "cloud.tif", cloud, lst.GetGeoTransform(), lst.GetProjection())
    output = tmp_path / "out.tif"
    run_algorithm(
        ALGORITHM,
        downscale_parameters(sample_scene, output, METHOD=BICUBIC, QA_MASK=str(qa), QA_MASK_GROW_PX=2),
    )
    dataset, _, values = read(output)
    assert dataset.GetMetadata()["MOCOLSK_QA_MASK_GROW_PX"] == "2"
    assert (values == -9999.0).sum() == (5 * SCALE) ** 2


def lst_variant(scene, tmp_path, name, pixel_m=120.0, celsius=False, unit=None, all_nodata=False):
    """An LST raster over the sample's extent, derived from the real 120 m LST."""
    lst = gdal.Open(str(scene.lst_120m)).ReadAsArray().astype(np.float32)
    geotransform = coarse_geotransform(scene.geotransform)
    if pixel_m != 120.0:
        size = int(lst.shape[0] * 120.0 / pixel_m)
        index = (np.arange(size) * pixel_m / 120.0).astype(int)
        lst = lst[np.ix_(index, index)]
        geotransform = (geotransform[0], pixel_m, 0.0, geotransform[3], 0.0, -pixel_m)
    if celsius:
        lst = lst - 273.15
    if all_nodata:
        lst = np.full(lst.shape, -9999.0, np.float32)
    return write_geotiff(tmp_path / name, lst, geotransform, scene.crs_wkt, nodata=-9999.0, unit=unit)


def five_band_guidance(scene, tmp_path):
    stack = gdal.Open(str(scene.guidance_30m))
    names = [stack.GetRasterBand(i).GetDescription() for i in range(1, 6)]
    return write_geotiff(
        tmp_path / "guidance_no_swir2.tif",
        stack.ReadAsArray()[:5],
        scene.geotransform,
        scene.crs_wkt,
        names=names,
    )


BAD_INPUTS = {
    "LST on the guidance grid, its sensor unknown": (
        lambda s, t: {"INPUT_LST": str(lst_variant(s, t, "lst_30m.tif", pixel_m=30.0))},
        "so it is on a grid as fine as the guidance.*Native LST pixel",
    ),
    "missing LST band": (lambda s, t: {"LST_BAND": 2}, "band 2 does not exist"),
    "missing guidance band": (
        lambda s, t: {"GUIDANCE": [str(five_band_guidance(s, t))]},
        "guidance band 'swir2'.*is missing",
    ),
    "Celsius labelled Kelvin": (
        lambda s, t: {"INPUT_LST": str(lst_variant(s, t, "lst_celsius_as_k.tif", celsius=True, unit="K"))},
        "outside the plausible",
    ),
    "empty LST layer": (
        lambda s, t: {"INPUT_LST": str(lst_variant(s, t, "lst_empty.tif", all_nodata=True))},
        "no valid pixels",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_processing_exception_with_the_engine_message(
    case, run_algorithm, sample_scene, tiny_package_x4, tmp_path
):
    make_overrides, message = BAD_INPUTS[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    output = tmp_path / "out.tif"
    parameters = downscale_parameters(sample_scene, output, MODEL_FILE=str(tiny_package_x4.card_path))
    parameters.update(make_overrides(sample_scene, inputs))
    with pytest.raises(QgsProcessingException, match=message):
        run_algorithm(ALGORITHM, parameters)
    assert not output.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["inputs"]


def test_missing_model_package_file_is_named(run_algorithm, sample_scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="none.json.*not found"):
        run_algorithm(
            ALGORITHM,
            downscale_parameters(sample_scene, tmp_path / "out.tif", MODEL_FILE=str(tmp_path / "none.json")),
        )


def bundled_model_names():
    from engine.package import bundled_packages

    return sorted(bundled_packages())


@pytest.mark.parametrize("model_name", bundled_model_names())
def test_bundled_model_runs_by_name(model_name, run_algorithm, sample_scene, tmp_path):
    from engine.package import resolve_package

    scale = resolve_package(model_name).card.scale
    _, _, reference = read(sample_scene.reference_30m)
    lst = write_geotiff(
        tmp_path / "lst.tif",
        block_mean(reference, scale),
        coarse_geotransform(sample_scene.geotransform, scale),
        sample_scene.crs_wkt,
        nodata=-9999.0,
    )
    output = tmp_path / "bundled.tif"
    results = run_algorithm(
        ALGORITHM, downscale_parameters(sample_scene, output, MODEL=model_name, THREADS=1, INPUT_LST=str(lst))
    )
    _, band, values = read(output)
    assert results["SCALE"] == scale and np.all(values != -9999.0)
    assert sample_scene.lst_min_k - 5 < values.min() and values.max() < sample_scene.lst_max_k + 5


def test_the_model_defaults_to_auto_before_the_bundled_names(mocolsk_provider):
    from qgis.core import QgsApplication

    parameter = QgsApplication.processingRegistry().algorithmById(ALGORITHM).parameterDefinition("MODEL")
    assert parameter.defaultValue() == "auto"
    assert parameter.options() == ["auto", *bundled_model_names()]


def test_a_x4_pair_without_a_model_runs_with_the_x4_bundled_package(run_algorithm, sample_scene, tmp_path):
    feedback = QgsProcessingFeedback()
    messages = []
    feedback.pushInfo = messages.append
    output = tmp_path / "auto.tif"
    results = run_algorithm(
        ALGORITHM, downscale_parameters(sample_scene, output, THREADS=1), feedback=feedback
    )
    assert results["SCALE"] == 4 and output.exists()
    assert (
        "Model: mocolsk-x4-landsat-light, the bundled package for x4 (LST pixel 120 m / guidance pixel 30 m)"
        in messages
    )
    assert any(m.startswith("Done: x4 with mocolsk mocolsk-x4-landsat-light") for m in messages)


def test_gpu_requested_without_one_fails_with_an_explanation(
    run_algorithm, sample_scene, tiny_package_x4, tmp_path
):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has a CUDA-enabled ONNX Runtime")
    output = tmp_path / "gpu.tif"
    with pytest.raises(QgsProcessingException, match="GPU was requested"):
        run_algorithm(
            ALGORITHM,
            downscale_parameters(sample_scene, output, MODEL_FILE=str(tiny_package_x4.card_path), DEVICE=2),
        )
    assert not output.exists()


def test_the_uncertainty_output_is_skipped_unless_asked_and_written_when_asked(
    run_algorithm, sample_scene, tmp_path
):
    from qgis.core import QgsApplication

    parameter = (
        QgsApplication.processingRegistry().algorithmById(ALGORITHM).parameterDefinition("UNCERTAINTY")
    )
    assert parameter.description() == "Uncertainty (K)"
    assert parameter.flags() & parameter.FlagOptional and not parameter.createByDefault()
    plain = run_algorithm(ALGORITHM, downscale_parameters(sample_scene, tmp_path / "plain.tif", THREADS=1))
    assert not plain.get("UNCERTAINTY")
    sigma_path = tmp_path / "sigma.tif"
    results = run_algorithm(
        ALGORITHM,
        downscale_parameters(sample_scene, tmp_path / "lst.tif", THREADS=1, UNCERTAINTY=str(sigma_path)),
    )
    assert results["UNCERTAINTY"] == str(sigma_path)
    dataset, band, sigma = read(sigma_path)
    _, _, lst = read(tmp_path / "lst.tif")
    assert band.GetUnitType() == "K" and sigma.shape == lst.shape
    assert (sigma >= 0).all() and sigma.mean() > 0.001
    assert dataset.GetMetadata()["MOCOLSK_METHOD"] == "mocolsk"


def test_the_device_parameter_says_which_backend_and_device_will_run(mocolsk_provider):
    from qgis.core import QgsApplication

    from mocolsk_qgis._engine import engine_module

    label = (
        QgsApplication.processingRegistry()
        .algorithmById(ALGORITHM)
        .parameterDefinition("DEVICE")
        .description()
    )
    expected = engine_module("backends").describe_runtime("onnxruntime", "auto")
    assert label == f"Device (auto here: {expected})"
    assert expected.startswith("ONNX Runtime CUDA on ") or expected.startswith("ONNX Runtime CPU, ")


def test_a_method_without_uncertainty_refuses_the_uncertainty_output(run_algorithm, sample_scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="available for mocolsk, blend, dms and auto only"):
        run_algorithm(
            ALGORITHM,
            downscale_parameters(
                sample_scene, tmp_path / "lst.tif", METHOD=BICUBIC, UNCERTAINTY=str(tmp_path / "sigma.tif")
            ),
        )
    assert list(tmp_path.iterdir()) == []


def test_the_uncertainty_layer_loads_with_a_sequential_ramp_over_its_2nd_to_98th_percentiles_in_kelvin(
    mocolsk_provider, sample_scene, tmp_path
):
    sigma_path = tmp_path / "sigma.tif"
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    processing.runAndLoadResults(
        ALGORITHM,
        downscale_parameters(sample_scene, tmp_path / "lst.tif", METHOD=DMS, UNCERTAINTY=str(sigma_path)),
        context=context,
    )
    layer = next(
        layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == str(sigma_path)
    )
    try:
        _, _, sigma = read(sigma_path)
        renderer = layer.renderer()
        assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
        low, high = np.percentile(sigma, [2, 98])
        step = (sigma.max() - sigma.min()) / 100  # the cumulative cut reads a histogram
        assert renderer.classificationMin() == pytest.approx(low, abs=step)
        assert renderer.classificationMax() == pytest.approx(high, abs=step)
        shader = renderer.shader().rasterShaderFunction()
        assert shader.legendSettings().suffix() == " K"
        items = shader.colorRampItemList()
        lightness = [item.color.lightness() for item in items]
        assert lightness == sorted(lightness, reverse=True)  # sequential: pale (certain) to dark
        assert items[0].label == f"{renderer.classificationMin():.2f} K"
    finally:
        QgsProject.instance().removeAllMapLayers()


def test_a_second_run_loads_under_a_numbered_name(mocolsk_provider, sample_scene):
    parameters = downscale_parameters(sample_scene, QgsProcessing.TEMPORARY_OUTPUT, METHOD=BICUBIC)
    try:
        first, second = run_and_load(parameters), run_and_load(parameters)
        assert (first.name(), second.name()) == ("LST 30 m, bicubic x4 (K)", "LST 30 m, bicubic x4 (K) (2)")
    finally:
        QgsProject.instance().removeAllMapLayers()


def test_a_guidance_layer_picked_as_the_coarse_lst_is_refused_by_name(run_algorithm, sample_scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="The Coarse LST layer is the guidance layer"):
        run_algorithm(
            ALGORITHM,
            downscale_parameters(
                sample_scene, tmp_path / "lst.tif", INPUT_LST=str(sample_scene.guidance_30m)
            ),
        )
    assert list(tmp_path.iterdir()) == []


def test_a_blend_the_network_took_no_part_in_is_named_after_its_members():
    from mocolsk_qgis.algorithms.downscale import result_method_name

    assert result_method_name("blend", ("bicubic", "dms")) == "bicubic + DMS blend"
    assert result_method_name("blend", ("mocolsk", "bicubic", "dms")) == "MoCoLSK blend"
    assert result_method_name("dms", ()) == "DMS"

""" "Evaluate downscaled LST" and "Build guidance stack" through processing.run."""

import re

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

from engine import metrics

from .conftest import TINY_BANDS, write_geotiff


@pytest.fixture(scope="module")
def downscaled(mocolsk_provider, sample_scene, tmp_path_factory):
    import processing

    output = tmp_path_factory.mktemp("downscaled") / "tsharp_celsius.tif"
    processing.run(
        "mocolsk:downscalelst",
        {
            "INPUT_LST": str(sample_scene.lst_120m),
            "GUIDANCE": [str(sample_scene.guidance_30m)],
            "METHOD": 2,
            "OUTPUT_UNITS": 1,
            "OUTPUT": str(output),
        },
    )
    return output


def test_evaluate_reports_kelvin_metrics_html_and_difference(
    run_algorithm, sample_scene, downscaled, tmp_path
):
    report, difference = tmp_path / "report.html", tmp_path / "difference.tif"
    results = run_algorithm(
        "mocolsk:evaluate",
        {
            "PREDICTION": str(downscaled),
            "REFERENCE": str(sample_scene.reference_30m),
            "OUTPUT_HTML": str(report),
            "OUTPUT_DIFFERENCE": str(difference),
        },
    )
    prediction_kelvin = gdal.Open(str(downscaled)).ReadAsArray() + 273.15
    reference = gdal.Open(str(sample_scene.reference_30m)).ReadAsArray()
    assert results["RMSE"] == pytest.approx(metrics.rmse(prediction_kelvin, reference), rel=1e-4)
    assert results["BIAS"] == pytest.approx(metrics.bias(prediction_kelvin, reference), abs=1e-4)
    assert 0 < results["RMSE"] < 3 and results["PIXELS"] == reference.size
    assert -1 <= results["CC"] <= 1 and 0 < results["SSIM"] <= 1 and results["PSNR"] > 0
    page = report.read_text(encoding="utf-8")
    assert "read as celsius" in page and "read as kelvin" in page
    assert re.search(r"Root-mean-square error</td><td>[0-9.]+</td><td>K", page)
    diff = gdal.Open(str(difference))
    np.testing.assert_allclose(diff.ReadAsArray(), prediction_kelvin - reference, atol=1e-3)
    assert diff.GetRasterBand(1).GetUnitType() == "K"


def test_evaluate_without_difference_writes_only_the_report(
    run_algorithm, sample_scene, downscaled, tmp_path
):
    results = run_algorithm(
        "mocolsk:evaluate",
        {
            "PREDICTION": str(downscaled),
            "REFERENCE": str(sample_scene.reference_30m),
            "OUTPUT_HTML": str(tmp_path / "r.html"),
        },
    )
    assert "OUTPUT_DIFFERENCE" not in results
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_evaluate_refuses_rasters_on_different_grids(run_algorithm, sample_scene, downscaled, tmp_path):
    with pytest.raises(QgsProcessingException, match="not on the same grid"):
        run_algorithm(
            "mocolsk:evaluate",
            {
                "PREDICTION": str(downscaled),
                "REFERENCE": str(sample_scene.lst_120m),
                "OUTPUT_HTML": str(tmp_path / "r.html"),
            },
        )


def test_build_guidance_writes_the_models_bands_in_order_from_c2_surface_reflectance(
    run_algorithm, sample_scene, tiny_package_x4, tmp_path
):
    output = tmp_path / "guidance.tif"
    parameters = {name.upper(): str(path) for name, path in sample_scene.sr_bands.items()}
    results = run_algorithm(
        "mocolsk:buildguidance",
        {**parameters, "MODEL_FILE": str(tiny_package_x4.card_path), "OUTPUT": str(output)},
    )
    assert results["BAND_NAMES"] == ",".join(TINY_BANDS)
    built = gdal.Open(str(output))
    assert [built.GetRasterBand(i + 1).GetDescription() for i in range(built.RasterCount)] == list(TINY_BANDS)
    np.testing.assert_allclose(
        built.ReadAsArray(), gdal.Open(str(sample_scene.guidance_30m)).ReadAsArray(), atol=3e-5
    )


def test_build_guidance_band_list_derives_indices(run_algorithm, sample_scene, tmp_path):
    output = tmp_path / "red_nir_ndvi.tif"
    run_algorithm(
        "mocolsk:buildguidance",
        {
            "RED": str(sample_scene.sr_bands["red"]),
            "NIR": str(sample_scene.sr_bands["nir"]),
            "BANDS": "red, nir, ndvi",
            "OUTPUT": str(output),
        },
    )
    red, nir, ndvi = gdal.Open(str(output)).ReadAsArray()
    np.testing.assert_allclose(ndvi, (nir - red) / (nir + red), atol=1e-6)


def test_build_guidance_names_the_missing_landsat_band(
    run_algorithm, sample_scene, tiny_package_x4, tmp_path
):
    parameters = {name.upper(): str(path) for name, path in sample_scene.sr_bands.items() if name != "swir2"}
    with pytest.raises(QgsProcessingException, match=r"swir2 \(SR_B7"):
        run_algorithm(
            "mocolsk:buildguidance",
            {**parameters, "MODEL_FILE": str(tiny_package_x4.card_path), "OUTPUT": str(tmp_path / "g.tif")},
        )
    assert list(tmp_path.iterdir()) == []


def test_build_guidance_refuses_a_band_from_another_scene_grid(run_algorithm, sample_scene, tmp_path):
    red = gdal.Open(str(sample_scene.sr_bands["red"])).ReadAsArray()
    x0, dx, _, y0, _, dy = sample_scene.geotransform
    shifted = write_geotiff(
        tmp_path / "SR_B5_other.TIF",
        red,
        (x0 + 3000, dx, 0, y0, 0, dy),
        sample_scene.crs_wkt,
        nodata=0,
        dtype=gdal.GDT_UInt16,
    )
    with pytest.raises(QgsProcessingException, match="not on the grid of the red layer"):
        run_algorithm(
            "mocolsk:buildguidance",
            {
                "RED": str(sample_scene.sr_bands["red"]),
                "NIR": str(shifted),
                "BANDS": "ndvi",
                "OUTPUT": str(tmp_path / "g.tif"),
            },
        )


def test_build_guidance_from_a_level1_scene_matches_the_bundled_models_bands(run_algorithm, tmp_path):
    from engine.package import bundled_packages, load_package
    from tests.conftest import SAMPLE_MTL

    name, card_path = next(iter(bundled_packages().items()))
    output = tmp_path / "toa_guidance.tif"
    results = run_algorithm(
        "mocolsk:buildguidance",
        {
            "LANDSAT_MTL": str(SAMPLE_MTL),
            "SR_ENCODING": 2,
            "MODEL": name,
            "OUTPUT": str(output),
        },
    )
    expected = load_package(card_path).card.guidance_band_names
    assert results["BAND_NAMES"] == ",".join(expected)
    built = gdal.Open(str(output))
    assert [built.GetRasterBand(i + 1).GetDescription() for i in range(built.RasterCount)] == list(expected)
    assert np.nanmax(built.ReadAsArray()[:6]) < 1.0

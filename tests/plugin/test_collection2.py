"""A Landsat 8 Collection 2 Level-2 file set (SR_B2..SR_B7 with negative water reflectance and fill 0,
ST_B10, QA_PIXEL) through processing.run: Build guidance stack -> Downscale LST, every parameter at its
default, gives a 30 m temperature in plausible Kelvin."""

import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsProcessing, QgsProcessingContext, QgsProject

from tests.c2l2 import write_c2l2_scene

from .test_bad_inputs import RecordingFeedback

# Build guidance stack's reflectance parameters, as the dialog labels them with the SR_B files.
SR_PARAMETERS = {
    "blue": "BLUE",
    "green": "GREEN",
    "red": "RED",
    "nir": "NIR",
    "swir1": "SWIR1",
    "swir2": "SWIR2",
}


@pytest.fixture(scope="module")
def c2_scene(tmp_path_factory):
    return write_c2l2_scene(tmp_path_factory.mktemp("c2l2"))


def test_c2_l2_files_to_a_30m_lst_with_every_default(run_algorithm, c2_scene, tmp_path):
    built = RecordingFeedback()
    stack = run_algorithm(
        "mocolsk:buildguidance",
        {
            **{SR_PARAMETERS[name]: str(path) for name, path in c2_scene.sr.items()},
            "OUTPUT": str(tmp_path / "guidance.tif"),
        },
        built,
    )["OUTPUT"]
    assert any(info.startswith("Index ndvi (") and "negative reflectance" in info for info in built.infos)
    downscaled = RecordingFeedback()
    results = run_algorithm(
        "mocolsk:downscalelst",
        {
            "INPUT_LST": str(c2_scene.st_b10_averaged(4)),
            "GUIDANCE": [stack],
            "OUTPUT": str(tmp_path / "lst_30m.tif"),
        },
        downscaled,
    )
    assert results["SCALE"] == 4 and results["LST_UNITS_USED"] == "landsat_c2_st_dn"
    assert any("mocolsk-x4-landsat-light" in info for info in downscaled.infos)
    output = gdal.Open(results["OUTPUT"])
    band = output.GetRasterBand(1)
    kelvin = band.ReadAsArray().astype(np.float64)
    valid = kelvin != band.GetNoDataValue()
    assert kelvin.shape == (160, 160) and valid.mean() > 0.9 and not valid[c2_scene.fill].all()
    low, high = np.nanmin(c2_scene.land_kelvin), np.nanmax(c2_scene.land_kelvin)
    assert low - 3 < kelvin[valid].min() and kelvin[valid].max() < high + 3
    assert valid[c2_scene.water].mean() > 0.95
    assert abs(np.median(kelvin[c2_scene.water & valid]) - 294.0) < 1.0


def test_st_b10_as_delivered_runs_the_delivered_band_blend_and_names_its_members(c2_scene, tmp_path):
    stack = processing.run(
        "mocolsk:buildguidance",
        {
            **{SR_PARAMETERS[name]: str(path) for name, path in c2_scene.sr.items()},
            "OUTPUT": str(tmp_path / "guidance.tif"),
        },
    )["OUTPUT"]
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = RecordingFeedback()
    results = processing.runAndLoadResults(
        "mocolsk:downscalelst",
        {"INPUT_LST": str(c2_scene.st_b10), "GUIDANCE": [stack], "OUTPUT": QgsProcessing.TEMPORARY_OUTPUT},
        context=context,
        feedback=feedback,
    )
    layers = [
        layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == results["OUTPUT"]
    ]
    names = [layer.name() for layer in layers]
    for layer in layers:
        QgsProject.instance().removeMapLayer(layer.id())
    assert any("MoCoLSK takes no part in this blend" in info for info in feedback.infos)
    assert names == [f"LST 30 m, bicubic + DMS blend x{results['SCALE']} (K)"]

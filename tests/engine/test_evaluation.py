"""Raster-level evaluation: units, nodata, grids and the difference raster."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, osr

from engine import metrics
from engine.errors import InputError
from engine.evaluation import DIFFERENCE_NODATA, evaluate_rasters

gdal.UseExceptions()


def write(path, values, unit="", origin_x=500000.0, nodata=-9999.0):
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), values.shape[1], values.shape[0], 1, gdal.GDT_Float32
    )
    dataset.SetGeoTransform((origin_x, 30.0, 0.0, -400000.0, 0.0, -30.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32622)
    dataset.SetProjection(srs.ExportToWkt())
    band = dataset.GetRasterBand(1)
    band.SetNoDataValue(nodata)
    band.SetUnitType(unit)
    band.WriteArray(values)
    dataset = None
    return str(path)


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(3)
    reference = rng.uniform(290.0, 310.0, (20, 30)).astype(np.float32)
    prediction = reference + rng.normal(0.5, 1.0, reference.shape).astype(np.float32)
    prediction[0, :5] = -9999.0
    return tmp_path, prediction, reference


def test_metrics_are_those_of_the_valid_pixels_in_kelvin(pair):
    folder, prediction, reference = pair
    celsius = np.where(prediction == -9999.0, -9999.0, prediction - 273.15).astype(np.float32)
    result = evaluate_rasters(
        write(folder / "p.tif", celsius, "degC"), write(folder / "r.tif", reference, "K")
    )
    valid = prediction != -9999.0
    assert result.prediction_units.name == "celsius" and result.reference_units.name == "kelvin"
    assert result.metrics["pixels"] == valid.sum()
    expected = np.sqrt(np.mean((prediction[valid].astype(np.float64) - reference[valid]) ** 2))
    assert result.metrics["rmse_k"] == pytest.approx(expected, rel=1e-4)
    assert result.metrics["bias_k"] == pytest.approx(
        metrics.bias(np.where(valid, prediction, np.nan), reference), abs=1e-4
    )


def test_difference_raster_is_prediction_minus_reference_with_nodata(pair):
    folder, prediction, reference = pair
    out = folder / "diff.tif"
    evaluate_rasters(
        write(folder / "p.tif", prediction), write(folder / "r.tif", reference), difference_path=str(out)
    )
    difference = gdal.Open(str(out)).ReadAsArray()
    assert np.all(difference[0, :5] == DIFFERENCE_NODATA)
    np.testing.assert_allclose(difference[1:], (prediction - reference)[1:], atol=1e-4)


def test_rasters_on_different_grids_are_refused(pair):
    folder, prediction, reference = pair
    with pytest.raises(InputError, match="not on the same grid"):
        evaluate_rasters(
            write(folder / "p.tif", prediction), write(folder / "r.tif", reference, origin_x=500030.0)
        )


def test_implausible_reference_is_refused_and_no_difference_is_written(pair):
    folder, prediction, reference = pair
    out = folder / "diff.tif"
    with pytest.raises(InputError, match="outside the plausible"):
        evaluate_rasters(
            write(folder / "p.tif", prediction),
            write(folder / "r.tif", reference - 273.15, "K"),
            difference_path=str(out),
        )
    assert not out.exists()


def test_difference_over_an_input_is_refused(pair):
    folder, prediction, reference = pair
    path = write(folder / "p.tif", prediction)
    with pytest.raises(InputError, match="one of the inputs"):
        evaluate_rasters(path, write(folder / "r.tif", reference), difference_path=path)

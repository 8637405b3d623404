"""LST units: conversions to Kelvin, the "auto" decision and the plausibility check."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from engine.errors import InputError
from engine.raster import decide_lst_units, read_lst_kelvin
from engine.units import UnitHints, check_plausible_kelvin, detect_lst_units, kelvin_to, lst_units

from .conftest import epsg_wkt, landsat_path, write_raster


@pytest.mark.parametrize(
    "units, values, kelvin",
    [
        ("kelvin", [290.5], [290.5]),
        ("celsius", [-10.0, 25.0], [263.15, 298.15]),
        ("landsat_c2_st_dn", [44000], [149.0 + 44000 * 0.00341802]),
        ("modis_lst_dn", [14500], [290.0]),
        ("landsat5_tm_b6_dn", [131, 140, 146], [293.3751, 297.2869, 299.8285]),
    ],
)
def test_each_unit_converts_to_kelvin(units, values, kelvin):
    np.testing.assert_allclose(lst_units(units).to_kelvin(np.array(values)), kelvin, atol=1e-3)


def test_digital_number_fill_zero_becomes_nan():
    for units in ("landsat_c2_st_dn", "modis_lst_dn", "landsat5_tm_b6_dn"):
        assert np.isnan(lst_units(units).to_kelvin(np.array([0], np.uint16))[0])


def test_kelvin_to_celsius_for_output():
    np.testing.assert_allclose(kelvin_to(np.array([273.15, 300.0], np.float32), "celsius"), [0.0, 26.85], atol=1e-4)


@pytest.mark.parametrize(
    "hints, expected",
    [
        (UnitHints(unit_type="K"), "kelvin"),
        (UnitHints(unit_type="degC"), "celsius"),
        (UnitHints(file_name="LC08_L2SP_001002_20200101_ST_B10.TIF", is_integer=True), "landsat_c2_st_dn"),
        (UnitHints(description="LST_Day_1km", is_integer=True), "modis_lst_dn"),
        (UnitHints(file_name="LT05_B6.TIF", is_integer=True,
                   metadata={"L1_METADATA_FILE.PRODUCT_METADATA.SPACECRAFT_ID": '"LANDSAT_5"'}), "landsat5_tm_b6_dn"),
    ],
)
def test_auto_units_follow_metadata_first(hints, expected):
    sample = np.array([1.0, 2.0, 3.0])
    assert detect_lst_units(sample, hints, "LST test").name == expected


@pytest.mark.parametrize(
    "values, is_integer, expected",
    [
        (np.linspace(285.0, 320.0, 50), False, "kelvin"),
        (np.linspace(-5.0, 45.0, 50), False, "celsius"),
        (np.linspace(38000, 46000, 50).round(), True, "landsat_c2_st_dn"),
        (np.linspace(13500, 15500, 50).round(), True, "modis_lst_dn"),
    ],
)
def test_auto_units_fall_back_to_the_value_range(values, is_integer, expected):
    units = detect_lst_units(values, UnitHints(is_integer=is_integer), "LST test")
    assert units.name == expected
    assert "values" in units.reason


def test_auto_units_refuse_a_range_that_fits_no_unit():
    with pytest.raises(InputError, match=r"LST test: cannot tell the units of the LST \(values 504\.\.896\); set the LST units"):
        detect_lst_units(np.linspace(500.0, 900.0, 20), UnitHints(), "LST test")


def test_auto_units_refuse_a_band_without_valid_pixels():
    with pytest.raises(InputError, match="has no valid pixels"):
        detect_lst_units(np.array([np.nan]), UnitHints(), "LST test")


def test_implausible_kelvin_is_an_error_naming_the_layer_and_units():
    with pytest.raises(InputError, match=r"LST x\.tif: read as celsius \(given\), the LST spans 563\.1\.\.583\.1 K, outside the plausible 180-360 K"):
        check_plausible_kelvin(563.15, 583.15, "LST x.tif", lst_units("celsius", reason="given"))
    check_plausible_kelvin(250.0, 330.0, "LST x.tif", lst_units("kelvin"))


def test_landsat5_band6_of_the_real_scene_is_recognised_with_its_mtl_gains():
    dataset = gdal.Open(str(landsat_path(6)))
    units = decide_lst_units(dataset, dataset.GetRasterBand(1), landsat_path(6), "auto", "LST B6")
    assert units.name == "landsat5_tm_b6_dn"
    assert (units.radiance_mult, units.radiance_add) == (0.055, 1.18243)
    kelvin, _, _ = read_lst_kelvin(landsat_path(6), 1, "auto", "LST B6")
    assert 293.0 < np.nanmin(kelvin) < np.nanmax(kelvin) < 300.5


def test_celsius_raster_with_nodata_reads_as_kelvin_with_nan(tmp_path):
    values = np.array([[20.0, -9999.0], [30.0, 25.0]], np.float32)
    path = write_raster(tmp_path / "lst_c.tif", values, (0, 30, 0, 0, 0, -30), epsg_wkt(32622), nodata=-9999.0)
    kelvin, _, units = read_lst_kelvin(path, 1, "auto", "LST c")
    assert units.name == "celsius"
    np.testing.assert_allclose(kelvin, [[293.15, np.nan], [303.15, 298.15]], atol=1e-4)

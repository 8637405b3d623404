"""LST units: conversions to Kelvin, the "auto" decision and the plausibility check."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from engine.errors import InputError
from engine.raster import decide_lst_units, read_lst_kelvin
from engine.units import (
    DN_MEDIAN_MAX_KELVIN,
    DN_MEDIAN_MIN_KELVIN,
    LANDSAT_C2_ST_ADD,
    LANDSAT_C2_ST_MULT,
    LST_UNITS,
    MODIS_LST_MULT,
    PLAUSIBLE_MAX_KELVIN,
    PLAUSIBLE_MIN_KELVIN,
    UnitHints,
    check_plausible_kelvin,
    detect_lst_units,
    kelvin_to,
    lst_units,
)

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
    np.testing.assert_allclose(
        kelvin_to(np.array([273.15, 300.0], np.float32), "celsius"), [0.0, 26.85], atol=1e-4
    )


@pytest.mark.parametrize(
    "hints, expected",
    [
        (UnitHints(unit_type="K"), "kelvin"),
        (UnitHints(unit_type="degC"), "celsius"),
        (UnitHints(file_name="LC08_L2SP_001002_20200101_ST_B10.TIF", is_integer=True), "landsat_c2_st_dn"),
        (UnitHints(description="LST_Day_1km", is_integer=True), "modis_lst_dn"),
        (
            UnitHints(
                file_name="LT05_B6.TIF",
                is_integer=True,
                metadata={"L1_METADATA_FILE.PRODUCT_METADATA.SPACECRAFT_ID": '"LANDSAT_5"'},
            ),
            "landsat5_tm_b6_dn",
        ),
        (UnitHints(file_name="lst_120m_tm_b6_dn.tif"), "landsat5_tm_b6_dn"),
        (
            UnitHints(
                file_name='MOD11A1.A2020215.h13v09.061.2021.hdf":MODIS_Grid_Daily_1km_LST:LST_Day_1km',
                unit_type="K",
                is_integer=True,
            ),
            "modis_lst_dn",
        ),
        (UnitHints(file_name="MOD21A1D.061_LST_1KM_doy2020215_aid0001.tif", is_integer=True), "modis_lst_dn"),
        (
            UnitHints(file_name="VNP21A1D.A2020215.h13v09.002.h5", description="LST_1KM", is_integer=True),
            "modis_lst_dn",
        ),
        (UnitHints(file_name="VJ121_L2_LST.tif", is_integer=True), "modis_lst_dn"),
        (UnitHints(file_name="ECO2LSTE.001_SDS_LST_doy2019171_aid0001.tif", is_integer=True), "modis_lst_dn"),
        (
            UnitHints(
                file_name='S3A_SL_2_LST____20200801T101010_LST_in.nc":LST',
                metadata={"long_name": "Gridded LST"},
            ),
            "kelvin",
        ),
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


def test_auto_units_refuse_a_range_that_fits_no_unit_quoting_the_datas_own_range():
    with pytest.raises(
        InputError,
        match=r"LST test: cannot tell the units of the LST \(values 500\.\.900\); set the LST units",
    ):
        detect_lst_units(np.linspace(500.0, 900.0, 20), UnitHints(), "LST test")


def test_auto_units_refuse_a_band_without_valid_pixels():
    with pytest.raises(InputError, match="has no valid pixels"):
        detect_lst_units(np.array([np.nan]), UnitHints(), "LST test")


def test_implausible_kelvin_is_an_error_naming_the_layer_and_units():
    with pytest.raises(
        InputError,
        match=r"LST x\.tif: read as Celsius \(given\), the LST spans 563\.1\.\.583\.1 K, "
        r"outside the plausible 149-400 K",
    ):
        check_plausible_kelvin(563.15, 583.15, "LST x.tif", lst_units("celsius", reason="given"))
    check_plausible_kelvin(250.0, 330.0, "LST x.tif", lst_units("kelvin"))


@pytest.mark.parametrize(
    "low_kelvin, high_kelvin",
    [
        (149.0, 373.0),  # all that Landsat Collection 2 ST_B10 can hold (DN 1 to 65535)
        (236.0, 369.0),  # a real volcanic scene
        (280.0, 400.0),  # a hot target at the top of the range
    ],
)
def test_the_physical_range_of_landsat_st_and_hot_targets_is_plausible(low_kelvin, high_kelvin):
    check_plausible_kelvin(low_kelvin, high_kelvin, "LST x.tif", lst_units("kelvin"))


@pytest.mark.parametrize("low_kelvin, high_kelvin", [(148.9, 300.0), (250.0, 400.1), (20.0, 35.0)])
def test_values_outside_149_to_400_k_are_refused(low_kelvin, high_kelvin):
    with pytest.raises(InputError, match="outside the plausible 149-400 K; set the correct LST units"):
        check_plausible_kelvin(low_kelvin, high_kelvin, "LST x.tif", lst_units("kelvin"))


@pytest.mark.parametrize(
    "values, is_integer, expected",
    [
        (np.linspace(236.0, 369.0, 200), False, "kelvin"),
        (np.r_[np.linspace(285.0, 320.0, 990), np.full(10, 395.0)], False, "kelvin"),
        (np.linspace(190.0, 260.0, 50), False, "kelvin"),
        (np.linspace(5.0, 45.0, 50), False, "celsius"),
        (np.linspace(-60.0, 75.0, 50), False, "celsius"),
        (np.round((np.linspace(236.0, 369.0, 200) - 149.0) / 0.00341802), True, "landsat_c2_st_dn"),
        (np.round(np.linspace(236.0, 369.0, 200) / 0.02), True, "modis_lst_dn"),
        (np.round(np.linspace(280.0, 400.0, 200) / 0.02), True, "modis_lst_dn"),
        (np.linspace(280.0, 330.0, 50).round(), True, "kelvin"),
    ],
)
def test_auto_units_of_the_wider_range(values, is_integer, expected):
    assert detect_lst_units(values, UnitHints(is_integer=is_integer), "LST test").name == expected


# Landsat ST numbers of a scene whose median is below about 270 K also read as Kelvin x 100 (see the
# ambiguity tests below); above it they do not.
ST_ONLY_MEDIAN_MIN_KELVIN = 275.0


@pytest.mark.parametrize(
    "median_kelvin", np.linspace(DN_MEDIAN_MIN_KELVIN + 0.5, DN_MEDIAN_MAX_KELVIN - 0.5, 14)
)
def test_landsat_st_and_modis_numbers_are_told_apart_over_the_whole_median_window(median_kelvin):
    kelvin = median_kelvin + np.linspace(-40.0, 40.0, 81)
    kelvin = kelvin[(kelvin >= PLAUSIBLE_MIN_KELVIN) & (kelvin <= PLAUSIBLE_MAX_KELVIN)]
    encodings = [("modis_lst_dn", kelvin / MODIS_LST_MULT)]
    if median_kelvin >= ST_ONLY_MEDIAN_MIN_KELVIN:
        encodings.append(("landsat_c2_st_dn", (kelvin - LANDSAT_C2_ST_ADD) / LANDSAT_C2_ST_MULT))
    for name, dn in encodings:
        units = detect_lst_units(np.round(dn), UnitHints(is_integer=True), "LST test")
        assert units.name == name
        np.testing.assert_allclose(np.median(units.to_kelvin(np.round(dn))), np.median(kelvin), atol=0.02)


KELVIN_X100_OR_ST = (
    r"LST k100: the integer values 28501\.\.31900 could be Landsat Collection 2 ST_B10 digital numbers "
    r"\(246\.4-258\.0 K\) or Kelvin x 100 stored without a scale \(285\.0-319\.0 K\), and neither the file name, "
    r"the band description, the metadata nor the band's unit or scale says which; if it is a Landsat ST_B10 band, "
    r"set the LST units to \"Landsat 8/9 Collection 2 Level-2 ST_B10 \(DN x 0\.00341802 \+ 149\)\"; if it is "
    r"Kelvin x 100, give the file its scale with gdal_edit\.py -scale 0\.01 FILE"
)


def test_unsigned_kelvin_x100_without_a_scale_or_name_is_refused_not_read_as_landsat_st():
    # 285-319 K stored x 100: read as ST_B10 numbers it was a 246-258 K map, silently.
    values = np.linspace(28501, 31900, 400).round()
    with pytest.raises(InputError, match=KELVIN_X100_OR_ST):
        detect_lst_units(values, UnitHints(is_integer=True), "LST k100")


@pytest.mark.parametrize("median_kelvin", [230.0, 245.0, 255.0, 265.0])
def test_cold_landsat_st_numbers_without_a_name_are_refused_and_with_their_name_read(median_kelvin):
    dn = np.round((median_kelvin + np.linspace(-15.0, 15.0, 61) - LANDSAT_C2_ST_ADD) / LANDSAT_C2_ST_MULT)
    with pytest.raises(InputError, match="could be Landsat Collection 2 ST_B10 digital numbers"):
        detect_lst_units(dn, UnitHints(is_integer=True), "LST cold")
    named = UnitHints(file_name="LC09_L2SP_045030_20240115_20240120_02_T1_ST_B10.TIF", is_integer=True)
    assert detect_lst_units(dn, named, "LST cold").name == "landsat_c2_st_dn"


def test_integer_values_that_fit_kelvin_and_tm_band6_numbers_are_refused_not_guessed():
    # DN 150-200 of a Landsat 5 band 6 is a summer scene at 301-321 K, not 150-200 K.
    with pytest.raises(
        InputError,
        match=r"could be Kelvin or Landsat 4/5 TM band 6 digital numbers \(301-321 K\); "
        r"set the LST units explicitly",
    ):
        detect_lst_units(np.arange(150, 201), UnitHints(is_integer=True), "LST test")
    assert detect_lst_units(np.arange(150, 201), UnitHints(is_integer=False), "LST test").name == "kelvin"


def test_celsius_labelled_kelvin_is_refused_with_the_clear_message():
    units = detect_lst_units(np.linspace(20.0, 35.0, 50), UnitHints(unit_type="K"), "LST c.tif")
    assert units.name == "kelvin"
    message = (
        r"LST c\.tif: read as Kelvin \(the band's unit is 'K'\), the LST spans 20\.0\.\.35\.0 K, "
        r"outside the plausible 149-400 K; set the correct LST units"
    )
    with pytest.raises(InputError, match=message):
        check_plausible_kelvin(20.0, 35.0, "LST c.tif", units)


def test_landsat5_band6_of_the_real_scene_is_recognised_with_its_mtl_gains():
    dataset = gdal.Open(str(landsat_path(6)))
    units = decide_lst_units(dataset, dataset.GetRasterBand(1), landsat_path(6), "auto", "LST B6")
    assert units.name == "landsat5_tm_b6_dn"
    assert (units.radiance_mult, units.radiance_add) == (0.055, 1.18243)
    kelvin, _, _ = read_lst_kelvin(landsat_path(6), 1, "auto", "LST B6")
    assert 293.0 < np.nanmin(kelvin) < np.nanmax(kelvin) < 300.5


def test_celsius_raster_with_nodata_reads_as_kelvin_with_nan(tmp_path):
    values = np.array([[20.0, -9999.0], [30.0, 25.0]], np.float32)
    path = write_raster(
        tmp_path / "lst_c.tif", values, (0, 30, 0, 0, 0, -30), epsg_wkt(32622), nodata=-9999.0
    )
    kelvin, _, units = read_lst_kelvin(path, 1, "auto", "LST c")
    assert units.name == "celsius"
    np.testing.assert_allclose(kelvin, [[293.15, np.nan], [303.15, 298.15]], atol=1e-4)


@pytest.mark.parametrize(
    "hints, values, expected",
    [
        # area-averaged products are float, their names still say what the numbers are
        (
            UnitHints(file_name="LC09_L2SP_ST_B10_120m.tif"),
            np.linspace(38000.0, 46000.0, 20),
            "landsat_c2_st_dn",
        ),
        (
            UnitHints(file_name="LE07_L2SP_ST_B6.TIF", is_integer=True),
            np.arange(40000, 40020),
            "landsat_c2_st_dn",
        ),
        (
            UnitHints(file_name="MYD11A2.A2021001.h18v04.tif"),
            np.linspace(13500.0, 15500.0, 20),
            "modis_lst_dn",
        ),
        # a MODIS HDF band says "K" but holds numbers x 0.02
        (
            UnitHints(unit_type="K", is_integer=True, metadata={"SHORTNAME": "MOD11A1"}),
            np.arange(14000, 14020),
            "modis_lst_dn",
        ),
        (
            UnitHints(file_name="LT05_L1TP_224063_19880814_B6.TIF", is_integer=True),
            np.arange(130, 150),
            "landsat5_tm_b6_dn",
        ),
        (
            UnitHints(file_name="LT04_L1TP_B6_area_mean.tif"),
            np.linspace(130.0, 150.0, 20),
            "landsat5_tm_b6_dn",
        ),
    ],
)
def test_auto_units_read_the_product_names_the_help_promises(hints, values, expected):
    assert detect_lst_units(values, hints, "LST test").name == expected


def test_a_product_name_on_values_already_in_kelvin_does_not_force_digital_numbers():
    hints = UnitHints(file_name="LC08_ST_B10_kelvin.tif", unit_type="K")
    assert detect_lst_units(np.linspace(290.0, 310.0, 20), hints, "LST test").name == "kelvin"


def test_units_errors_name_the_dropdown_labels_not_internal_ids():
    with pytest.raises(InputError) as refused:
        detect_lst_units(np.linspace(500.0, 900.0, 20), UnitHints(), "LST test")
    message = str(refused.value)
    for name in ("kelvin", "celsius", "landsat_c2_st_dn", "modis_lst_dn", "landsat5_tm_b6_dn"):
        assert name not in message
    assert '"Landsat 4/5 TM band 6 digital numbers (brightness temperature)"' in message
    assert '"MODIS MOD11/MOD21, VIIRS VNP21 or ECOSTRESS LST (DN x 0.02)"' in message
    with pytest.raises(InputError, match=r'set the LST units explicitly to "Kelvin" or "Landsat 4/5 TM'):
        detect_lst_units(np.arange(150, 201), UnitHints(is_integer=True), "LST test")
    with pytest.raises(InputError, match=r"read as Celsius \(given\)"):
        check_plausible_kelvin(563.1, 583.1, "LST x.tif", lst_units("celsius"))


def write_encoded(path, values, dtype, scale=None, offset=None, unit=None, nodata=None) -> str:
    """Values stored as ``dtype`` with an optional GDAL scale/offset (value = stored x scale + offset)."""
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), values.shape[-1], values.shape[-2], 1, dtype)
    dataset.SetGeoTransform((500000.0, 1000.0, 0.0, 4000000.0, 0.0, -1000.0))
    dataset.SetProjection(epsg_wkt(32617))
    band = dataset.GetRasterBand(1)
    band.WriteArray(values)
    for setter, value in ((band.SetScale, scale), (band.SetOffset, offset), (band.SetUnitType, unit)):
        if value is not None:
            setter(value)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    dataset = None
    return str(path)


SCENE_KELVIN = np.linspace(284.0, 322.0, 400).reshape(20, 20)


def test_a_uint16_kelvin_x100_with_a_gdal_scale_reads_as_the_kelvin_qgis_shows(tmp_path):
    # Without the scale these integers fit Landsat ST numbers, and were read as 246-260 K.
    path = write_encoded(tmp_path / "lst_k100.tif", np.round(SCENE_KELVIN * 100), gdal.GDT_UInt16, scale=0.01)
    kelvin, _, units = read_lst_kelvin(path, 1, "auto", "LST k100")
    assert units.name == "kelvin"
    assert "the band's scale 0.01 and offset 0 applied first, as QGIS shows it" in units.reason
    np.testing.assert_allclose(kelvin, SCENE_KELVIN, atol=0.006)


def test_unsigned_kelvin_x100_file_without_a_scale_is_refused_quoting_the_whole_bands_range(tmp_path):
    path = write_encoded(tmp_path / "lst_k100.tif", np.round(SCENE_KELVIN * 100), gdal.GDT_UInt16)
    dataset = gdal.Open(path)
    with pytest.raises(
        InputError,
        match=r"the integer values 28400\.\.32200 could be Landsat .* \(246\.1-259\.1 K\) "
        r"or Kelvin x 100 stored without a scale \(284\.0-322\.0 K\)",
    ):
        decide_lst_units(dataset, dataset.GetRasterBand(1), path, "auto", "LST k100")
    assert decide_lst_units(dataset, dataset.GetRasterBand(1), path, "landsat_c2_st_dn", "LST k100").name == (
        "landsat_c2_st_dn"
    )


@pytest.mark.parametrize(
    "offset, unit, expected_units",
    [(None, None, "celsius"), (None, "degC", "celsius"), (273.15, None, "kelvin")],
)
def test_an_int16_celsius_x100_with_a_gdal_scale_and_offset_reads_correctly(
    tmp_path, offset, unit, expected_units
):
    stored = np.round((SCENE_KELVIN - 273.15) * 100)
    path = write_encoded(
        tmp_path / "lst_c100.tif", stored, gdal.GDT_Int16, scale=0.01, offset=offset, unit=unit
    )
    kelvin, _, units = read_lst_kelvin(path, 1, "auto", "LST c100")
    assert units.name == expected_units
    np.testing.assert_allclose(kelvin, SCENE_KELVIN, atol=0.006)


def test_a_scaled_band_keeps_its_nodata_on_the_stored_values(tmp_path):
    stored = np.round(SCENE_KELVIN * 100)
    stored[0, 0] = 0
    path = write_encoded(tmp_path / "lst.tif", stored, gdal.GDT_UInt16, scale=0.01, nodata=0)
    kelvin, _, _ = read_lst_kelvin(path, 1, "auto", "LST k100")
    assert np.isnan(kelvin[0, 0]) and np.isfinite(kelvin[1:, 1:]).all()


@pytest.mark.parametrize("units", [u for u in LST_UNITS])
def test_an_emissivity_band_is_refused_as_lst_whatever_the_units_chosen(tmp_path, units):
    emissivity = np.linspace(0.95, 0.99, 400, dtype=np.float32).reshape(20, 20)
    path = write_encoded(tmp_path / "emissivity.tif", emissivity, gdal.GDT_Float32)
    dataset = gdal.Open(path)
    with pytest.raises(
        InputError,
        match=r"LST e: its values 0\.95\.\.0\.99 all lie within -1\.\.1, which is an emissivity, a reflectance, an "
        r"index or a mask, not a temperature in any unit; choose the band that holds the land surface temperature",
    ):
        decide_lst_units(dataset, dataset.GetRasterBand(1), path, units, "LST e")


def test_a_band_of_zeros_is_called_fill_not_a_temperature(tmp_path):
    path = write_encoded(tmp_path / "zeros.tif", np.zeros((20, 20)), gdal.GDT_UInt16)
    dataset = gdal.Open(path)
    with pytest.raises(InputError, match=r"every valid pixel of the sampled band is 0, a fill value; set"):
        decide_lst_units(dataset, dataset.GetRasterBand(1), path, "landsat_c2_st_dn", "LST z")


def test_units_errors_quote_the_whole_bands_range_not_a_samples_percentiles(tmp_path):
    # 1,000,000 px: the sample holds a few thousand windows' pixels; two outliers lie outside them.
    values = np.tile(np.linspace(500.0, 900.0, 1000, dtype=np.float32), (1000, 1))
    values[500, 3], values[3, 997] = 431.5, 987.25
    path = write_encoded(tmp_path / "odd.tif", values, gdal.GDT_Float32)
    dataset = gdal.Open(path)
    with pytest.raises(
        InputError, match=r"LST odd: cannot tell the units of the LST \(values 431\.5\.\.987\.25\)"
    ):
        decide_lst_units(dataset, dataset.GetRasterBand(1), path, "auto", "LST odd")


def test_unit_detection_reads_full_resolution_pixels_not_stale_overviews(tmp_path):
    kelvin = np.tile(np.linspace(290.0, 310.0, 600, dtype=np.float32), (600, 1))
    path = write_encoded(tmp_path / "lst.tif", kelvin, gdal.GDT_Float32)
    dataset = gdal.Open(path, gdal.GA_Update)
    dataset.BuildOverviews("NEAREST", [2, 4, 8])
    band = dataset.GetRasterBand(1)
    for level in range(band.GetOverviewCount()):
        overview = band.GetOverview(level)
        overview.WriteArray(np.full((overview.YSize, overview.XSize), 25.0, np.float32))
    dataset = None
    dataset = gdal.Open(path)
    assert decide_lst_units(dataset, dataset.GetRasterBand(1), path, "auto", "LST ovr").name == "kelvin"

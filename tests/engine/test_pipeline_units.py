"""LST units through the pipeline: every accepted unit gives the same Kelvin output, the
decision is logged, and implausible temperatures are refused."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.pipeline import OUTPUT_NODATA
from engine.units import LANDSAT_C2_ST_ADD, LANDSAT_C2_ST_MULT, MODIS_LST_MULT

from .conftest import read, run_downscale


@pytest.fixture(scope="module")
def kelvin_output(small_scene, tmp_path_factory):
    result, _ = run_downscale(small_scene, tmp_path_factory.mktemp("kelvin") / "out.tif")
    return read(result.output_path)


@pytest.mark.parametrize(
    "name, encode, options, expected_units, tolerance_k",
    [
        ("celsius.tif", lambda k: k - 273.15, {"unit": "degC"}, "celsius", 1e-3),
        ("celsius_plain.tif", lambda k: k - 273.15, {}, "celsius", 1e-3),
        (
            "LC08_ST_B10.TIF",
            lambda k: np.round((k - LANDSAT_C2_ST_ADD) / LANDSAT_C2_ST_MULT).astype(np.uint16),
            {},
            "landsat_c2_st_dn",
            LANDSAT_C2_ST_MULT,
        ),
        (
            "modis_dn.tif",
            lambda k: np.round(k / MODIS_LST_MULT).astype(np.uint16),
            {},
            "modis_lst_dn",
            MODIS_LST_MULT,
        ),
    ],
)
def test_each_lst_unit_gives_the_kelvin_result_within_its_quantisation(
    name, encode, options, expected_units, tolerance_k, small_scene, kelvin_output, tmp_path
):
    path = small_scene.write_lst(name, encode(small_scene.lst_kelvin.astype(np.float64)), **options)
    result, lines = run_downscale(small_scene, tmp_path / "out.tif", lst_path=path)
    assert result.lst_units == expected_units
    assert f"LST units: {expected_units} ({result.lst_units_reason})" in lines
    values = read(result.output_path)
    valid = kelvin_output != OUTPUT_NODATA
    assert np.abs(values[valid] - kelvin_output[valid]).max() < tolerance_k


def test_landsat5_band6_numbers_are_converted_with_the_thermal_constants(small_scene, tmp_path):
    dn = np.full(small_scene.lst_kelvin.shape, 140, np.uint8)
    path = small_scene.write_lst("tm_b6_dn.tif", dn)
    result, _ = run_downscale(small_scene, tmp_path / "out.tif", lst_path=path, lst_units="landsat5_tm_b6_dn")
    values = read(result.output_path)
    np.testing.assert_allclose(values[values != OUTPUT_NODATA], 297.2869, atol=1e-3)


def test_implausible_temperatures_are_an_error_not_an_output(small_scene, tmp_path):
    path = small_scene.write_lst("decikelvin.tif", small_scene.lst_kelvin * 10.0, unit="K")
    with pytest.raises(
        InputError,
        match=r"decikelvin\.tif: read as Kelvin \(the band's unit is 'K'\), the LST spans "
        r"2949\.4\.\.2987\.0 K, outside the plausible 149-400 K",
    ):
        run_downscale(small_scene, tmp_path / "out.tif", lst_path=path)
    assert not (tmp_path / "out.tif").exists()


def test_explicit_units_that_contradict_the_values_are_refused(small_scene, tmp_path):
    with pytest.raises(
        InputError, match="read as Celsius .* outside the plausible 149-400 K; set the correct LST units"
    ):
        run_downscale(small_scene, tmp_path / "out.tif", lst_units="celsius")


def test_unknown_names_in_the_request_are_errors(small_scene, tmp_path):
    for field, value, message in (
        ("lst_units", "fahrenheit", "Unknown LST units 'fahrenheit'"),
        ("output_units", "rankine", "Unknown output units 'rankine'"),
        (
            "method",
            "kriging",
            "Unknown method 'kriging'; use one of mocolsk, blend, bicubic, tsharp, dms, auto",
        ),
        ("qa_mask_kind", "magic", "Unknown QA mask kind 'magic'"),
    ):
        with pytest.raises(InputError, match=message):
            run_downscale(small_scene, tmp_path / "out.tif", **{field: value})

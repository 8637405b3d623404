"""Guidance stacks from Landsat C2 L2 surface reflectance: values, band order, grids, errors."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, osr

from engine.errors import Cancelled, InputError
from engine.guidance import (
    C2_SR_OFFSET,
    C2_SR_SCALE,
    check_units,
    compute_guidance,
    required_inputs,
    sr_to_reflectance,
)
from engine.guidance_stack import build_guidance_stack

gdal.UseExceptions()
UTM22N = 32622


def write_raster(path, values, pixel_m=30.0, origin=(500000.0, -400000.0), epsg=UTM22N, nodata=None):
    values = np.asarray(values)
    dtype = gdal.GDT_UInt16 if values.dtype == np.uint16 else gdal.GDT_Float32
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), values.shape[1], values.shape[0], 1, dtype)
    dataset.SetGeoTransform((origin[0], pixel_m, 0.0, origin[1], 0.0, -pixel_m))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    dataset.SetProjection(srs.ExportToWkt())
    if nodata is not None:
        dataset.GetRasterBand(1).SetNoDataValue(nodata)
    dataset.GetRasterBand(1).WriteArray(values)
    dataset = None
    return path


def c2_dn(reflectance):
    return np.round((np.asarray(reflectance) - C2_SR_OFFSET) / C2_SR_SCALE).astype(np.uint16)


@pytest.fixture
def sr_bands(tmp_path):
    """Red and NIR reflectance over a 40 x 24 grid with a fill pixel in the red band."""
    rng = np.random.default_rng(1)
    red = rng.uniform(0.02, 0.2, (24, 40))
    nir = rng.uniform(0.2, 0.5, (24, 40))
    red_dn, nir_dn = c2_dn(red), c2_dn(nir)
    red_dn[3, 5] = 0
    return (
        {
            "red": write_raster(tmp_path / "SR_B4.TIF", red_dn),
            "nir": write_raster(tmp_path / "SR_B5.TIF", nir_dn),
        },
        red,
        nir,
    )


def test_c2l2_digital_numbers_become_reflectance_and_fill_becomes_nan():
    dn = np.array([0, 7273, 43636], np.uint16)
    reflectance = sr_to_reflectance(dn)
    assert np.isnan(reflectance[0])
    np.testing.assert_allclose(reflectance[1:], [0.0, 1.0], atol=1e-4)


def test_reflectance_encoding_keeps_values_and_masks_nodata():
    values = np.array([0.1, -9999.0, 0.3], np.float32)
    reflectance = sr_to_reflectance(values, "reflectance", nodata=-9999.0)
    np.testing.assert_allclose(reflectance[[0, 2]], [0.1, 0.3])
    assert np.isnan(reflectance[1])


def test_stack_follows_the_requested_band_order_and_index_formulas():
    inputs = {
        "red": np.full((2, 2), 0.1, np.float32),
        "nir": np.full((2, 2), 0.3, np.float32),
        "green": np.full((2, 2), 0.2, np.float32),
    }
    stack = compute_guidance(["nir", "ndvi", "ndwi", "red"], inputs)
    assert stack.shape == (4, 2, 2) and stack.dtype == np.float32
    np.testing.assert_allclose(stack[:, 0, 0], [0.3, 0.5, -0.2, 0.1], rtol=1e-6)


def test_required_inputs_lists_the_reflectances_behind_indices_and_accepts_aliases():
    assert required_inputs(["ndvi", "coastal", "elevation"]) == ("deepblue", "red", "nir", "dem")


def test_unknown_band_is_refused_by_name():
    with pytest.raises(InputError, match="'vre'"):
        required_inputs(["red", "vre"])


def test_units_other_than_the_built_ones_are_refused():
    check_units(["red", "ndvi", "dem"], ["TOA reflectance (unitless)", "index (unitless)", "m"])
    with pytest.raises(InputError, match="'red' in 'percent'"):
        check_units(["red"], ["percent"])


def test_a_model_trained_on_toa_reflectance_is_noted_and_one_in_other_units_refused(tmp_path, sr_bands):
    paths, _, _ = sr_bands
    messages = []
    build_guidance_stack(
        tmp_path / "a.tif",
        ["red", "ndvi"],
        paths,
        expected_units=["TOA reflectance", "index"],
        log=messages.append,
    )
    assert any("top-of-atmosphere" in m for m in messages)
    with pytest.raises(InputError, match="'ndvi' in 'K'"):
        build_guidance_stack(tmp_path / "b.tif", ["red", "ndvi"], paths, expected_units=["reflectance", "K"])
    assert not (tmp_path / "b.tif").exists()


def test_stack_file_has_band_descriptions_units_nodata_and_grid(tmp_path, sr_bands):
    paths, red, nir = sr_bands
    percents = []
    out = build_guidance_stack(
        tmp_path / "guidance.tif", ["red", "nir", "ndvi"], paths, progress=percents.append
    )
    assert percents[-1] == 100.0
    dataset = gdal.Open(str(out))
    assert (dataset.RasterXSize, dataset.RasterYSize, dataset.RasterCount) == (40, 24, 3)
    assert dataset.GetGeoTransform() == gdal.Open(str(paths["red"])).GetGeoTransform()
    assert [dataset.GetRasterBand(i).GetDescription() for i in (1, 2, 3)] == ["red", "nir", "ndvi"]
    assert dataset.GetRasterBand(3).GetMetadataItem("units") == "index"
    assert np.isnan(dataset.GetRasterBand(1).GetNoDataValue())
    stack = dataset.ReadAsArray()
    assert np.isnan(stack[0, 3, 5]) and np.isnan(stack[2, 3, 5])
    valid = np.ones(red.shape, bool)
    valid[3, 5] = False
    np.testing.assert_allclose(stack[0][valid], red[valid], atol=C2_SR_SCALE)
    expected_ndvi = (nir - red) / (nir + red)
    np.testing.assert_allclose(stack[2][valid], expected_ndvi[valid], atol=1e-3)


def test_dem_on_a_coarser_grid_is_resampled_onto_the_reflectance_grid(tmp_path, sr_bands):
    paths, _, _ = sr_bands
    slope = np.add.outer(np.arange(12) * 10.0, np.arange(20) * 1.0)
    dem = write_raster(tmp_path / "dem.tif", slope.astype(np.float32), pixel_m=60.0)
    out = build_guidance_stack(tmp_path / "guidance.tif", ["dem", "red"], paths, dem_path=dem)
    elevation = gdal.Open(str(out)).ReadAsArray()[0]
    assert elevation.shape == (24, 40)
    interior = elevation[2:-2, 2:-2]
    assert np.isfinite(interior).all()
    # bilinear resampling of a plane keeps the plane: 5 m per 30 m row, 0.5 m per 30 m column
    np.testing.assert_allclose(np.diff(interior, axis=0), 5.0, atol=1e-3)
    np.testing.assert_allclose(np.diff(interior, axis=1), 0.5, atol=1e-3)


def test_bands_on_different_grids_are_refused_naming_both(tmp_path, sr_bands):
    paths, _, _ = sr_bands
    shifted = write_raster(
        tmp_path / "nir_shifted.tif", c2_dn(np.full((24, 40), 0.3)), origin=(500015.0, -400000.0)
    )
    with pytest.raises(InputError, match="nir layer.*not on the grid of the red layer"):
        build_guidance_stack(tmp_path / "guidance.tif", ["ndvi"], {**paths, "nir": shifted})


def test_missing_reflectance_band_is_named(tmp_path, sr_bands):
    paths, _, _ = sr_bands
    with pytest.raises(InputError, match="swir1 \\(SR_B6"):
        build_guidance_stack(tmp_path / "guidance.tif", ["ndbi"], paths)


def test_dem_band_without_a_dem_is_refused(tmp_path, sr_bands):
    paths, _, _ = sr_bands
    with pytest.raises(InputError, match="give a DEM"):
        build_guidance_stack(tmp_path / "guidance.tif", ["red", "dem"], paths)


def test_output_over_an_input_is_refused_and_the_input_survives(tmp_path, sr_bands):
    paths, _, _ = sr_bands
    before = paths["red"].read_bytes()
    with pytest.raises(InputError, match="one of the inputs"):
        build_guidance_stack(paths["red"], ["red", "nir"], paths)
    assert paths["red"].read_bytes() == before


def test_cancelled_build_leaves_no_file(tmp_path, sr_bands):
    paths, _, _ = sr_bands
    out = tmp_path / "guidance.tif"
    with pytest.raises(Cancelled):
        build_guidance_stack(out, ["red", "nir"], paths, is_cancelled=lambda: True)
    assert list(tmp_path.glob("*guidance*")) == []


def test_level1_scene_gives_the_toa_guidance_the_bundled_models_were_trained_on(tmp_path):
    from tests.conftest import SAMPLE_MTL
    from training.landsat_scenes import GUIDANCE_BANDS, read_landsat_scene

    names = [band.name for band in GUIDANCE_BANDS]
    out = build_guidance_stack(
        tmp_path / "toa.tif",
        names,
        {},
        encoding="landsat_l1_toa",
        mtl_path=SAMPLE_MTL,
        expected_units=[band.units for band in GUIDANCE_BANDS],
    )
    np.testing.assert_allclose(
        gdal.Open(str(out)).ReadAsArray(), read_landsat_scene(SAMPLE_MTL).guidance, atol=1e-6
    )


def test_level1_digital_numbers_without_the_mtl_file_are_refused(tmp_path, sr_bands):
    with pytest.raises(InputError, match="need the scene's MTL metadata file"):
        build_guidance_stack(
            tmp_path / "toa.tif", ["red"], {"red": sr_bands[0]["red"]}, encoding="landsat_l1_toa"
        )


def test_c2_sr_with_negative_water_gives_indices_within_minus_one_to_one_and_the_log_counts_them(tmp_path):
    from tests.c2l2 import write_c2l2_scene

    scene = write_c2l2_scene(tmp_path / "c2")
    messages = []
    out = build_guidance_stack(
        tmp_path / "stack.tif", ["green", "red", "nir", "ndvi", "ndwi"], scene.sr, log=messages.append
    )
    green, red, nir, ndvi, ndwi = gdal.Open(str(out)).ReadAsArray()
    assert np.isnan(ndvi[scene.fill]).all() and np.isfinite(ndvi[~scene.fill]).all()
    assert np.nanmax(np.abs(ndvi)) <= 1 and np.nanmax(np.abs(ndwi)) <= 1
    water_nir_negative = scene.water & (nir < 0)
    assert water_nir_negative.sum() > 2000
    np.testing.assert_array_equal(ndvi[water_nir_negative], -1.0)
    np.testing.assert_array_equal(ndwi[water_nir_negative], 1.0)
    negative = int(np.sum(~scene.fill & ((nir < 0) | (red < 0))))
    valid = int(np.sum(~scene.fill))
    assert any(m.startswith(f"Index ndvi ({valid:,} pixels): {negative:,} (") for m in messages), messages

"""Grids: the LST is used as is when it sits on the coarse grid, warped when it does not,
and refused when its resolution matches no supported scale."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from engine.errors import InputError
from engine.metrics import rmse
from engine.pipeline import OUTPUT_NODATA

from .conftest import (
    brightness_temperature_kelvin,
    landsat_path,
    make_scene,
    read,
    run_downscale,
    write_raster,
)


def output_kelvin(result):
    values = read(result.output_path).astype(np.float64)
    return np.where(values == OUTPUT_NODATA, np.nan, values)


@pytest.fixture(scope="module")
def aligned(scene, tmp_path_factory):
    result, _ = run_downscale(scene, tmp_path_factory.mktemp("aligned") / "out.tif")
    return result


def warp_lst(scene, tmp_path, name, **options):
    return gdal.Warp(str(tmp_path / name), scene.lst_path, resampleAlg="average", **options) and str(
        tmp_path / name
    )


def test_an_lst_on_the_coarse_grid_is_not_warped(aligned):
    assert not aligned.warped
    assert aligned.warp_reason == "LST already on the x4 coarse grid (120 m); no warp"
    assert aligned.scale == 4


def test_an_lst_in_another_crs_is_warped_with_area_averaging(scene, aligned, tmp_path):
    lst = warp_lst(scene, tmp_path, "lst_wgs84.tif", dstSRS="EPSG:4326")
    result, lines = run_downscale(scene, tmp_path / "out.tif", lst_path=lst)
    assert result.warped and result.scale == 4
    assert "its CRS EPSG:4326 differs from the guidance's EPSG:32622" in result.warp_reason
    assert result.warp_reason in lines
    # A round trip through geographic coordinates blurs a little but keeps the field.
    assert rmse(output_kelvin(result), output_kelvin(aligned)) < 0.2


def test_an_lst_with_a_shifted_origin_is_warped(scene, aligned, tmp_path):
    x0, dx, _, y0, _, dy = scene.coarse_geotransform
    lst = write_raster(
        tmp_path / "shifted.tif",
        scene.lst_kelvin,
        (x0 + 30.0, dx, 0, y0 - 60.0, 0, dy),
        scene.crs_wkt,
        unit="K",
    )
    result, _ = run_downscale(scene, tmp_path / "out.tif", lst_path=lst)
    assert result.warped and "pixel edges are shifted" in result.warp_reason
    assert rmse(output_kelvin(result), output_kelvin(aligned)) < 0.3


def test_an_lst_with_a_nearby_pixel_size_is_warped_onto_the_scale_grid(scene, tmp_path):
    lst = warp_lst(scene, tmp_path, "lst_100m.tif", xRes=100.0, yRes=100.0)
    result, _ = run_downscale(scene, tmp_path / "out.tif", lst_path=lst)
    assert (result.scale, result.warped) == (3, True)
    assert "its pixel of 100 m differs from the coarse pixel of 90 m" in result.warp_reason


def test_a_resolution_ratio_no_model_scale_matches_is_an_error(scene, tiny_package_x4, tmp_path):
    lst = warp_lst(scene, tmp_path, "lst_240m.tif", xRes=240.0, yRes=240.0)
    with pytest.raises(
        InputError,
        match=r"its pixel is 8 times the guidance pixel, which matches no scale model 'tiny_x4' supports "
        r"\(x4\)",
    ):
        run_downscale(
            scene, tmp_path / "out.tif", lst_path=lst, method="mocolsk", model=str(tiny_package_x4.card_path)
        )
    assert not (tmp_path / "out.tif").exists()


def test_a_landsat_thermal_band_on_the_guidance_grid_is_averaged_onto_its_native_pixel(scene, tmp_path):
    """The TM band 6 file as delivered (30 m grid, sensed at 120 m): x4, conserved on the 120 m grid."""
    result, lines = run_downscale(scene, tmp_path / "out.tif", lst_path=str(landsat_path(6)))
    assert (result.scale, result.warped) == (4, True)
    assert "its pixel of 30 m is finer than the coarse pixel of 120 m" in result.warp_reason
    assert any("its pixel is 30 m but Landsat 5 TM senses 120 m; the name says LT5" in line for line in lines)
    fine = output_kelvin(result)[:308, :284]
    delivered = brightness_temperature_kelvin()[:308, :284]
    block = lambda v: v.reshape(77, 4, 71, 4).mean(axis=(1, 3))  # noqa: E731
    np.testing.assert_allclose(block(fine), block(delivered), atol=2e-3)


def test_a_collection_2_st_b10_on_the_guidance_grid_runs_mocolsk_x4_on_the_120_m_grid(scene, tmp_path):
    kelvin = brightness_temperature_kelvin()
    dn = np.round((kelvin - 149.0) / 0.00341802).astype(np.uint16)
    lst = write_raster(
        tmp_path / "LC08_L2SP_224063_20200801_20200906_02_T1_ST_B10.TIF",
        dn,
        scene.fine_geotransform,
        scene.crs_wkt,
        nodata=0,
    )
    result, lines = run_downscale(scene, tmp_path / "out.tif", lst_path=lst, method="mocolsk")
    assert (result.model_name, result.scale, result.lst_units) == (
        "mocolsk-x4-landsat-light",
        4,
        "landsat_c2_st_dn",
    )
    assert any("Landsat 8 TIRS senses 100 m; the name says LC08" in line for line in lines)
    assert (
        "Model: mocolsk-x4-landsat-light, the bundled package for x4 (LST pixel 100 m / guidance pixel 30 m)"
        in (" ".join(lines))
    )
    assert "the coarser 120 m grid" in " ".join(lines)


def thermal_band_on_guidance_grid(scene, folder) -> str:
    """The sample's band 6 in Kelvin on the 30 m grid, as Landsat delivers it, with no name or MTL to
    say its native pixel."""
    return write_raster(
        folder / "lst_30m.tif",
        brightness_temperature_kelvin(),
        scene.fine_geotransform,
        scene.crs_wkt,
        unit="K",
    )


def test_a_given_native_pixel_sets_the_scale_of_an_lst_on_the_guidance_grid(scene, tmp_path):
    lst = thermal_band_on_guidance_grid(scene, tmp_path)
    result, lines = run_downscale(scene, tmp_path / "out.tif", lst_path=lst, native_pixel_m=60.0)
    assert result.scale == 2
    assert any("the native LST pixel given is 60 m" in line for line in lines)


def test_an_lst_on_the_guidance_grid_without_a_known_native_pixel_is_an_error(scene, tmp_path):
    lst = thermal_band_on_guidance_grid(scene, tmp_path)
    with pytest.raises(
        InputError,
        match=r"lst_30m\.tif: its pixel is 1 times the guidance pixel \(30 m / 30 m\), so it is on a grid as fine "
        r"as the guidance.*give that pixel as Native LST pixel \(m\) \(CLI --native-pixel-m\)",
    ):
        run_downscale(scene, tmp_path / "out.tif", lst_path=lst)
    assert not (tmp_path / "out.tif").exists()


def test_a_100_m_lst_runs_the_x4_bundled_package_on_the_coarser_120_m_grid(scene, tmp_path):
    lst = warp_lst(scene, tmp_path, "lst_100m.tif", xRes=100.0, yRes=100.0)
    result, lines = run_downscale(scene, tmp_path / "out.tif", lst_path=lst, method="mocolsk")
    assert (result.model_name, result.scale, result.warped) == ("mocolsk-x4-landsat-light", 4, True)
    assert (
        "Model: mocolsk-x4-landsat-light, the bundled package for x4 (LST pixel 100 m / guidance pixel 30 m); "
        "no bundled scale fits x3.33, so the LST is averaged onto the coarser 120 m grid" in lines
    )
    assert "its pixel of 100 m is finer than the coarse pixel of 120 m" in result.warp_reason


def test_a_960_m_lst_is_cascaded_through_the_x4_and_x8_bundled_packages(tmp_path):
    scene = make_scene(tmp_path / "x32", scale=32)
    result, lines = run_downscale(scene, tmp_path / "out.tif", method="mocolsk")
    assert result.scale_steps == (4, 8) and result.scale == 32
    assert result.model_name == "mocolsk-x4-landsat-light then mocolsk-x8-landsat-light"
    assert any(
        line.startswith("Model: cascade of the bundled packages mocolsk-x4-landsat-light (x4) then ")
        and line.endswith("960 m -> 240 m -> 30 m")
        for line in lines
    )
    assert "Cascade step 2/2: mocolsk-x8-landsat-light onto 30 m" in lines
    # Each step conserves its coarse means, so the output averages back to the 960 m input.
    fine = output_kelvin(result)
    rows, cols = scene.lst_kelvin.shape
    means = fine[: rows * 32, : cols * 32].reshape(rows, 32, cols, 32).mean(axis=(1, 3))
    np.testing.assert_allclose(means, scene.lst_kelvin, atol=0.01)
    metadata = gdal.Open(result.output_path).GetMetadata()
    assert (metadata["MOCOLSK_SCALE"], metadata["MOCOLSK_LST"]) == ("32", f"{scene.lst_path} band 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "x32"]


def test_a_ratio_beyond_every_cascade_is_an_error(small_scene, tmp_path):
    x0, _, _, y0, _, _ = small_scene.coarse_geotransform
    lst = write_raster(
        tmp_path / "lst_18km.tif",
        np.full((1, 1), 300.0),
        (x0, 18e3, 0, y0, 0, -18e3),
        small_scene.crs_wkt,
        unit="K",
    )
    with pytest.raises(
        InputError, match=r"no bundled model or cascade of them reaches that scale .*up to x512"
    ):
        run_downscale(small_scene, tmp_path / "out.tif", lst_path=lst, method="mocolsk")


def test_a_geographic_lst_of_0_01_degree_is_averaged_onto_the_coarse_grid(scene, tmp_path):
    """A 0.01-degree EPSG:4326 LST (how MODIS and Earth Engine exports come) over the UTM guidance."""
    lst = warp_lst(scene, tmp_path, "lst_0.01deg.tif", dstSRS="EPSG:4326", xRes=0.01, yRes=0.01)
    result, lines = run_downscale(scene, tmp_path / "out.tif", lst_path=lst)
    assert result.warped and result.scale == 37  # 0.01 degree is 1.11 km here, near the equator
    assert "its CRS EPSG:4326 differs from the guidance's EPSG:32622" in result.warp_reason
    assert np.isfinite(output_kelvin(result)).mean() > 0.5


def test_non_square_lst_pixels_count_by_their_area(small_scene, tmp_path):
    """Pixels in degrees are not square in metres; the scale follows the side of the square of equal area."""
    x0, dx, _, y0, _, dy = small_scene.coarse_geotransform
    stretched = write_raster(
        tmp_path / "stretched.tif",
        small_scene.lst_kelvin,
        (x0, dx, 0.0, y0, 0.0, dy / 2),
        small_scene.crs_wkt,
        unit="K",
    )
    result, _ = run_downscale(small_scene, tmp_path / "out.tif", lst_path=stretched)
    assert (result.scale, result.warped) == (3, True)  # 120 x 60 m: the area of an 85 m square


def test_guidance_rasters_on_different_grids_are_an_error(scene, tmp_path):
    x0, dx, _, y0, _, dy = scene.fine_geotransform
    other = write_raster(
        tmp_path / "other.tif", scene.guidance[0], (x0 + dx, dx, 0, y0, 0, dy), scene.crs_wkt
    )
    with pytest.raises(InputError, match=r"Guidance .*other\.tif is not on the grid of .*guidance_30m\.tif"):
        run_downscale(scene, tmp_path / "out.tif", guidance_paths=[scene.guidance_path, other])


def test_an_lst_that_misses_the_guidance_is_an_error(scene, tmp_path):
    x0, dx, _, y0, _, dy = scene.coarse_geotransform
    far = write_raster(
        tmp_path / "far.tif", scene.lst_kelvin, (x0 + 1e5, dx, 0, y0, 0, dy), scene.crs_wkt, unit="K"
    )
    with pytest.raises(InputError, match=r"LST .*far\.tif does not overlap the guidance extent"):
        run_downscale(scene, tmp_path / "out.tif", lst_path=far)


def test_an_lst_without_crs_is_an_error(scene, tmp_path):
    bare = write_raster(tmp_path / "bare.tif", scene.lst_kelvin, scene.coarse_geotransform, "", unit="K")
    with pytest.raises(InputError, match=r"LST .*bare\.tif has no coordinate reference system; assign one"):
        run_downscale(scene, tmp_path / "out.tif", lst_path=bare)


def test_a_missing_or_unreadable_lst_is_an_error(scene, tmp_path):
    with pytest.raises(InputError, match=r"LST .*nothing\.tif: file .* does not exist"):
        run_downscale(scene, tmp_path / "out.tif", lst_path=str(tmp_path / "nothing.tif"))
    (tmp_path / "text.tif").write_text("not a raster")
    with pytest.raises(InputError, match=r"LST .*text\.tif: GDAL cannot read"):
        run_downscale(scene, tmp_path / "out.tif", lst_path=str(tmp_path / "text.tif"))


def test_only_the_part_of_a_larger_lst_over_the_guidance_is_read(small_scene, tmp_path):
    """A wide LST (e.g. a whole MODIS tile): values far outside the guidance, even absurd
    ones, neither reach the output nor trip the plausibility check."""
    h, w = small_scene.lst_kelvin.shape
    pad = 40
    wide = np.full((h + 2 * pad, w + 2 * pad), 1000.0, np.float32)
    wide[pad - 4 : pad + h + 4, pad - 4 : pad + w + 4] = 330.0
    wide[pad : pad + h, pad : pad + w] = small_scene.lst_kelvin
    x0, dx, _, y0, _, dy = small_scene.coarse_geotransform
    path = write_raster(
        tmp_path / "wide.tif",
        wide,
        (x0 - pad * dx, dx, 0, y0 - pad * dy, 0, dy),
        small_scene.crs_wkt,
        unit="K",
    )
    result, _ = run_downscale(small_scene, tmp_path / "wide_out.tif", lst_path=path)
    reference, _ = run_downscale(small_scene, tmp_path / "out.tif")
    assert not result.warped
    np.testing.assert_array_equal(output_kelvin(result), output_kelvin(reference))


def test_a_missing_lst_band_is_an_error(small_scene, tmp_path):
    with pytest.raises(InputError, match=r"LST .*lst_120m\.tif has 1 band\(s\); band 3 does not exist"):
        run_downscale(small_scene, tmp_path / "out.tif", lst_band=3)


def test_a_rotated_lst_is_an_error(small_scene, tmp_path):
    x0, dx, _, y0, _, dy = small_scene.coarse_geotransform
    rotated = write_raster(
        tmp_path / "rotated.tif",
        small_scene.lst_kelvin,
        (x0, dx, 5.0, y0, 5.0, dy),
        small_scene.crs_wkt,
        unit="K",
    )
    with pytest.raises(InputError, match=r"rotated\.tif has a rotated or south-up geotransform"):
        run_downscale(small_scene, tmp_path / "out.tif", lst_path=rotated)

"""Grids: the LST is used as is when it sits on the coarse grid, warped when it does not,
and refused when its resolution matches no supported scale."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from engine.errors import InputError
from engine.metrics import rmse
from engine.pipeline import OUTPUT_NODATA

from .conftest import landsat_path, read, run_downscale, write_raster


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


def test_an_lst_already_at_the_guidance_resolution_is_an_error(scene, tmp_path):
    with pytest.raises(
        InputError,
        match=r"B6\.TIF: its pixel is 1 times the guidance pixel, which matches no scale method 'bicubic' "
        r"supports",
    ):
        run_downscale(scene, tmp_path / "out.tif", lst_path=str(landsat_path(6)))


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


def test_non_square_coarse_pixels_are_an_error(small_scene, tmp_path):
    x0, dx, _, y0, _, dy = small_scene.coarse_geotransform
    stretched = write_raster(
        tmp_path / "stretched.tif",
        small_scene.lst_kelvin,
        (x0, dx, 0.0, y0, 0.0, dy / 2),
        small_scene.crs_wkt,
        unit="K",
    )
    with pytest.raises(
        InputError, match=r"its pixels are 4 x 2 guidance pixels; the coarse pixel must be square"
    ):
        run_downscale(small_scene, tmp_path / "out.tif", lst_path=stretched)

"""The output file: format, grid, metadata, units, COG, and what happens on overwrite, cancel and failure."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from engine.errors import Cancelled, InputError, OutputError
from engine.pipeline import OUTPUT_NODATA

from .conftest import read, run_downscale


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".mocolsk-"))


def test_output_is_a_tiled_compressed_float32_geotiff_on_the_guidance_grid(small_scene, tmp_path):
    result, _ = run_downscale(small_scene, tmp_path / "out.tif")
    out, guidance = gdal.Open(result.output_path), gdal.Open(small_scene.guidance_path)
    band = out.GetRasterBand(1)
    assert out.GetDriver().ShortName == "GTiff"
    assert (out.RasterXSize, out.RasterYSize) == (guidance.RasterXSize, guidance.RasterYSize)
    assert out.GetGeoTransform() == guidance.GetGeoTransform()
    assert out.GetSpatialRef().IsSame(guidance.GetSpatialRef())
    assert gdal.GetDataTypeName(band.DataType) == "Float32"
    assert band.GetNoDataValue() == OUTPUT_NODATA
    assert band.GetBlockSize() == [256, 256]
    assert out.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    assert band.GetDescription() == "Land surface temperature (K)"
    assert band.GetUnitType() == "K"
    metadata = out.GetMetadata()
    assert metadata["MOCOLSK_METHOD"] == "bicubic"
    assert metadata["MOCOLSK_SCALE"] == "4"
    assert small_scene.lst_path in metadata["MOCOLSK_LST"]
    assert metadata["MOCOLSK_GUIDANCE"] == small_scene.guidance_path
    assert float(metadata["MOCOLSK_MAX_CONSERVATION_RESIDUAL_K"]) == pytest.approx(
        result.max_conservation_residual_k, abs=1e-6
    )
    values = band.ReadAsArray()
    assert 290.0 < values[values != OUTPUT_NODATA].min() < values.max() < 305.0
    assert leftovers(tmp_path) == []


def test_mocolsk_output_names_the_model_its_version_and_the_device(small_scene, tiny_package_x4, tmp_path):
    result, _ = run_downscale(
        small_scene, tmp_path / "out.tif", method="mocolsk", model=str(tiny_package_x4.card_path)
    )
    metadata = gdal.Open(result.output_path).GetMetadata()
    assert (metadata["MOCOLSK_MODEL"], metadata["MOCOLSK_MODEL_VERSION"]) == ("tiny_x4", "0.0.1")
    assert (result.model_name, result.model_version, result.scale) == ("tiny_x4", "0.0.1", 4)
    assert "onnxruntime" in result.device.lower() and metadata["MOCOLSK_DEVICE"] == result.device


def test_celsius_output_is_the_kelvin_output_minus_273_15(small_scene, tmp_path):
    kelvin, _ = run_downscale(small_scene, tmp_path / "k.tif")
    celsius, _ = run_downscale(small_scene, tmp_path / "c.tif", output_units="celsius")
    k, c = read(kelvin.output_path), read(celsius.output_path)
    valid = k != OUTPUT_NODATA
    np.testing.assert_array_equal(valid, c != OUTPUT_NODATA)
    np.testing.assert_allclose(c[valid], k[valid] - 273.15, atol=1e-4)
    dataset = gdal.Open(celsius.output_path)
    band = dataset.GetRasterBand(1)
    assert (band.GetUnitType(), band.GetDescription()) == ("degC", "Land surface temperature (degC)")


def test_cloud_optimized_geotiff_on_request(small_scene, tmp_path):
    result, _ = run_downscale(small_scene, tmp_path / "cog.tif", cog=True)
    dataset = gdal.Open(result.output_path)
    assert dataset.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert dataset.GetMetadata()["MOCOLSK_METHOD"] == "bicubic"
    assert leftovers(tmp_path) == []


def test_an_existing_output_is_left_alone_unless_overwrite_is_asked(small_scene, tmp_path):
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    with pytest.raises(
        InputError, match=r"Output .*out\.tif already exists; choose another path or allow overwriting"
    ):
        run_downscale(small_scene, out)
    assert out.read_bytes() == b"precious"
    run_downscale(small_scene, out, overwrite=True)
    assert gdal.Open(str(out)).RasterXSize == 96


def test_the_output_may_never_replace_an_input(small_scene):
    with pytest.raises(InputError, match="is one of the inputs; choose another output path"):
        run_downscale(small_scene, small_scene.lst_path, overwrite=True)


def test_a_cancelled_run_removes_its_partial_output_and_keeps_the_old_file(small_scene, tmp_path):
    out = tmp_path / "out.tif"
    out.write_bytes(b"previous result")
    calls = []

    def cancel_after_a_few_checks():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled, match="cancelled"):
        run_downscale(
            small_scene, out, overwrite=True, tile_size_px=32, is_cancelled=cancel_after_a_few_checks
        )
    assert out.read_bytes() == b"previous result"
    assert leftovers(tmp_path) == []


def test_a_run_failing_midway_leaves_no_output(small_scene, tmp_path):
    def fail_halfway(percent):
        if percent > 50:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        run_downscale(small_scene, tmp_path / "out.tif", tile_size_px=32, progress=fail_halfway)
    assert list(tmp_path.iterdir()) == []


def test_progress_rises_from_0_to_100_and_cancel_is_checked_every_tile(small_scene, tmp_path):
    seen, checks = [], []
    result, _ = run_downscale(
        small_scene,
        tmp_path / "out.tif",
        tile_size_px=32,
        progress=seen.append,
        is_cancelled=lambda: checks.append(1) and False,
    )
    assert seen == sorted(seen) and seen[-1] == 100.0 and seen[0] >= 0.0
    assert len(checks) >= result.tiles == 12


@pytest.mark.parametrize("name", ["lst.png", "lst.vrt", "lst"])
def test_an_output_name_without_a_writable_format_is_refused_before_anything_is_written(
    small_scene, tmp_path, name
):
    with pytest.raises(
        OutputError, match=r"not a format the result can be written in.*\.tif, .*e\.g\. lst\.tif"
    ):
        run_downscale(small_scene, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_cog_must_be_named_tif(small_scene, tmp_path):
    with pytest.raises(OutputError, match=r"a Cloud Optimized GeoTIFF is a GeoTIFF; name it lst\.tif"):
        run_downscale(small_scene, tmp_path / "lst.nc", cog=True)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_output_folder_is_an_error(small_scene, tmp_path):
    with pytest.raises(InputError, match="Output folder .* does not exist"):
        run_downscale(small_scene, tmp_path / "missing" / "out.tif")


@pytest.mark.parametrize(("name", "driver"), [("lst.nc", "netCDF"), ("lst.img", "HFA")])
def test_the_output_format_follows_the_extension_with_grid_nodata_and_values(
    small_scene, tmp_path, name, driver
):
    run_downscale(small_scene, tmp_path / "lst.tif")
    run_downscale(small_scene, tmp_path / name)
    geotiff, other = gdal.Open(str(tmp_path / "lst.tif")), gdal.Open(str(tmp_path / name))
    assert other.GetDriver().ShortName == driver
    assert other.GetGeoTransform() == geotiff.GetGeoTransform()
    assert other.GetRasterBand(1).GetNoDataValue() == OUTPUT_NODATA
    assert np.array_equal(other.ReadAsArray(), geotiff.ReadAsArray())
    assert not list(tmp_path.glob(".mocolsk-*"))


@pytest.mark.parametrize("name", ["blended.tif", "staged.tif", "lst_coarse.tif", "lst_kelvin.tif"])
def test_an_output_named_like_a_scratch_file_is_written_whole(small_scene, tmp_path, name):
    run_downscale(small_scene, tmp_path / "lst.tif")
    run_downscale(small_scene, tmp_path / name)
    assert np.array_equal(
        gdal.Open(str(tmp_path / name)).ReadAsArray(), gdal.Open(str(tmp_path / "lst.tif")).ReadAsArray()
    )


def test_progress_moves_while_a_single_tile_is_predicted(small_scene, tmp_path):
    from engine.pipeline import FITTED_PERCENT, TILES_DONE_PERCENT

    seen = []
    result, lines = run_downscale(small_scene, tmp_path / "out.tif", tile_size_px=512, progress=seen.append)
    assert result.tiles == 1
    inside_the_tile = [p for p in seen if FITTED_PERCENT < p < TILES_DONE_PERCENT]
    assert len(inside_the_tile) >= 2 and inside_the_tile == sorted(inside_the_tile)
    assert any(line.startswith("Tiles: 1/1 done in ") for line in lines)


def test_a_fast_many_tile_run_logs_one_tiles_line_at_the_end(small_scene, tmp_path):
    result, lines = run_downscale(small_scene, tmp_path / "out.tif", tile_size_px=32)
    tile_lines = [line for line in lines if line.startswith("Tiles: ")]
    assert result.tiles == 12 and len(tile_lines) == 1 and tile_lines[0].startswith("Tiles: 12/12 done in ")


def test_tile_lines_estimate_the_time_left_on_long_runs():
    from engine.scene.tiles import tile_done_line

    assert tile_done_line(10, 40, 30.0) == "Tiles: 10/40 done in 30 s, about 1 min 30 s left"
    assert tile_done_line(300, 400, 3 * 3600.0) == "Tiles: 300/400 done in 3 h 0 min, about 1 h 0 min left"
    assert tile_done_line(1, 4, 2.0) == "Tiles: 1/4 done in 2.0 s"  # short: no estimate
    assert tile_done_line(4, 4, 65.0) == "Tiles: 4/4 done in 1 min 5 s"

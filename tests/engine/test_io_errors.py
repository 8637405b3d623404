"""Read, write and model failures become the engine's own errors naming the file and the fix."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from engine.errors import InputError, OutputError, PackageError
from engine.grids import Grid
from engine.inference import Downscaler
from engine.raster import (
    create_geotiff,
    gdal_failure_mark,
    gdal_session,
    io_errors,
    io_failure,
    open_raster,
    output_driver,
    require_no_gdal_failures_since,
    translate_to_format,
    unreadable_reason,
)
from tests.corrupt import (
    copy_package,
    garble_onnx_keeping_checksum,
    nan_weights_keeping_checksum,
    truncated_copy,
)
from tests.engine.conftest import epsg_wkt, write_raster

from .conftest import tmpfs

gdal.UseExceptions()
GRID_GT = (500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0)


def truncated_geotiff(folder: Path) -> Path:
    """A real GeoTIFF cut after its header and first bytes of data: it opens, reading it fails."""
    path = Path(
        write_raster(
            folder / "whole.tif", np.random.default_rng(0).random((256, 256)), GRID_GT, epsg_wkt(32617)
        )
    )
    return truncated_copy(path, folder / "truncated.tif")


def test_an_empty_file_is_called_empty_not_missing(tmp_path):
    empty = tmp_path / "lst.tif"
    empty.touch()
    with pytest.raises(InputError, match=r"LST .*lst\.tif is empty \(0 bytes\), not a raster"):
        open_raster(empty, f"LST {empty}")
    assert "does not exist" in unreadable_reason(tmp_path / "gone.tif")


def test_a_truncated_geotiff_read_names_the_layer_and_says_to_get_it_again(tmp_path):
    cut = truncated_geotiff(tmp_path)
    with gdal_session(), pytest.raises(InputError) as caught:
        with io_errors({str(cut): f"LST {cut}"}, tmp_path / "out.tif"):
            dataset = open_raster(cut, f"LST {cut}")
            dataset.GetRasterBand(1).ReadAsArray()
    message = str(caught.value)
    assert message.startswith(f"LST {cut}: GDAL could not read {cut}")
    assert "damaged or truncated" in message and "again" in message


def test_errors_that_are_not_io_pass_through_unchanged(tmp_path):
    with gdal_session(), pytest.raises(RuntimeError, match="not GDAL"):
        with io_errors({}, tmp_path / "out.tif"):
            raise RuntimeError("not GDAL")


@pytest.mark.parametrize(
    ("error_number", "message", "kind", "expected"),
    [
        (
            errno.ENOSPC,
            "No space left on device",
            OutputError,
            r"No space left .* output folder .*Free some space",
        ),
        (None, "_tiffWriteProc:No space left on device", OutputError, r"No space left .*another folder"),
        (
            errno.EACCES,
            "Permission denied",
            OutputError,
            r"Permission denied writing out\.tif .*folder you can",
        ),
    ],
)
def test_output_failures_name_the_output_folder_and_the_fix(tmp_path, error_number, message, kind, expected):
    error = io_failure(
        [message], error_number, None, {"/data/lst.tif": "LST /data/lst.tif"}, tmp_path / "out.tif"
    )
    assert isinstance(error, kind)
    assert str(tmp_path) in str(error)
    assert re.search(expected, str(error)), str(error)


def test_permission_denied_on_an_input_names_that_layer():
    error = io_failure(
        ["Permission denied"],
        errno.EACCES,
        "/data/lst.tif",
        {"/data/lst.tif": "LST /data/lst.tif"},
        "/tmp/o.tif",
    )
    assert isinstance(error, InputError)
    assert str(error).startswith("LST /data/lst.tif: permission denied reading /data/lst.tif")


@pytest.fixture
def full_disk(tmp_path):
    """A 256 KiB tmpfs to fill."""
    yield from tmpfs(tmp_path / "full", "256k", "mounting a small tmpfs to fill")


def test_a_full_disk_failing_only_when_a_dataset_closes_is_an_error_naming_the_output_folder(full_disk):
    grid_values = np.random.default_rng(1).random((512, 512)).astype(np.float32)
    grid = Grid(epsg_wkt(32617), GRID_GT, 512, 512)
    output = full_disk / "lst_30m.tif"
    with gdal_session(), pytest.raises(OutputError) as caught:
        with io_errors({}, output):
            mark = gdal_failure_mark()
            dataset = create_geotiff(full_disk / "scratch.tif", grid, ("TILED=YES",))
            dataset.GetRasterBand(1).WriteArray(grid_values)
            dataset = None
            require_no_gdal_failures_since(mark, output)
    assert f"No space left on the disk of the output folder {full_disk}" in str(caught.value)
    assert "Free some space there, or choose an output in another folder" in str(caught.value)


def test_an_unparsable_onnx_with_a_matching_checksum_is_a_package_error_naming_the_file(
    tiny_package_x4, tmp_path
):
    card = garble_onnx_keeping_checksum(copy_package(tiny_package_x4, tmp_path, "broken"))
    with pytest.raises(PackageError) as caught:
        Downscaler(card, device="cpu")
    message = str(caught.value)
    assert "'broken'" in message and "broken.onnx" in message and "InvalidProtobuf" in message
    assert "Download or export the package again" in message


def test_a_model_returning_nan_is_an_error_naming_the_model(tiny_package_x4, tmp_path):
    card = nan_weights_keeping_checksum(
        copy_package(tiny_package_x4, tmp_path, "poisoned"), tiny_package_x4.torch_weights_path
    )
    downscaler = Downscaler(card, device="cpu")
    with pytest.raises(
        PackageError, match=r"Model 'poisoned' .* returned non-finite values .* weights are damaged"
    ):
        downscaler.predict_kelvin(np.full((4, 4), 295.0, np.float32), np.full((6, 16, 16), 0.15, np.float32))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lst.png", r"Output lst\.png has the extension \.png, which is not a format .* e\.g\. lst\.tif"),
        ("lst", r"Output lst has no extension"),
        ("lst.vrt", r"a \.vrt only points at other files"),
    ],
)
def test_an_output_extension_without_a_float_georeferenced_format_is_refused_listing_the_others(
    name, expected
):
    with pytest.raises(OutputError, match=expected) as caught:
        output_driver(name)
    assert ".tif, .tiff, .nc, .img" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "driver"), [("a.TIF", "GTiff"), ("a.tiff", "GTiff"), ("a.nc", "netCDF"), ("a.img", "HFA")]
)
def test_the_output_format_follows_the_extension(tmp_path, name, driver):
    assert output_driver(name) == driver
    source = write_raster(
        tmp_path / "s.tif",
        np.arange(64, dtype=np.float32).reshape(8, 8),
        GRID_GT,
        epsg_wkt(32617),
        nodata=-9999.0,
    )
    with gdal_session():
        files = translate_to_format(source, tmp_path / "out", name, driver)
    assert files[-1] == tmp_path / "out" / name
    written = gdal.Open(str(files[-1]))
    assert written.GetDriver().ShortName == driver
    assert written.GetGeoTransform() == GRID_GT and "32617" in written.GetProjection()
    assert written.GetRasterBand(1).DataType == gdal.GDT_Float32
    assert np.array_equal(written.GetRasterBand(1).ReadAsArray(), np.arange(64).reshape(8, 8))


def test_an_output_path_that_is_a_folder_is_refused_before_anything_is_read_or_written(small_scene, tmp_path):
    from tests.engine.conftest import run_downscale

    folder = tmp_path / "lst_30m.tif"
    folder.mkdir()
    with pytest.raises(
        OutputError, match=rf"Output {re.escape(str(folder))} is a folder; give a file name inside"
    ):
        # A missing LST too: the output is checked first, before any input is opened.
        run_downscale(small_scene, folder, lst_path=str(tmp_path / "missing.tif"), overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["lst_30m.tif"] and list(folder.iterdir()) == []


@pytest.mark.parametrize(
    "path",
    [
        "/vsicurl/http://127.0.0.1:9/lst.tif",  # a closed port: refused at once, no network needed
        "/vsizip/{tmp}/scene.zip/lst.tif",  # an archive without that member
        "GTIFF_DIR:2:{tmp}/scene.zip",  # a driver's connection string on a file that is no raster
    ],
)
def test_virtual_paths_that_cannot_be_read_name_the_layer_and_the_path(tmp_path, path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "scene.zip", "w") as archive:
        archive.writestr("readme.txt", "no raster here")
    path = path.format(tmp=tmp_path)
    with gdal_session(), pytest.raises(InputError) as caught:
        open_raster(path, f"LST {path}")
    assert str(caught.value).startswith(f"LST {path}: GDAL cannot read {path}")
    assert "give a raster file" in str(caught.value)


def test_a_subdataset_name_opens_although_it_is_no_file_name(small_scene, tmp_path):
    netcdf = tmp_path / "lst.nc"
    gdal.Translate(str(netcdf), small_scene.lst_path, format="netCDF")
    with gdal_session():
        dataset = open_raster(f'NETCDF:"{netcdf}":Band1', "LST nc")
        assert dataset.RasterXSize == gdal.Open(small_scene.lst_path).RasterXSize

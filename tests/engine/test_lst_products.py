"""The LST products users hold, as inputs: MODIS (netCDF subdatasets with QC, sinusoidal CRS), VIIRS,
ECOSTRESS (the real 70 m tiles) and Sentinel-3 SLSTR names, and Landsat thermal bands' native pixels.

MODIS files are built here with the product's layout (variable names, uint16 with scale 0.02 and fill 0,
QC byte, sinusoidal CRS, ~926 m pixels) from the real Landsat sample's LST; no small real MODIS sample
was found to ship.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from engine.errors import InputError
from engine.landsat import thermal_native_pixel
from engine.masks import qa_invalid
from engine.pipeline import OUTPUT_NODATA
from engine.raster import decide_lst_units, open_raster
from engine.sensors import native_lst_pixel
from tests.conftest import REPO

from .conftest import read, run_downscale, write_raster

MODIS_SINUSOIDAL = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_1KM_PIXEL_M = 926.625433
ECOSTRESS_CROP = (
    REPO
    / "tests"
    / "data"
    / "ecostress-dangermond-crop"
    / "ECOv002_L2T_LSTE_26860_001_10SGD_20230401T203733_0710_01_LST_dangermond.tif"
)


def _attribute(owner, name, value) -> None:
    if isinstance(value, str):
        kind = gdal.ExtendedDataType.CreateString()
    else:
        kind = gdal.ExtendedDataType.Create(gdal.GDT_Float64 if isinstance(value, float) else gdal.GDT_Int32)
    owner.CreateAttribute(name, [], kind).Write(value)


def write_netcdf(path: Path, variables: dict, geotransform: tuple, crs_wkt: str, grid_mapping: dict) -> str:
    """A CF netCDF of 2-D variables {name: (values, attributes)} on one grid, with a grid-mapping variable."""
    dataset = gdal.GetDriverByName("netCDF").CreateMultiDimensional(str(path))
    root = dataset.GetRootGroup()
    height, width = next(iter(variables.values()))[0].shape
    x0, dx, _, y0, _, dy = geotransform
    ydim = root.CreateDimension("y", gdal.DIM_TYPE_HORIZONTAL_Y, None, height)
    xdim = root.CreateDimension("x", gdal.DIM_TYPE_HORIZONTAL_X, None, width)
    for dim, values, axis in (
        (xdim, x0 + dx * (np.arange(width) + 0.5), "x"),
        (ydim, y0 + dy * (np.arange(height) + 0.5), "y"),
    ):
        coordinate = root.CreateMDArray(axis, [dim], gdal.ExtendedDataType.Create(gdal.GDT_Float64))
        _attribute(coordinate, "standard_name", f"projection_{axis}_coordinate")
        _attribute(coordinate, "units", "m")
        coordinate.Write(values)
    crs = root.CreateMDArray("crs", [], gdal.ExtendedDataType.Create(gdal.GDT_Int32))
    for name, value in {**grid_mapping, "spatial_ref": crs_wkt}.items():
        _attribute(crs, name, value)
    types = {
        np.dtype("uint16"): gdal.GDT_UInt16,
        np.dtype("uint8"): gdal.GDT_Byte,
        np.dtype("float32"): gdal.GDT_Float32,
    }
    for name, (values, attributes) in variables.items():
        variable = root.CreateMDArray(name, [ydim, xdim], gdal.ExtendedDataType.Create(types[values.dtype]))
        attributes = dict(attributes)
        if "_FillValue" in attributes:
            variable.SetNoDataValueDouble(float(attributes.pop("_FillValue")))
        for key, value in {**attributes, "grid_mapping": "crs"}.items():
            _attribute(variable, key, value)
        variable.Write(values)
    dataset = None
    return str(path)


def sinusoidal_wkt() -> str:
    srs = osr.SpatialReference()
    srs.ImportFromProj4(MODIS_SINUSOIDAL)
    return srs.ExportToWkt()


@pytest.fixture(scope="module")
def modis_day(scene, tmp_path_factory) -> tuple[str, np.ndarray]:
    """MOD11A1 day LST and QC in one netCDF (the AppEEARS layout): the sample's LST averaged onto the MODIS
    sinusoidal 1 km grid, one pixel flagged "not produced, cloud" in QC."""
    warped = gdal.Warp(
        "",
        scene.lst_path,
        format="MEM",
        dstSRS=MODIS_SINUSOIDAL,
        xRes=MODIS_1KM_PIXEL_M,
        yRes=MODIS_1KM_PIXEL_M,
        resampleAlg="average",
        targetAlignedPixels=True,
        dstNodata=np.nan,
    )
    kelvin = warped.ReadAsArray()
    dn = np.where(np.isfinite(kelvin), np.round(kelvin / 0.02), 0).astype(np.uint16)
    qc = np.where(dn == 0, 2, 0).astype(np.uint8)
    row, col = np.argwhere(dn > 0)[len(np.argwhere(dn > 0)) // 2]
    qc[row, col] = 0b10
    path = write_netcdf(
        tmp_path_factory.mktemp("modis") / "MOD11A1.A1988227.h13v09.061.nc",
        {
            "LST_Day_1km": (
                dn,
                {
                    "scale_factor": 0.02,
                    "add_offset": 0.0,
                    "_FillValue": 0,
                    "units": "K",
                    "long_name": "Daily daytime 1km grid Land-surface Temperature",
                },
            ),
            "QC_Day": (qc, {"long_name": "Quality control for daytime LST and emissivity"}),
        },
        warped.GetGeoTransform(),
        sinusoidal_wkt(),
        {
            "grid_mapping_name": "sinusoidal",
            "longitude_of_central_meridian": 0.0,
            "earth_radius": 6371007.181,
        },
    )
    return path, qc


def nodata_px(result) -> int:
    return int((read(result.output_path) == OUTPUT_NODATA).sum())


def test_a_modis_netcdf_subdataset_with_its_qc_downscales_in_kelvin(scene, modis_day, tmp_path):
    path, _ = modis_day
    lst, qc = f'NETCDF:"{path}":LST_Day_1km', f'NETCDF:"{path}":QC_Day'
    result, lines = run_downscale(scene, tmp_path / "out.tif", lst_path=lst, qa_mask_path=qc)
    # The product's scale_factor 0.02 is the band's GDAL scale: applied as QGIS does, the values are Kelvin.
    assert (
        result.lst_units == "kelvin"
        and "the band's scale 0.02 and offset 0 applied" in result.lst_units_reason
    )
    assert (
        "QA mask read as modis_qc (the name says MODIS/VIIRS QC; masked where LST was not produced)" in lines
    )
    assert result.warped and "its CRS" in result.warp_reason and result.scale == 31
    values = read(result.output_path)
    kelvin = values[values != OUTPUT_NODATA]
    assert 290.0 < kelvin.min() and kelvin.max() < 310.0
    without_qc, _ = run_downscale(scene, tmp_path / "no_qc.tif", lst_path=lst)
    assert nodata_px(result) > nodata_px(without_qc)


def test_a_file_of_several_subdatasets_is_refused_naming_them(scene, modis_day, tmp_path):
    path, _ = modis_day
    with pytest.raises(
        InputError, match=r"holds 2 subdatasets, not one raster; give the one to use .*:LST_Day_1km"
    ):
        run_downscale(scene, tmp_path / "out.tif", lst_path=path)


def test_modis_qc_masks_the_pixels_whose_lst_was_not_produced():
    qc = np.array([0b00, 0b01, 0b10, 0b11, 0b0100_0001, 0b1000_0010], np.uint8)
    assert qa_invalid(qc, "modis_qc").tolist() == [False, False, True, True, False, True]


def test_a_modis_geotiff_export_in_sinusoidal_is_read_as_modis_numbers(scene, modis_day, tmp_path):
    path, _ = modis_day
    export = str(tmp_path / "MOD11A1.061_LST_Day_1km_doy1988227_aid0001.tif")
    # Exports often drop the scale tag and the unit: the product name alone says DN x 0.02.
    dataset = gdal.Translate(export, f'NETCDF:"{path}":LST_Day_1km')
    band = dataset.GetRasterBand(1)
    band.SetScale(1.0)
    band.SetOffset(0.0)
    band.SetUnitType("")
    dataset = band = None
    result, _ = run_downscale(scene, tmp_path / "out.tif", lst_path=export)
    assert result.lst_units == "modis_lst_dn" and result.scale == 31


def utm_guidance_over(path: Path, folder: Path, epsg: int = 32610) -> str:
    """A 30 m guidance grid in UTM over a raster's extent (the values are not read by bicubic)."""
    warped = gdal.Warp("", str(path), format="MEM", dstSRS=f"EPSG:{epsg}", xRes=30.0, yRes=30.0)
    x0, _, _, y0, _, _ = warped.GetGeoTransform()
    inner = (x0 + 300.0, 30.0, 0.0, y0 - 300.0, 0.0, -30.0)
    shape = (warped.RasterYSize - 20, warped.RasterXSize - 20)
    return write_raster(
        folder / "guidance_30m.tif", np.ones(shape, np.float32), inner, warped.GetProjection()
    )


def test_the_real_ecostress_lst_in_degrees_counts_at_its_70_m_and_is_averaged_onto_90_m(tmp_path):
    """The real ECOSTRESS crop comes in EPSG:4326 at 0.00054 degree (about 50 x 60 m, finer than the 70 m
    ECOSTRESS senses) over a 30 m UTM guidance: it counts at 70 m, 2.33 guidance pixels, which no integer
    matches within 15 %, so bicubic averages it onto the coarser 90 m grid (x3)."""
    from engine.pipeline import DownscaleRequest, downscale_scene

    guidance = utm_guidance_over(ECOSTRESS_CROP, tmp_path)
    lines = []
    result = downscale_scene(
        DownscaleRequest(str(ECOSTRESS_CROP), [guidance], str(tmp_path / "out.tif"), method="bicubic"),
        log=lines.append,
    )
    assert (result.lst_units, result.scale, result.warped) == ("kelvin", 3, True)
    assert "its CRS EPSG:4326 differs from the guidance's EPSG:32610" in result.warp_reason
    assert any("but ECOSTRESS senses 70 m; the name says ECOV002_L2T_LSTE" in line for line in lines)
    values = read(result.output_path)
    assert 280.0 < values[values != OUTPUT_NODATA].mean() < 310.0


def test_the_real_ecostress_lst_runs_mocolsk_x4_on_120_m(tmp_path):
    from engine.pipeline import DownscaleRequest, downscale_scene

    guidance = utm_guidance_over(ECOSTRESS_CROP, tmp_path)
    stack = write_raster(
        tmp_path / "stack.tif",
        np.stack(
            [
                np.full(gdal.Open(guidance).ReadAsArray().shape, v, np.float32)
                for v in (0.05, 0.08, 0.07, 0.3, 0.2, 0.1)
            ]
        ),
        gdal.Open(guidance).GetGeoTransform(),
        gdal.Open(guidance).GetProjection(),
        descriptions=["blue", "green", "red", "nir", "swir1", "swir2"],
    )
    lines = []
    result = downscale_scene(
        DownscaleRequest(str(ECOSTRESS_CROP), [stack], str(tmp_path / "out.tif"), threads=1), log=lines.append
    )
    assert (result.model_name, result.scale) == ("mocolsk-x4-landsat-light", 4)
    assert any("so the LST is averaged onto the coarser 120 m grid" in line for line in lines)


def test_ecostress_integers_with_the_product_name_are_read_as_dn_x_0_02(tmp_path):
    kelvin = gdal.Open(str(ECOSTRESS_CROP)).ReadAsArray()
    dn = np.where(np.isfinite(kelvin), np.round(kelvin / 0.02), 0).astype(np.uint16)
    source = gdal.Open(str(ECOSTRESS_CROP))
    path = write_raster(
        tmp_path / "ECOSTRESS_L2_LSTE_26860_001_20230401T203733_0601_01_LST.tif",
        dn,
        source.GetGeoTransform(),
        source.GetProjection(),
        nodata=0,
    )
    dataset = open_raster(path, "LST")
    units = decide_lst_units(dataset, dataset.GetRasterBand(1), path, "auto", "LST")
    assert (units.name, units.reason) == (
        "modis_lst_dn",
        "the name says ECOSTRESS L2 LST (ECOSTRESS_L2_LSTE)",
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "LC08_L2SP_001062_20201031_20201106_02_T2_ST_B10.TIF",
            (100.0, "Landsat 8 TIRS senses 100 m; the name says LC08"),
        ),
        (
            "LC09_L2SP_001062_20221031_20221106_02_T1_ST_B10.TIF",
            (100.0, "Landsat 9 TIRS senses 100 m; the name says LC09"),
        ),
        (
            "LE07_L2SP_195025_20010730_20200917_02_T1_ST_B6.TIF",
            (60.0, "Landsat 7 ETM+ senses 60 m; the name says LE07"),
        ),
        (
            "LT05_L1TP_224063_19880814_20200917_02_T1_B6.TIF",
            (120.0, "Landsat 5 TM senses 120 m; the name says LT05"),
        ),
        ("LC82320832016040LGN00_band10.tif", (100.0, "Landsat 8 TIRS senses 100 m; the name says LC8")),
        ("MOD11A1.A2020215.h13v09.061.hdf", None),
        ("lst.tif", None),
        (
            "ECOv002_L2T_LSTE_26860_001_10SGD_20230401T203733_0710_01_LST.tif",
            (70.0, "ECOSTRESS senses 70 m; the name says ECOV002_L2T_LSTE"),
        ),
    ],
)
def test_a_thermal_sensor_is_known_by_its_product_name(name, expected, tmp_path):
    assert native_lst_pixel(tmp_path / name, {}) == expected


def test_a_landsat_thermal_band_is_known_by_the_mtl_beside_it_or_its_metadata():
    florida = REPO / "resources" / "data" / "landsat8-oli-tirs-p020r039-florida" / "test_B10.tif"
    assert thermal_native_pixel(florida, {}) == (
        100.0,
        "Landsat 8 TIRS senses 100 m; test_MTL.txt says LANDSAT_8",
    )
    metadata = {"L1_METADATA_FILE.PRODUCT_METADATA.SPACECRAFT_ID": '"LANDSAT_7"'}
    assert thermal_native_pixel(Path("/nowhere/thermal.tif"), metadata) == (
        60.0,
        "Landsat 7 ETM+ senses 60 m; the raster's metadata says LANDSAT_7",
    )

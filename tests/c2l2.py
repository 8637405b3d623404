"""A Landsat 8 Collection 2 Level-2 file set as USGS delivers it, built from the real Florida crop.

Files and encodings are those of the real product LC08_L2SP_001062_20201031_20201106_02_T2 (the
team's shared copy of the rio-tiler-pds test fixture): ``SR_B2``..``SR_B7`` UInt16 with nodata 0,
reflectance = DN x 0.0000275 - 0.2; ``ST_B10`` UInt16 with nodata 0, K = DN x 0.00341802 + 149;
``QA_PIXEL`` UInt16 bit flags without a nodata tag (1 = fill, 21824 clear land, 21952 clear water,
22280 high-confidence cloud); AREA_OR_POINT=Point; all on one 30 m grid named as USGS names them.

The land is real: the 160 x 160 px Florida crop in tests/data (its reflective bands as TOA
reflectance, its band 10 as brightness temperature). Two things are painted in, because the crop
has neither: a lake whose surface reflectance is what C2 L2 gives over clear water (NIR and SWIR
slightly negative, with noise, so that NIR + red comes near zero on some pixels and the textbook
NDVI and NDWI run far beyond -1..1), 294 K warm; and the slanted fill edge of a scene corner.
``ST_B10`` averaged to 120 m (x4, with gdalwarp's area average, fill ignored) is the LST the
bundled x4 model downscales; x2 and x8 copies are made the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from engine.landsat import brightness_temperature_kelvin, read_mtl, toa_reflectance
from tests.conftest import REPO

gdal.UseExceptions()

FLORIDA_CROP = REPO / "tests" / "data" / "landsat8-florida-crop"
PRODUCT = "LC08_L2SP_020039_20150804_20200908_02_T1"
SR_FILES = {"blue": 2, "green": 3, "red": 4, "nir": 5, "swir1": 6, "swir2": 7}
SR_SCALE, SR_OFFSET = 0.0000275, -0.2
ST_SCALE, ST_OFFSET = 0.00341802, 149.0
QA_FILL, QA_CLEAR_LAND, QA_CLEAR_WATER, QA_HIGH_CLOUD = 1, 21824, 21952, 22280
# Clear-water surface reflectance as C2 L2 delivers it (mean, noise): the NIR and SWIR undershoot zero.
WATER_SR = {
    "blue": (0.040, 0.004),
    "green": (0.050, 0.004),
    "red": (0.025, 0.004),
    "nir": (-0.008, 0.004),
    "swir1": (-0.010, 0.003),
    "swir2": (-0.006, 0.003),
}
WATER_KELVIN = 294.0
# Pixels brighter than this in blue TOA reflectance are flagged cloud in QA_PIXEL.
CLOUD_BLUE_TOA = 0.15


@dataclass(frozen=True)
class C2Scene:
    folder: Path
    sr: dict  # reflectance name -> SR_Bn file
    st_b10: Path  # 30 m, as delivered
    qa_pixel: Path
    water: np.ndarray  # (H, W) bool: the lake
    fill: np.ndarray  # (H, W) bool: DN 0 everywhere
    land_kelvin: np.ndarray  # ST_B10 in K, NaN on fill
    geotransform: tuple
    crs_wkt: str

    def st_b10_averaged(self, scale: int) -> Path:
        """``ST_B10`` area-averaged to ``scale`` x 30 m as UInt16 digital numbers (gdalwarp -r average)."""
        out = self.folder / f"{PRODUCT}_ST_B10_{30 * scale}m.TIF"
        if not out.exists():
            gdal.Warp(
                str(out),
                str(self.st_b10),
                xRes=30.0 * scale,
                yRes=30.0 * scale,
                resampleAlg="average",
                srcNodata=0,
                dstNodata=0,
                outputType=gdal.GDT_UInt16,
            )
        return out


def _write(path: Path, values: np.ndarray, like: gdal.Dataset, nodata: float | None = 0) -> Path:
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), values.shape[1], values.shape[0], 1, gdal.GDT_UInt16, ["COMPRESS=DEFLATE"]
    )
    dataset.SetGeoTransform(like.GetGeoTransform())
    dataset.SetProjection(like.GetProjection())
    dataset.SetMetadataItem("AREA_OR_POINT", "Point")
    band = dataset.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(values)
    dataset = None
    return path


def write_c2l2_scene(folder: Path, seed: int = 0) -> C2Scene:
    """The file set in ``folder`` (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    mtl = read_mtl(FLORIDA_CROP / "test_MTL.txt")
    rng = np.random.default_rng(seed)
    like = gdal.Open(str(FLORIDA_CROP / "test_B10.tif"))
    kelvin = brightness_temperature_kelvin(like.ReadAsArray().astype(np.float64), mtl, "10")
    height, width = kelvin.shape
    rows, cols = np.mgrid[0:height, 0:width]
    water = ((rows - 118) / 26.0) ** 2 + ((cols - 70) / 42.0) ** 2 < 1.0
    fill = cols + rows < 28
    reflectance = {}
    for name, band in SR_FILES.items():
        dn = gdal.Open(str(FLORIDA_CROP / f"test_B{band}.tif")).ReadAsArray().astype(np.float64)
        values = toa_reflectance(dn, mtl, str(band)).astype(np.float64)
        mean, noise = WATER_SR[name]
        reflectance[name] = np.where(water, rng.normal(mean, noise, water.shape), values)
    kelvin = np.where(water, rng.normal(WATER_KELVIN, 0.2, water.shape), kelvin)
    sr = {}
    for name, band in SR_FILES.items():
        dn = np.clip(np.round((reflectance[name] - SR_OFFSET) / SR_SCALE), 1, 65535).astype(np.uint16)
        sr[name] = _write(folder / f"{PRODUCT}_SR_B{band}.TIF", np.where(fill, 0, dn), like)
    st_dn = np.clip(np.round((kelvin - ST_OFFSET) / ST_SCALE), 1, 65535).astype(np.uint16)
    st_b10 = _write(folder / f"{PRODUCT}_ST_B10.TIF", np.where(fill, 0, st_dn), like)
    qa = np.where(water, QA_CLEAR_WATER, QA_CLEAR_LAND)
    qa = np.where(reflectance["blue"] > CLOUD_BLUE_TOA, QA_HIGH_CLOUD, qa)
    qa_pixel = _write(
        folder / f"{PRODUCT}_QA_PIXEL.TIF", np.where(fill, QA_FILL, qa).astype(np.uint16), like, None
    )
    return C2Scene(
        folder,
        sr,
        st_b10,
        qa_pixel,
        water,
        fill,
        np.where(fill, np.nan, st_dn * ST_SCALE + ST_OFFSET),
        like.GetGeoTransform(),
        like.GetProjection(),
    )

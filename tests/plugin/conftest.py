"""Plugin test fixtures: the provider registered through the plugin's own entry point, and a
small real scene cut from the Landsat 5 TM sample (64 x 64 px at 30 m, LST area-averaged to
120 m) so that each Processing run takes about a second."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.conftest import LANDSAT5, TINY_BANDS

gdal.UseExceptions()

CROP_ROW, CROP_COL, CROP_PX = 224, 32, 64
SCALE = 4
LANDSAT_89_SR_FILES = {
    "blue": "SR_B2",
    "green": "SR_B3",
    "red": "SR_B4",
    "nir": "SR_B5",
    "swir1": "SR_B6",
    "swir2": "SR_B7",
}
C2_SR_SCALE, C2_SR_OFFSET = 0.0000275, -0.2
# pip's wheel cache for the runtime installer's tests, kept across runs on one machine; a fresh CI
# machine downloads the wheels once (about 50 MB).
PIP_CACHE = Path(tempfile.gettempdir()) / "mocolsk-test-pip-cache"


@dataclass(frozen=True)
class SampleScene:
    folder: Path
    lst_120m: Path  # brightness temperature (K), 16 x 16 px at 120 m
    guidance_30m: Path  # TOA reflectance blue..swir2, 64 x 64 px at 30 m, bands named
    reference_30m: Path  # brightness temperature (K) at 30 m
    sr_bands: dict  # reflectance name -> single-band C2 L2 SR-encoded file (SR_B2..SR_B7)
    lst_min_k: float
    lst_max_k: float
    crs_wkt: str
    geotransform: tuple


def write_geotiff(
    path, bands, geotransform, crs_wkt, nodata=None, names=None, unit=None, dtype=gdal.GDT_Float32
):
    bands = np.asarray(bands)
    if bands.ndim == 2:
        bands = bands[None]
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), bands.shape[2], bands.shape[1], bands.shape[0], dtype
    )
    dataset.SetGeoTransform(geotransform)
    dataset.SetProjection(crs_wkt)
    for index, values in enumerate(bands):
        band = dataset.GetRasterBand(index + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if names:
            band.SetDescription(names[index])
        if unit:
            band.SetUnitType(unit)
        band.WriteArray(values)
    dataset = None
    return Path(path)


def coarse_geotransform(geotransform, scale=SCALE):
    x0, dx, _, y0, _, dy = geotransform
    return (x0, dx * scale, 0.0, y0, 0.0, dy * scale)


def block_mean(values, scale=SCALE):
    h, w = values.shape
    return values.reshape(h // scale, scale, w // scale, scale).mean(axis=(1, 3))


@pytest.fixture(scope="session")
def sample_scene(tmp_path_factory) -> SampleScene:
    from training.landsat_scenes import read_landsat_scene

    scene = read_landsat_scene(next(LANDSAT5.glob("*_MTL.txt")))
    rows, cols = slice(CROP_ROW, CROP_ROW + CROP_PX), slice(CROP_COL, CROP_COL + CROP_PX)
    x0, dx, _, y0, _, dy = scene.grid.geotransform
    geotransform = (x0 + CROP_COL * dx, dx, 0.0, y0 + CROP_ROW * dy, 0.0, dy)
    crs = scene.grid.crs_wkt
    lst_30m = scene.lst_kelvin[rows, cols]
    reflectance = {name: scene.guidance[scene.band_names.index(name), rows, cols] for name in TINY_BANDS}

    folder = tmp_path_factory.mktemp("sample_scene")
    sr_bands = {
        name: write_geotiff(
            folder / f"LC08_SAMPLE_{LANDSAT_89_SR_FILES[name]}.TIF",
            np.round((values - C2_SR_OFFSET) / C2_SR_SCALE).astype(np.uint16),
            geotransform,
            crs,
            nodata=0,
            dtype=gdal.GDT_UInt16,
        )
        for name, values in reflectance.items()
    }
    return SampleScene(
        folder=folder,
        lst_120m=write_geotiff(
            folder / "lst_120m.tif",
            block_mean(lst_30m),
            coarse_geotransform(geotransform),
            crs,
            nodata=-9999.0,
        ),
        guidance_30m=write_geotiff(
            folder / "guidance_30m.tif",
            [reflectance[n] for n in TINY_BANDS],
            geotransform,
            crs,
            names=TINY_BANDS,
        ),
        reference_30m=write_geotiff(
            folder / "reference_30m.tif", lst_30m, geotransform, crs, nodata=-9999.0, unit="K"
        ),
        sr_bands=sr_bands,
        lst_min_k=float(lst_30m.min()),
        lst_max_k=float(lst_30m.max()),
        crs_wkt=crs,
        geotransform=geotransform,
    )


@pytest.fixture(scope="session")
def mocolsk_provider(qgis_iface, qgis_processing):
    """The provider, registered the way QGIS registers it: classFactory -> initProcessing."""
    from qgis.core import QgsApplication

    import mocolsk_qgis

    plugin = mocolsk_qgis.classFactory(qgis_iface)
    plugin.initGui()
    yield QgsApplication.processingRegistry().providerById("mocolsk")
    plugin.unload()


@pytest.fixture
def run_algorithm(mocolsk_provider):
    """processing.run with a fresh feedback; returns the results dict."""
    import processing
    from qgis.core import QgsProcessingFeedback

    def run(algorithm_id, parameters, feedback=None):
        return processing.run(algorithm_id, parameters, feedback=feedback or QgsProcessingFeedback())

    return run

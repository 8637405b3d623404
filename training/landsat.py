"""Landsat Level-1 scenes (GeoTIFF bands + MTL) as training scenes.

The thermal band becomes at-sensor brightness temperature in Kelvin; the reflective bands
become top-of-atmosphere (TOA) reflectance, and two indices are added. Level-1 thermal
bands are sensed at 60-120 m and delivered resampled to 30 m, so the 30 m "fine" LST of
such a scene is itself smooth: models trained on it learn to recover that field.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.guidance import normalized_difference
from engine.landsat import (
    REFLECTIVE_BANDS,
    SENSOR_BANDS,
    THERMAL_NATIVE_RESOLUTION_M,
    band_file,
    brightness_temperature_kelvin,
    read_mtl,
    sensor_of,
    toa_reflectance,
)

from .scenes import BandInfo, Scene, read_band

GUIDANCE_BANDS: tuple[BandInfo, ...] = (
    *(BandInfo(name, "TOA reflectance (unitless)", f"{name} top-of-atmosphere reflectance") for name in REFLECTIVE_BANDS),
    BandInfo("ndvi", "index (unitless)", "(nir - red) / (nir + red) of TOA reflectance"),
    BandInfo("ndwi", "index (unitless)", "(green - nir) / (green + nir) of TOA reflectance (McFeeters)"),
)


def read_landsat_scene(mtl_path: str | Path) -> Scene:
    """A Landsat 4-9 Level-1 scene from its MTL file, the band GeoTIFFs lying beside it.

    LST is brightness temperature (no emissivity correction): the models learn a spatial
    relation, and an emissivity offset mostly shifts the mean."""
    mtl_path = Path(mtl_path)
    if not mtl_path.is_file():
        raise FileNotFoundError(f"Landsat MTL file {mtl_path} not found")
    mtl = read_mtl(mtl_path)
    sensor = sensor_of(mtl, mtl_path.name)
    reflective, thermal = SENSOR_BANDS[sensor]

    thermal_dn, grid = read_band(band_file(mtl_path, mtl, thermal))
    lst_kelvin = brightness_temperature_kelvin(thermal_dn, mtl, thermal)
    reflectance = []
    for band in reflective:
        dn, band_grid = read_band(band_file(mtl_path, mtl, band))
        if band_grid != grid:
            raise ValueError(f"{mtl_path.name}: band {band} is not on the grid of the thermal band {thermal}")
        reflectance.append(toa_reflectance(dn, mtl, band))
    blue, green, red, nir, swir1, swir2 = reflectance
    guidance = np.stack([*reflectance, normalized_difference(nir, red), normalized_difference(green, nir)])
    return Scene(
        name=mtl_path.stem.removesuffix("_MTL"),
        lst_kelvin=lst_kelvin,
        guidance=guidance,
        bands=GUIDANCE_BANDS,
        grid=grid,
        notes=f"{sensor} Level-1; brightness temperature of band {thermal} "
        f"(sensed at {THERMAL_NATIVE_RESOLUTION_M[sensor]} m, delivered on the 30 m grid); TOA reflectance guidance",
    )

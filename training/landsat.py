"""Landsat Level-1 scenes (GeoTIFF bands + MTL) as training scenes.

The thermal band becomes at-sensor brightness temperature in Kelvin; the reflective bands
become top-of-atmosphere (TOA) reflectance, and two indices are added. Level-1 thermal
bands are sensed at 60-120 m and delivered resampled to 30 m, so the 30 m "fine" LST of
such a scene is itself smooth: models trained on it learn to recover that field.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np

from .scenes import BandInfo, Scene, read_band

REFLECTIVE_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
GUIDANCE_BANDS: tuple[BandInfo, ...] = (
    *(BandInfo(name, "TOA reflectance (unitless)", f"{name} top-of-atmosphere reflectance") for name in REFLECTIVE_BANDS),
    BandInfo("ndvi", "index (unitless)", "(nir - red) / (nir + red) of TOA reflectance"),
    BandInfo("ndwi", "index (unitless)", "(green - nir) / (green + nir) of TOA reflectance (McFeeters)"),
)

# MTL band suffixes of blue, green, red, nir, swir1, swir2 and the thermal band per sensor.
SENSOR_BANDS = {
    "LANDSAT_4": (("1", "2", "3", "4", "5", "7"), "6"),
    "LANDSAT_5": (("1", "2", "3", "4", "5", "7"), "6"),
    "LANDSAT_7": (("1", "2", "3", "4", "5", "7"), "6_VCID_1"),
    "LANDSAT_8": (("2", "3", "4", "5", "6", "7"), "10"),
    "LANDSAT_9": (("2", "3", "4", "5", "6", "7"), "10"),
}
THERMAL_NATIVE_RESOLUTION_M = {"LANDSAT_4": 120, "LANDSAT_5": 120, "LANDSAT_7": 60, "LANDSAT_8": 100, "LANDSAT_9": 100}

# Landsat 5 TM constants for MTL files that predate REFLECTANCE_* and K1/K2 fields
# (Chander, Markham & Helder 2009, Remote Sens. Environ. 113, Tables 2 and 4).
TM_ESUN_W_M2_UM = {"1": 1983.0, "2": 1796.0, "3": 1536.0, "4": 1031.0, "5": 220.0, "7": 83.44}
TM_K1_K2 = (607.76, 1260.56)


def read_mtl(path: str | Path) -> dict[str, str]:
    """``KEY = VALUE`` pairs of a Landsat MTL file (groups flattened, quotes stripped)."""
    values = {}
    for line in Path(path).read_text(encoding="ascii", errors="replace").splitlines():
        match = re.match(r"\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$", line)
        if match and match.group(1) not in ("GROUP", "END_GROUP"):
            values[match.group(1)] = match.group(2).strip('"')
    return values


def earth_sun_distance_au(date: dt.date) -> float:
    """Approximate Earth-Sun distance for MTL files that do not state it."""
    day = date.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (day - 4)))


def brightness_temperature_kelvin(dn: np.ndarray, mtl: dict[str, str], band: str) -> np.ndarray:
    """At-sensor brightness temperature from thermal DN with the MTL radiance scaling."""
    radiance = float(mtl[f"RADIANCE_MULT_BAND_{band}"]) * dn + float(mtl[f"RADIANCE_ADD_BAND_{band}"])
    if f"K1_CONSTANT_BAND_{band}" in mtl:
        k1, k2 = float(mtl[f"K1_CONSTANT_BAND_{band}"]), float(mtl[f"K2_CONSTANT_BAND_{band}"])
    else:
        k1, k2 = TM_K1_K2
    with np.errstate(invalid="ignore", divide="ignore"):
        return (k2 / np.log(k1 / radiance + 1.0)).astype(np.float32)


def toa_reflectance(dn: np.ndarray, mtl: dict[str, str], band: str) -> np.ndarray:
    """TOA reflectance corrected for the sun elevation."""
    sin_elevation = math.sin(math.radians(float(mtl["SUN_ELEVATION"])))
    if f"REFLECTANCE_MULT_BAND_{band}" in mtl:
        reflectance = float(mtl[f"REFLECTANCE_MULT_BAND_{band}"]) * dn + float(mtl[f"REFLECTANCE_ADD_BAND_{band}"])
        return (reflectance / sin_elevation).astype(np.float32)
    if band not in TM_ESUN_W_M2_UM:
        raise ValueError(f"MTL lacks REFLECTANCE_MULT_BAND_{band} and no solar irradiance is known for band {band}")
    radiance = float(mtl[f"RADIANCE_MULT_BAND_{band}"]) * dn + float(mtl[f"RADIANCE_ADD_BAND_{band}"])
    if "EARTH_SUN_DISTANCE" in mtl:
        distance = float(mtl["EARTH_SUN_DISTANCE"])
    else:
        distance = earth_sun_distance_au(dt.date.fromisoformat(mtl["DATE_ACQUIRED"]))
    return (math.pi * radiance * distance**2 / (TM_ESUN_W_M2_UM[band] * sin_elevation)).astype(np.float32)


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        index = (a - b) / (a + b)
    return np.where(np.isfinite(index), index, np.nan).astype(np.float32)


def read_landsat_scene(mtl_path: str | Path) -> Scene:
    """A Landsat 4-9 Level-1 scene from its MTL file, the band GeoTIFFs lying beside it.

    LST is brightness temperature (no emissivity correction): the models learn a spatial
    relation, and an emissivity offset mostly shifts the mean."""
    mtl_path = Path(mtl_path)
    if not mtl_path.is_file():
        raise FileNotFoundError(f"Landsat MTL file {mtl_path} not found")
    mtl = read_mtl(mtl_path)
    sensor = mtl.get("SPACECRAFT_ID", "")
    if sensor not in SENSOR_BANDS:
        raise ValueError(f"{mtl_path.name}: SPACECRAFT_ID {sensor!r} is not one of {sorted(SENSOR_BANDS)}")
    reflective, thermal = SENSOR_BANDS[sensor]

    def band_file(band: str) -> Path:
        name = mtl.get(f"FILE_NAME_BAND_{band}")
        if name is None or not (mtl_path.parent / name).is_file():
            raise FileNotFoundError(f"{mtl_path.name}: band {band} file {name!r} not found beside the MTL")
        return mtl_path.parent / name

    thermal_dn, grid = read_band(band_file(thermal))
    lst_kelvin = brightness_temperature_kelvin(thermal_dn, mtl, thermal)
    reflectance = []
    for band in reflective:
        dn, band_grid = read_band(band_file(band))
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

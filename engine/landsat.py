"""Landsat Level-1 products: MTL metadata, thermal brightness temperature, TOA reflectance.

The bundled models were trained on Level-1 scenes (at-sensor brightness temperature and
top-of-atmosphere reflectance), so users with Level-1 data can build exactly that guidance.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np

from .errors import InputError

REFLECTIVE_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")

# MTL band suffixes of blue, green, red, nir, swir1, swir2 and the thermal band per sensor.
SENSOR_BANDS = {
    "LANDSAT_4": (("1", "2", "3", "4", "5", "7"), "6"),
    "LANDSAT_5": (("1", "2", "3", "4", "5", "7"), "6"),
    "LANDSAT_7": (("1", "2", "3", "4", "5", "7"), "6_VCID_1"),
    "LANDSAT_8": (("2", "3", "4", "5", "6", "7"), "10"),
    "LANDSAT_9": (("2", "3", "4", "5", "6", "7"), "10"),
}
THERMAL_NATIVE_RESOLUTION_M = {
    "LANDSAT_4": 120,
    "LANDSAT_5": 120,
    "LANDSAT_7": 60,
    "LANDSAT_8": 100,
    "LANDSAT_9": 100,
}

# TM and ETM+ constants for MTL files that predate REFLECTANCE_* and K1/K2 fields
# (Chander, Markham & Helder 2009, Remote Sens. Environ. 113, Tables 2 and 4).
TM_ESUN_W_M2_UM = {"1": 1983.0, "2": 1796.0, "3": 1536.0, "4": 1031.0, "5": 220.0, "7": 83.44}
TM_K1_K2 = (607.76, 1260.56)
ETM_ESUN_W_M2_UM = {"1": 1997.0, "2": 1812.0, "3": 1533.0, "4": 1039.0, "5": 230.8, "7": 84.90}
ETM_K1_K2 = (666.09, 1282.71)
ESUN_W_M2_UM = {"LANDSAT_4": TM_ESUN_W_M2_UM, "LANDSAT_5": TM_ESUN_W_M2_UM, "LANDSAT_7": ETM_ESUN_W_M2_UM}
THERMAL_K1_K2 = {"LANDSAT_4": TM_K1_K2, "LANDSAT_5": TM_K1_K2, "LANDSAT_7": ETM_K1_K2}


def read_mtl(path: str | Path) -> dict[str, str]:
    """``KEY = VALUE`` pairs of a Landsat MTL file (groups flattened, quotes stripped)."""
    values = {}
    for line in Path(path).read_text(encoding="ascii", errors="replace").splitlines():
        match = re.match(r"\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$", line)
        if match and match.group(1) not in ("GROUP", "END_GROUP"):
            values[match.group(1)] = match.group(2).strip('"')
    return values


def sensor_of(mtl: dict[str, str], source: str = "MTL file") -> str:
    sensor = mtl.get("SPACECRAFT_ID", "")
    if sensor not in SENSOR_BANDS:
        raise InputError(
            f"{source}: SPACECRAFT_ID {sensor!r} is not one of {', '.join(sorted(SENSOR_BANDS))}."
        )
    return sensor


def band_file(mtl_path: str | Path, mtl: dict[str, str], band: str) -> Path:
    """The GeoTIFF of MTL band ``band`` (e.g. ``"4"``), which must lie beside the MTL."""
    mtl_path = Path(mtl_path)
    name = mtl.get(f"FILE_NAME_BAND_{band}")
    if name is None or not (mtl_path.parent / name).is_file():
        raise InputError(
            f"{mtl_path.name}: the file of band {band} ({name!r}) is not beside the MTL file; keep the "
            "scene's files together."
        )
    return mtl_path.parent / name


def reflective_band_files(mtl_path: str | Path) -> dict[str, tuple[Path, str]]:
    """Reflectance name -> (band file, MTL band suffix) for a Level-1 scene."""
    mtl = read_mtl(mtl_path)
    reflective, _ = SENSOR_BANDS[sensor_of(mtl, Path(mtl_path).name)]
    return {name: (band_file(mtl_path, mtl, band), band) for name, band in zip(REFLECTIVE_BANDS, reflective)}


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
        k1, k2 = THERMAL_K1_K2.get(mtl.get("SPACECRAFT_ID", ""), TM_K1_K2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (k2 / np.log(k1 / radiance + 1.0)).astype(np.float32)


def toa_reflectance(dn: np.ndarray, mtl: dict[str, str], band: str) -> np.ndarray:
    """Top-of-atmosphere reflectance corrected for the sun elevation."""
    sin_elevation = math.sin(math.radians(float(mtl["SUN_ELEVATION"])))
    if f"REFLECTANCE_MULT_BAND_{band}" in mtl:
        reflectance = float(mtl[f"REFLECTANCE_MULT_BAND_{band}"]) * dn + float(
            mtl[f"REFLECTANCE_ADD_BAND_{band}"]
        )
        return (reflectance / sin_elevation).astype(np.float32)
    esun = ESUN_W_M2_UM.get(mtl.get("SPACECRAFT_ID", ""), TM_ESUN_W_M2_UM)
    if band not in esun:
        raise InputError(
            f"The MTL lacks REFLECTANCE_MULT_BAND_{band} and no solar irradiance is known for band {band}."
        )
    radiance = float(mtl[f"RADIANCE_MULT_BAND_{band}"]) * dn + float(mtl[f"RADIANCE_ADD_BAND_{band}"])
    if "EARTH_SUN_DISTANCE" in mtl:
        distance = float(mtl["EARTH_SUN_DISTANCE"])
    else:
        distance = earth_sun_distance_au(dt.date.fromisoformat(mtl["DATE_ACQUIRED"]))
    return (math.pi * radiance * distance**2 / (esun[band] * sin_elevation)).astype(np.float32)


# Landsat product identifiers: Collection 1/2 (LC08_L2SP_..., LE07_..., LT05_...) and pre-collection
# scene IDs (LC82320832016040LGN00); the sensor letter and the mission number name the thermal sensor.
_PRODUCT_ID = re.compile(r"(?<![A-Z0-9])(L([CTE])0?([4-9]))(?=_|\d{6})")
THERMAL_SENSOR_NAMES = {
    "LANDSAT_4": "Landsat 4 TM",
    "LANDSAT_5": "Landsat 5 TM",
    "LANDSAT_7": "Landsat 7 ETM+",
    "LANDSAT_8": "Landsat 8 TIRS",
    "LANDSAT_9": "Landsat 9 TIRS",
}


def thermal_native_pixel(path: str | Path, metadata: dict[str, str]) -> tuple[float, str] | None:
    """The pixel a Landsat thermal band was sensed at, and how it is known, or None.

    Landsat delivers thermal bands (and Collection 2 ``ST_B10``/``ST_B6``) resampled onto the 30 m
    grid; the sensor saw 60-120 m. Known from the product name (``LC08_…``, ``LE07_…``, ``LT05_…``), the
    raster's own metadata (``SPACECRAFT_ID``), or the MTL file beside it.
    """
    path = Path(path)
    match = _PRODUCT_ID.search(path.name.upper())
    if match and f"LANDSAT_{match.group(3)}" in THERMAL_NATIVE_RESOLUTION_M:
        return _native(f"LANDSAT_{match.group(3)}", f"the name says {match.group(1)}")
    spacecraft = next(
        (value.strip('"') for key, value in metadata.items() if key.split(".")[-1] == "SPACECRAFT_ID"), ""
    )
    if spacecraft in THERMAL_NATIVE_RESOLUTION_M:
        return _native(spacecraft, "the raster's metadata says " + spacecraft)
    mtl = _mtl_beside(path)
    if mtl is not None:
        spacecraft = read_mtl(mtl).get("SPACECRAFT_ID", "")
        if spacecraft in THERMAL_NATIVE_RESOLUTION_M:
            return _native(spacecraft, f"{mtl.name} says {spacecraft}")
    return None


def _native(spacecraft: str, how: str) -> tuple[float, str]:
    metres = THERMAL_NATIVE_RESOLUTION_M[spacecraft]
    return float(metres), f"{THERMAL_SENSOR_NAMES[spacecraft]} senses {metres} m; {how}"


def _mtl_beside(path: Path) -> Path | None:
    """The MTL text file in ``path``'s folder whose scene prefix starts ``path``'s name, if one."""
    try:
        candidates = sorted(path.parent.glob("*MTL.txt")) + sorted(path.parent.glob("*MTL.TXT"))
    except OSError:
        return None
    name = path.name.upper()
    for mtl in candidates:
        prefix = mtl.name.upper()[: -len("MTL.TXT")].rstrip("_")
        if name.startswith(prefix):
            return mtl
    return None

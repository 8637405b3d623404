"""Landsat products whose bands are already physical quantities, as training scenes.

Level-2 products store surface reflectance and a temperature as scaled integers: USGS
Collection 2 Level-2 (``SR_B*``, ``ST_B10``/``ST_B6``, ``QA_PIXEL``), the older ESPA
surface reflectance products (``sr_band*`` x 10000, ``toa_band6`` brightness temperature in
0.1 K, ``cfmask``; for Landsat 8 ``bt_band10`` and the ``pixel_qa`` bit flags) and LEDAPS
stacks (reflectance x 10000, band 6 temperature in degrees Celsius x 100, an Fmask band).
The bands may be separate files or bands of one stack; the scalings come from the product,
so no MTL is needed. The thermal band keeps the sensor's native pixel (60-120 m), resampled
by USGS onto the 30 m grid, as in Level-1 scenes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.guidance import normalized_difference
from engine.landsat import REFLECTIVE_BANDS, THERMAL_NATIVE_RESOLUTION_M
from engine.raster import gdal_session, read_band_values

from .scenes import BandInfo, Scene


@dataclass(frozen=True)
class Level2Product:
    """How a product stores reflectance and temperature, and what its quality band means."""

    reflectance_scale: float
    reflectance_offset: float
    thermal_scale: float
    thermal_offset_k: float
    qa_kind: str
    nodata: float | None
    thermal_quantity: str
    reflectance_quantity: str


ESPA = Level2Product(
    reflectance_scale=1e-4,
    reflectance_offset=0.0,
    thermal_scale=0.1,
    thermal_offset_k=0.0,
    qa_kind="fmask",
    nodata=-9999.0,
    thermal_quantity="ESPA (LEDAPS) band 6 brightness temperature",
    reflectance_quantity="surface reflectance",
)
PRODUCTS = {
    "collection2": Level2Product(
        reflectance_scale=2.75e-5,
        reflectance_offset=-0.2,
        thermal_scale=0.00341802,
        thermal_offset_k=149.0,
        qa_kind="qa_pixel",
        nodata=0.0,
        thermal_quantity="Collection 2 Level-2 surface temperature",
        reflectance_quantity="surface reflectance",
    ),
    "espa": ESPA,
    "espa_l8": replace(
        ESPA, qa_kind="pixel_qa", thermal_quantity="ESPA (LaSRC) band 10 brightness temperature"
    ),
    "ledaps_celsius": Level2Product(
        reflectance_scale=1e-4,
        reflectance_offset=0.0,
        thermal_scale=0.01,
        thermal_offset_k=273.15,
        qa_kind="fmask",
        nodata=-9999.0,
        thermal_quantity="LEDAPS band 6 brightness temperature",
        reflectance_quantity="surface reflectance",
    ),
}
# QA_PIXEL bits: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow.
QA_PIXEL_INVALID_BITS = 0b11111
# ESPA pixel_qa bits: 0 fill, 3 cloud shadow, 5 cloud (1 clear, 2 water, 4 snow are kept).
ESPA_PIXEL_QA_INVALID_BITS = 0b101001
# Fmask classes: 0 clear land, 1 clear water, 2 cloud shadow, 3 snow, 4 cloud, 255 fill.
FMASK_INVALID = (2, 4, 255)
QA_KINDS = ("qa_pixel", "pixel_qa", "fmask")

LEVEL2_GUIDANCE_BANDS: tuple[BandInfo, ...] = (
    *(
        BandInfo(name, "surface reflectance (unitless)", f"{name} surface reflectance")
        for name in REFLECTIVE_BANDS
    ),
    BandInfo("ndvi", "index (unitless)", "(nir - red) / (nir + red) of surface reflectance"),
    BandInfo("ndwi", "index (unitless)", "(green - nir) / (green + nir) of surface reflectance (McFeeters)"),
)

BandRef = str | int


@dataclass(frozen=True)
class Level2Options:
    """Where a Level-2 scene's bands are and how to read them.

    ``reflective`` lists blue, green, red, nir, swir1 and swir2, ``thermal`` the temperature
    and ``qa`` the quality band: a string is a file in ``folder`` (its first band), an integer
    a band of the ``stack`` file. ``saturated`` is a stored reflectance value that marks a
    saturated pixel (LEDAPS writes 16000); ``qa_dilate_px`` grows the cloud mask;
    ``quantisation_k`` overrides the temperature step estimated from the data."""

    folder: str
    sensor: str
    product: str
    reflective: tuple[BandRef, ...]
    thermal: BandRef
    qa: BandRef | None = None
    stack: str | None = None
    saturated: float | None = None
    qa_dilate_px: int = 0
    crop: tuple[int, int, int, int] | None = None
    quantisation_k: float | None = None
    landscape: str = ""


def qa_invalid(qa: np.ndarray, kind: str, dilate_px: int) -> np.ndarray:
    """True where the quality band marks fill, cloud, cirrus or cloud shadow (``qa_pixel``:
    Collection 2 QA_PIXEL bits 0-4; ``pixel_qa``: ESPA bits 0, 3 and 5; ``fmask``: cloud shadow,
    cloud or fill)."""
    if kind not in QA_KINDS:
        raise ValueError(f"qa kind must be one of {', '.join(QA_KINDS)}, got {kind!r}")
    finite = np.isfinite(qa)
    bits = np.where(finite, qa, 0).astype(np.int64)
    if kind == "fmask":
        flagged = np.isin(bits, FMASK_INVALID)
    else:
        flagged = (bits & (QA_PIXEL_INVALID_BITS if kind == "qa_pixel" else ESPA_PIXEL_QA_INVALID_BITS)) != 0
    invalid = ~finite | flagged
    for _ in range(dilate_px):
        grown = invalid.copy()
        grown[1:] |= invalid[:-1]
        grown[:-1] |= invalid[1:]
        grown[:, 1:] |= invalid[:, :-1]
        grown[:, :-1] |= invalid[:, 1:]
        invalid = grown
    return invalid


def level_step(values: np.ndarray) -> float | None:
    """The temperature step of a quantised band: the median gap between its distinct values."""
    levels = np.unique(values[np.isfinite(values)])
    if levels.size < 2:
        return None
    return round(float(np.median(np.diff(levels))), 6)


def read_level2_scene(options: Level2Options, name: str = "") -> Scene:
    """Surface reflectance (six bands plus NDVI and NDWI) and temperature in Kelvin on one grid;
    NaN where a band is fill or saturated or the quality band is not clear."""
    if options.product not in PRODUCTS:
        raise ValueError(f"Level-2 product must be one of {', '.join(PRODUCTS)}, got {options.product!r}")
    if options.sensor not in THERMAL_NATIVE_RESOLUTION_M:
        raise ValueError(
            f"Level-2 sensor must be one of {', '.join(THERMAL_NATIVE_RESOLUTION_M)}, got {options.sensor!r}"
        )
    if len(options.reflective) != len(REFLECTIVE_BANDS):
        raise ValueError(
            f"Level-2 scene {name}: give {len(REFLECTIVE_BANDS)} reflective bands ({REFLECTIVE_BANDS})"
        )
    product = PRODUCTS[options.product]
    folder = Path(options.folder)

    def read(ref: BandRef, fill: bool = True) -> tuple[np.ndarray, object]:
        if isinstance(ref, int):
            if options.stack is None:
                raise ValueError(
                    f"Level-2 scene {name}: band {ref} is a stack band but no 'stack' file is given"
                )
            path, index = folder / options.stack, ref
        else:
            path, index = folder / ref, 1
        with gdal_session():
            values, grid = read_band_values(path, index)
        if fill and product.nodata is not None:
            values[values == np.float32(product.nodata)] = np.nan
        if options.crop is not None:
            row0, row1, col0, col1 = options.crop
            values = values[row0:row1, col0:col1]
        return values, grid

    stored_thermal, grid = read(options.thermal)
    lst_kelvin = (stored_thermal * product.thermal_scale + product.thermal_offset_k).astype(np.float32)
    reflectance = []
    for band, ref in zip(REFLECTIVE_BANDS, options.reflective):
        stored, band_grid = read(ref)
        if band_grid != grid:
            raise ValueError(f"Level-2 scene {name}: the {band} band is not on the grid of the thermal band")
        if options.saturated is not None:
            stored[stored == np.float32(options.saturated)] = np.nan
        reflectance.append(
            (stored * product.reflectance_scale + product.reflectance_offset).astype(np.float32)
        )
    if options.qa is not None:
        qa, _ = read(options.qa, fill=False)
        lst_kelvin[qa_invalid(qa, product.qa_kind, options.qa_dilate_px)] = np.nan
    _, green, red, nir, _, _ = reflectance
    guidance = np.stack([*reflectance, normalized_difference(nir, red), normalized_difference(green, nir)])
    quantisation = options.quantisation_k or level_step(lst_kelvin)
    native_m = THERMAL_NATIVE_RESOLUTION_M[options.sensor]
    step = f"{quantisation:.3f} K per level" if quantisation else "unknown quantisation"
    return Scene(
        name=name or folder.name,
        lst_kelvin=lst_kelvin,
        guidance=guidance,
        bands=LEVEL2_GUIDANCE_BANDS,
        grid=grid,
        notes=f"{options.sensor} {product.thermal_quantity} (sensed at {native_m} m, delivered on the "
        f"{grid.pixel_width:g} m grid, {step}); {product.reflectance_quantity} guidance",
        sensor=options.sensor,
        landscape=options.landscape,
        pixel_size_m=float(grid.pixel_width),
        native_pixel_m=float(native_m),
        quantisation_k=quantisation,
    )

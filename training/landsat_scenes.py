"""Landsat Level-1 scenes (GeoTIFF bands + MTL) as training scenes.

The thermal band becomes at-sensor brightness temperature in Kelvin; the reflective bands
become top-of-atmosphere (TOA) reflectance, and two indices are added. Level-1 thermal
bands are sensed at 60-120 m and delivered resampled to 30 m, so the 30 m "fine" LST of
such a scene is itself smooth: the scene records its native thermal pixel and the
thermal quantisation step so that evaluations can say what their truth is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.grids import Grid, shared_corner_scale
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
from engine.raster import gdal_session, read_band_values

from .scenes import BandInfo, Scene

GUIDANCE_BANDS: tuple[BandInfo, ...] = (
    *(
        BandInfo(name, "TOA reflectance (unitless)", f"{name} top-of-atmosphere reflectance")
        for name in REFLECTIVE_BANDS
    ),
    BandInfo("ndvi", "index (unitless)", "(nir - red) / (nir + red) of TOA reflectance"),
    BandInfo("ndwi", "index (unitless)", "(green - nir) / (green + nir) of TOA reflectance (McFeeters)"),
)
# Pre-Collection and Collection 1 BQA: 2-bit confidences, 0 = not determined, 2 = medium, 3 = high.
BQA_CLOUD_CONFIDENCE_SHIFT = 5
BQA_CIRRUS_CONFIDENCE_SHIFT = 11
PRE_COLLECTION_CLOUD_SHIFT = 14
PRE_COLLECTION_CIRRUS_SHIFT = 12


@dataclass(frozen=True)
class LandsatOptions:
    """How to read a Level-1 folder whose files or georeferencing deviate from the MTL.

    ``band_pattern`` names the band files (``"B{band}.TIF"``) when they are not the MTL's
    FILE_NAME_BAND_*, and ``band_files`` names single bands (``{"6_VCID_1": "b61.tif"}``);
    ``stack`` is one file holding several bands, ``stack_bands`` which of its bands (from 1) each
    Landsat band is (``{"4": 3, "10": 7}``);
    ``metadata`` gives MTL keys the MTL lacks (K1/K2, gains, SUN_ELEVATION), or all of them
    for a scene without MTL (then read from ``folder``); ``nodata`` is a DN that marks fill; ``pixel_size_m`` stands in for a
    grid without georeferencing; ``qa`` is a quality band whose medium/high cloud or cirrus
    confidence masks the LST (``qa_kind`` "pre_collection" or "collection1"), grown by
    ``qa_dilate_px`` for the thermal/reflective parallax; ``crop`` is (row0, row1, col0, col1) of
    the reflective grid. A thermal band delivered on an integer multiple of the reflective grid
    (e.g. 57 m beside 28.5 m) is repeated onto it."""

    band_pattern: str | None = None
    band_files: dict[str, str] | None = None
    stack: str | None = None
    stack_bands: dict[str, int] | None = None
    metadata: dict[str, str] | None = None
    folder: str | None = None
    nodata: float | None = None
    pixel_size_m: float | None = None
    qa: str | None = None
    qa_kind: str = "pre_collection"
    qa_dilate_px: int = 0
    crop: tuple[int, int, int, int] | None = None
    landscape: str = ""


def thermal_quantisation_kelvin(dn: np.ndarray, mtl: dict[str, str], band: str) -> float:
    """The brightness temperature step of one DN at the scene's median thermal DN."""
    median = float(np.nanmedian(dn))
    steps = brightness_temperature_kelvin(np.array([median, median + 1.0]), mtl, band)
    return float(steps[1] - steps[0])


def cloud_mask(qa: np.ndarray, kind: str, dilate_px: int) -> np.ndarray:
    """True where the quality band gives medium or high cloud or cirrus confidence."""
    shifts = {
        "pre_collection": (PRE_COLLECTION_CLOUD_SHIFT, PRE_COLLECTION_CIRRUS_SHIFT),
        "collection1": (BQA_CLOUD_CONFIDENCE_SHIFT, BQA_CIRRUS_CONFIDENCE_SHIFT),
    }
    if kind not in shifts:
        raise ValueError(f"qa_kind must be one of {sorted(shifts)}, got {kind!r}")
    bits = np.nan_to_num(qa, nan=0.0).astype(np.uint16)
    cloudy = np.zeros(bits.shape, bool)
    for shift in shifts[kind]:
        cloudy |= ((bits >> shift) & 0b11) >= 2
    for _ in range(dilate_px):
        grown = cloudy.copy()
        grown[1:] |= cloudy[:-1]
        grown[:-1] |= cloudy[1:]
        grown[:, 1:] |= cloudy[:, :-1]
        grown[:, :-1] |= cloudy[:, 1:]
        cloudy = grown
    return cloudy


def onto_fine_grid(values: np.ndarray, coarse: Grid, fine: Grid, source: str) -> np.ndarray:
    """A band delivered on an integer multiple of the reflective grid (sharing its corner), each
    pixel repeated onto the fine grid; NaN where it does not reach."""
    scale = shared_corner_scale(coarse, fine)
    if scale is None:
        raise ValueError(
            f"{source} is neither on the grid of the reflective bands nor on an integer multiple of it "
            "sharing its upper-left corner; warp it onto the reflective grid first"
        )
    repeated = np.repeat(np.repeat(values, scale, axis=0), scale, axis=1)
    rows, cols = min(fine.height, repeated.shape[0]), min(fine.width, repeated.shape[1])
    out = np.full((fine.height, fine.width), np.nan, np.float32)
    out[:rows, :cols] = repeated[:rows, :cols]
    return out


def read_landsat_scene(mtl_path: str | Path | None, options: LandsatOptions = LandsatOptions()) -> Scene:
    """A Landsat 4-9 Level-1 scene from its MTL file, the band GeoTIFFs lying beside it
    (or from ``options.folder`` and ``options.metadata`` alone).

    LST is brightness temperature (no emissivity correction): the models learn a spatial
    relation, and an emissivity offset mostly shifts the mean."""
    if mtl_path is None:
        if options.folder is None or not options.metadata:
            raise ValueError("a Landsat scene without MTL needs options.folder and options.metadata")
        mtl_path = Path(options.folder) / "MTL"
        mtl = {}
    else:
        mtl_path = Path(mtl_path)
        if not mtl_path.is_file():
            raise FileNotFoundError(f"Landsat MTL file {mtl_path} not found")
        mtl = read_mtl(mtl_path)
    mtl = {**mtl, **{key: str(value) for key, value in (options.metadata or {}).items()}}
    sensor = sensor_of(mtl, mtl_path.name)
    reflective, thermal = SENSOR_BANDS[sensor]

    def band_source(band: str) -> tuple[Path, int]:
        if options.stack_bands and band in options.stack_bands:
            if options.stack is None:
                raise ValueError(
                    f"{mtl_path.name}: stack_bands names band {band} but no 'stack' file is given"
                )
            return mtl_path.parent / options.stack, options.stack_bands[band]
        if options.band_files and band in options.band_files:
            return mtl_path.parent / options.band_files[band], 1
        if options.band_pattern is None:
            return band_file(mtl_path, mtl, band), 1
        return mtl_path.parent / options.band_pattern.format(band=band), 1

    def read(path: Path, index: int = 1) -> tuple[np.ndarray, Grid]:
        with gdal_session():
            dn, grid = read_band_values(path, index)
        if options.nodata is not None:
            dn[dn == np.float32(options.nodata)] = np.nan
        return dn, grid

    def cropped(values: np.ndarray) -> np.ndarray:
        if options.crop is None:
            return values
        row0, row1, col0, col1 = options.crop
        return values[row0:row1, col0:col1]

    reflectance_dn, grid = [], None
    for band in reflective:
        dn, band_grid = read(*band_source(band))
        if grid is not None and band_grid != grid:
            raise ValueError(f"{mtl_path.name}: band {band} is not on the grid of band {reflective[0]}")
        reflectance_dn.append(dn)
        grid = band_grid
    thermal_dn, thermal_grid = read(*band_source(thermal))
    if thermal_grid != grid:
        thermal_dn = onto_fine_grid(
            thermal_dn, thermal_grid, grid, f"{mtl_path.name}: thermal band {thermal}"
        )
    lst_kelvin = cropped(brightness_temperature_kelvin(thermal_dn, mtl, thermal))
    if options.qa is not None:
        qa, _ = read(mtl_path.parent / options.qa)
        lst_kelvin[cloud_mask(cropped(qa), options.qa_kind, options.qa_dilate_px)] = np.nan
    reflectance = [cropped(toa_reflectance(dn, mtl, band)) for dn, band in zip(reflectance_dn, reflective)]
    blue, green, red, nir, swir1, swir2 = reflectance
    guidance = np.stack([*reflectance, normalized_difference(nir, red), normalized_difference(green, nir)])
    native_m = THERMAL_NATIVE_RESOLUTION_M[sensor]
    pixel_m = options.pixel_size_m or grid.pixel_width
    quantisation = thermal_quantisation_kelvin(thermal_dn, mtl, thermal)
    return Scene(
        name=mtl_path.stem.removesuffix("_MTL"),
        lst_kelvin=lst_kelvin,
        guidance=guidance,
        bands=GUIDANCE_BANDS,
        grid=grid,
        notes=f"{sensor} Level-1; brightness temperature of band {thermal} "
        f"(sensed at {native_m} m, delivered on the {pixel_m:g} m grid, {quantisation:.3f} K per DN); TOA "
        "reflectance guidance",
        sensor=sensor,
        landscape=options.landscape,
        pixel_size_m=float(pixel_m),
        native_pixel_m=float(native_m),
        quantisation_k=quantisation,
    )

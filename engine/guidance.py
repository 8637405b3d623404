"""Guidance bands from Landsat surface reflectance (Collection 2 Level-2) or
top-of-atmosphere reflectance (Level-1 with its MTL file), and a DEM.

A model card lists its guidance bands by name, in order; this module knows how to compute
each name (reflectances, normalised-difference indices, elevation) from arrays: pure numpy.
`engine.guidance_stack` reads the input rasters and writes the stack in that order, one band per
name. Reflectance is unitless (0-1), indices are unitless and bounded to -1..1 (`engine.indices`:
negative surface reflectance over water and shadow would push them beyond), elevation is in metres.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bands import normalise_band_name
from .errors import InputError
from .indices import IndexBounds, normalized_difference
from .landsat import read_mtl, reflective_band_files, toa_reflectance

# Collection 2 Level-2 surface reflectance: reflectance = DN * scale + offset, DN 0 is fill.
C2_SR_SCALE = 0.0000275
C2_SR_OFFSET = -0.2
C2_SR_FILL = 0
SR_ENCODINGS = ("c2l2_dn", "reflectance")
# Level-1 digital numbers converted to top-of-atmosphere reflectance with the scene's MTL.
L1_TOA_ENCODING = "landsat_l1_toa"
ENCODINGS = (*SR_ENCODINGS, L1_TOA_ENCODING)

REFLECTANCE = ("deepblue", "blue", "green", "red", "nir", "swir1", "swir2")
# Which SR band file holds each reflectance, per sensor family.
LANDSAT_89_OLI_BANDS = {
    "deepblue": "SR_B1",
    "blue": "SR_B2",
    "green": "SR_B3",
    "red": "SR_B4",
    "nir": "SR_B5",
    "swir1": "SR_B6",
    "swir2": "SR_B7",
}
LANDSAT_457_TM_ETM_BANDS = {
    "blue": "SR_B1",
    "green": "SR_B2",
    "red": "SR_B3",
    "nir": "SR_B4",
    "swir1": "SR_B5",
    "swir2": "SR_B7",
}


@dataclass(frozen=True)
class GuidanceBand:
    """How one named guidance band is made: from which inputs, in which units."""

    name: str
    units: str
    description: str
    inputs: tuple[str, ...]
    difference_of: tuple[str, str] | None = None


def _reflectance_band(name: str, what: str) -> GuidanceBand:
    return GuidanceBand(name, "reflectance", f"{what} surface reflectance", (name,))


def _index_band(name: str, what: str, a: str, b: str) -> GuidanceBand:
    return GuidanceBand(name, "index", f"{what}, ({a} - {b}) / ({a} + {b}) bounded to -1..1", (a, b), (a, b))


GUIDANCE_BANDS: dict[str, GuidanceBand] = {
    band.name: band
    for band in (
        _reflectance_band("deepblue", "Coastal/aerosol (0.43-0.45 um)"),
        _reflectance_band("blue", "Blue"),
        _reflectance_band("green", "Green"),
        _reflectance_band("red", "Red"),
        _reflectance_band("nir", "Near infrared"),
        _reflectance_band("swir1", "Shortwave infrared 1 (1.6 um)"),
        _reflectance_band("swir2", "Shortwave infrared 2 (2.2 um)"),
        _index_band("ndvi", "Normalised difference vegetation index", "nir", "red"),
        _index_band("ndwi", "Normalised difference water index (McFeeters)", "green", "nir"),
        _index_band("mndwi", "Modified normalised difference water index", "green", "swir1"),
        _index_band("ndbi", "Normalised difference built-up index", "swir1", "nir"),
        _index_band("ndmi", "Normalised difference moisture index", "nir", "swir1"),
        GuidanceBand("dem", "m", "Elevation above sea level", ("dem",)),
    )
}


def guidance_band(name: str) -> GuidanceBand:
    """The recipe of a guidance band by name (aliases such as ``coastal`` or ``elevation`` accepted)."""
    key = normalise_band_name(name)
    if key not in GUIDANCE_BANDS:
        raise InputError(
            f"Guidance band {name!r} cannot be built from Landsat surface reflectance and a DEM "
            f"(known: {', '.join(GUIDANCE_BANDS)}); prepare that band yourself and stack it in the "
            f"order the model card lists."
        )
    return GUIDANCE_BANDS[key]


def required_inputs(band_names: Sequence[str]) -> tuple[str, ...]:
    """Reflectances (and ``dem``) needed for ``band_names``, in a stable order."""
    needed = {source for name in band_names for source in guidance_band(name).inputs}
    return tuple(name for name in (*REFLECTANCE, "dem") if name in needed)


def unit_family(units: str) -> str:
    """``reflectance``, ``index`` or ``m`` for the ways cards spell units, else the text itself."""
    text = units.strip().lower()
    if "reflectance" in text:
        return "reflectance"
    if "index" in text:
        return "index"
    if text.split(" ")[0] in ("m", "metre", "metres", "meter", "meters"):
        return "m"
    return text


def check_units(band_names: Sequence[str], units: Sequence[str]) -> None:
    """Refuse a model whose card expects a band in units this module does not produce."""
    for name, unit in zip(band_names, units):
        band = guidance_band(name)
        if unit_family(unit) != band.units:
            raise InputError(
                f"The model expects guidance band {name!r} in {unit!r}, but it is built in "
                f"{band.units!r}; prepare that band yourself, or use a model whose card says {band.units!r}."
            )


def sr_to_reflectance(
    values: np.ndarray, encoding: str = "c2l2_dn", nodata: float | None = None
) -> np.ndarray:
    """Surface reflectance (float32, NaN where missing) from C2 L2 digital numbers or
    from reflectance already scaled to 0-1."""
    if encoding == "c2l2_dn":
        reflectance = values.astype(np.float32) * np.float32(C2_SR_SCALE) + np.float32(C2_SR_OFFSET)
        missing = values == C2_SR_FILL
    elif encoding == "reflectance":
        reflectance = values.astype(np.float32)
        missing = ~np.isfinite(reflectance)
    else:
        raise InputError(
            f"Unknown surface reflectance encoding {encoding!r}; use one of {', '.join(SR_ENCODINGS)}."
        )
    if nodata is not None and np.isfinite(nodata):
        missing |= values == nodata
    return np.where(missing, np.float32(np.nan), reflectance)


def compute_guidance(band_names: Sequence[str], inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Stack (C, H, W) float32 of the named bands from reflectances and ``dem`` (metres)."""
    layers = []
    for name in band_names:
        band = guidance_band(name)
        missing = [source for source in band.inputs if source not in inputs]
        if missing:
            raise InputError(
                f"Guidance band {name!r} needs the {' and '.join(missing)} input(s), which were not given."
            )
        if band.difference_of is not None:
            layers.append(normalized_difference(inputs[band.difference_of[0]], inputs[band.difference_of[1]]))
        else:
            layers.append(inputs[band.inputs[0]].astype(np.float32))
    return np.stack(layers)


def index_bounds(band_names: Sequence[str]) -> dict[str, IndexBounds]:
    """A counter per index among ``band_names``, for `count_index_bounds`."""
    return {name: IndexBounds(name) for name in band_names if guidance_band(name).difference_of is not None}


def count_index_bounds(bounds: Mapping[str, IndexBounds], inputs: Mapping[str, np.ndarray]) -> None:
    """Add the pixels of ``inputs`` (reflectances, NaN where missing) whose indices the bounds change."""
    for name, counter in bounds.items():
        a, b = guidance_band(name).difference_of
        counter.add(inputs[a], inputs[b])


def reflectance_converter(
    encoding: str, mtl_path: str | Path | None
) -> Callable[[str, np.ndarray, float | None], np.ndarray]:
    """(reflectance name, raw values, nodata) -> reflectance, for ``encoding``."""
    if encoding != L1_TOA_ENCODING:
        return lambda name, values, nodata: sr_to_reflectance(values, encoding, nodata)
    if mtl_path is None or not Path(mtl_path).is_file():
        raise InputError(
            f"Level-1 digital numbers need the scene's MTL metadata file (*_MTL.txt); {mtl_path!r} was given."
        )
    mtl = read_mtl(mtl_path)
    suffixes = {name: suffix for name, (_, suffix) in reflective_band_files(mtl_path).items()}

    def convert(name: str, values: np.ndarray, nodata: float | None) -> np.ndarray:
        missing = values == 0
        if nodata is not None and np.isfinite(nodata):
            missing |= values == nodata
        return np.where(
            missing, np.float32(np.nan), toa_reflectance(values.astype(np.float32), mtl, suffixes[name])
        )

    return convert

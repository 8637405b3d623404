"""Guidance values against what a model expects: recognise scaled reflectance, refuse the rest.

A model card names each guidance band's units ("TOA reflectance (unitless)", "index (unitless)").
Reflectance delivered as integers is common: Landsat Collection 2 Level-2 surface reflectance
(reflectance = DN x 0.0000275 - 0.2) and products scaled x10000 (Sentinel-2, MODIS, HLS). Such
bands are recognised from their values and converted; other values outside the expected range
are refused with the fix, because the network would turn them into nonsense temperatures.

An index the user computed from surface reflectance leaves -1..1 wherever a reflectance is negative
(water, shadow; by hundreds where a + b is near zero), while its other pixels stay inside. An index
stored scaled (x100, x10000, 0-255) keeps inside -1..1 only its values near 0, and a band that is
no index (elevation, temperature) none. So an index band is accepted, and clipped to -1..1 when it
is read, when at least ``MIN_INDEX_IN_RANGE_SHARE`` of its values lie in -1..1 and it is not all
integers beyond that range; otherwise it is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputError

# Reflectance a sensor can record, with room for bright clouds and snow at TOA and for
# atmospheric-correction undershoot at SR.
REFLECTANCE_RANGE = (-0.5, 2.0)
INDEX_RANGE = (-1.0001, 1.0001)
# Negative NIR covers 6 % of a volcanic-lake Collection 2 scene and 59 % of a coastal one: their NDVI and
# NDWI keep 41 % or more of their values in -1..1. An index scaled x100 keeps there only |index| < 0.01.
MIN_INDEX_IN_RANGE_SHARE = 0.25
C2_SR_SCALE, C2_SR_OFFSET = 0.0000275, -0.2
# Collection 2 SR's documented valid DN range (reflectance -0.0 to 1.0).
C2_SR_VALID_DN = (7273, 43636)
C2_SR_NAME_HINTS = ("_SR_B", "SR_B")
X10000_SCALE = 1e-4
# Share of a band's sample that may lie outside the range (saturated or odd pixels).
OUT_OF_RANGE_TOLERANCE = 0.01


@dataclass(frozen=True)
class ReflectanceEncoding:
    """How stored values map to reflectance: reflectance = value * scale + offset."""

    name: str
    scale: float
    offset: float
    reason: str

    def to_reflectance(self, values: np.ndarray) -> np.ndarray:
        if self.scale == 1.0 and self.offset == 0.0:
            return values
        return (values.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)).astype(
            np.float32
        )


PLAIN = ReflectanceEncoding("reflectance", 1.0, 0.0, "values already in the reflectance range")


def band_kind(units: str) -> str | None:
    """ "reflectance", "index" or None (unchecked) from a card's units text."""
    lowered = units.lower()
    if "reflectance" in lowered:
        return "reflectance"
    if "index" in lowered:
        return "index"
    return None


def share_outside(values: np.ndarray, low: float, high: float) -> float:
    """Share of finite ``values`` outside [low, high] (0 for no values)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0
    return float(np.mean((finite < low) | (finite > high)))


def in_range(values: np.ndarray, low: float, high: float) -> bool:
    return share_outside(values, low, high) <= OUT_OF_RANGE_TOLERANCE


def reflectance_encoding(values: np.ndarray, hints: Sequence[str] = ()) -> ReflectanceEncoding | None:
    """The encoding of a sample of reflectance bands' valid values (pooled), or None if none fits.

    Values already in the reflectance range are plain reflectance. Integers beyond it are Landsat
    Collection 2 SR when a file or band name says SR_B, or when nearly all lie in C2's valid DN range
    (x10000 reflectance that high everywhere would be snow or cloud over the whole scene); otherwise
    they are x10000 reflectance when that scaling puts them in range.
    """
    finite = values[np.isfinite(values)].astype(np.float64)
    if finite.size == 0 or in_range(finite, *REFLECTANCE_RANGE):
        return PLAIN
    if not np.all(finite == np.round(finite)):
        return None
    c2 = ReflectanceEncoding(
        "landsat_c2_sr",
        C2_SR_SCALE,
        C2_SR_OFFSET,
        "Landsat Collection 2 Level-2 surface reflectance integers (DN x 0.0000275 - 0.2)",
    )
    x10000 = ReflectanceEncoding("x10000", X10000_SCALE, 0.0, "reflectance scaled x10000 (DN x 0.0001)")
    named_c2 = any(hint in text.upper() for text in hints for hint in C2_SR_NAME_HINTS)
    in_c2_range = in_range(finite, *C2_SR_VALID_DN)
    if (named_c2 or in_c2_range) and in_range(c2.to_reflectance(finite), *REFLECTANCE_RANGE):
        return ReflectanceEncoding(
            c2.name, c2.scale, c2.offset, c2.reason + (" by name" if named_c2 else " by value range")
        )
    if in_range(x10000.to_reflectance(finite), *REFLECTANCE_RANGE):
        return x10000
    return None


def _value_span(values: np.ndarray) -> str:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "no valid values"
    low, high = np.percentile(finite, (1, 99))
    return f"values {low:.4g} to {high:.4g} (1st-99th percentile)"


def check_guidance_values(
    bands: Sequence[tuple[str, str, np.ndarray]],
    layer: str,
    model: str,
    hints: Sequence[str] = (),
) -> ReflectanceEncoding:
    """The reflectance encoding of a model's guidance bands, or an InputError naming the band and the fix.

    ``bands`` are (band name, card units, sample of valid raw values) for each band the model reads
    directly; indices derived by the engine are not listed (their reflectance bands are). All
    reflectance bands are taken to share one encoding (one product), which is checked band by band.
    """
    reflectance = [(name, values) for name, units, values in bands if band_kind(units) == "reflectance"]
    pooled = np.concatenate([v.ravel() for _, v in reflectance]) if reflectance else np.zeros(0)
    encoding = reflectance_encoding(pooled, hints)
    if encoding is None:
        encoding = PLAIN
    for name, units, values in bands:
        kind = band_kind(units)
        if kind == "reflectance":
            converted = encoding.to_reflectance(values)
            if not in_range(converted, *REFLECTANCE_RANGE):
                scaled = "" if encoding is PLAIN else f" after reading them as {encoding.reason}"
                raise InputError(
                    f"{layer}: guidance band {name!r} has {_value_span(values)}{scaled}, outside the "
                    f"{REFLECTANCE_RANGE[0]:g} to {REFLECTANCE_RANGE[1]:g} that {units} can take, so {model} "
                    "would produce meaningless temperatures. Convert the band to reflectance (scale and "
                    "offset from the product's metadata), or check that the bands are named in the right "
                    "order; 'Build guidance stack' makes a correct stack from Landsat."
                )
        elif kind == "index":
            problem = index_problem(values)
            if problem:
                raise InputError(
                    f"{layer}: guidance band {name!r} has {_value_span(values)}, but an {units} lies in -1 to 1 "
                    f"({problem}); give the index itself (not scaled), or leave the band out so that {model} "
                    "derives it from the reflectance bands; 'Build guidance stack' writes it bounded to -1..1."
                )
    return encoding


def index_problem(values: np.ndarray) -> str | None:
    """Why valid ``values`` cannot be an index whose excess beyond -1..1 comes from negative reflectance, or
    None when they can (they are then clipped when read)."""
    finite = values[np.isfinite(values)].astype(np.float64)
    if finite.size == 0 or in_range(finite, *INDEX_RANGE):
        return None
    inside = 1.0 - share_outside(finite, *INDEX_RANGE)
    if inside < MIN_INDEX_IN_RANGE_SHARE:
        return (
            f"only {100 * inside:.3g} % of its values do, fewer than the {100 * MIN_INDEX_IN_RANGE_SHARE:g} % "
            "that negative reflectance over water leaves; it looks scaled or is not an index"
        )
    if np.all(finite == np.round(finite)):
        return "its values are whole numbers beyond -1 to 1, as in an index stored scaled"
    return None

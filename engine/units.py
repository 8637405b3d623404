"""LST units: convert what users bring (Kelvin, Celsius, sensor digital numbers) to Kelvin.

`detect_lst_units` decides from metadata first (band unit, product names) and from the
value range second, and always says why, so a wrong guess is visible in the log.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .landsat import TM_K1_K2

LST_UNITS = ("auto", "kelvin", "celsius", "landsat_c2_st_dn", "modis_lst_dn", "landsat5_tm_b6_dn")
OUTPUT_UNITS = ("kelvin", "celsius")
# What the QGIS dialog's LST units dropdown shows; errors name units by these labels.
UNIT_LABELS = {
    "auto": "Auto-detect (from the product name, the band's unit, then the value range)",
    "kelvin": "Kelvin",
    "celsius": "Celsius",
    "landsat_c2_st_dn": "Landsat 8/9 Collection 2 Level-2 ST_B10 (DN x 0.00341802 + 149)",
    "modis_lst_dn": "MODIS MOD11/MOD21, VIIRS VNP21 or ECOSTRESS LST (DN x 0.02)",
    "landsat5_tm_b6_dn": "Landsat 4/5 TM band 6 digital numbers (brightness temperature)",
}

# Physically possible LST after conversion: the floor of the Landsat Collection 2 ST encoding
# (DN 1 is 149 K), up to hot targets such as active lava at 30 m (Landsat ST saturates near 373 K).
PLAUSIBLE_MIN_KELVIN = 149.0
PLAUSIBLE_MAX_KELVIN = 400.0
CELSIUS_OFFSET = 273.15

# Landsat 8/9 Collection 2 Level 2 surface temperature (ST_B10) and MODIS MOD11/MYD11 LST.
LANDSAT_C2_ST_MULT = 0.00341802
LANDSAT_C2_ST_ADD = 149.0
MODIS_LST_MULT = 0.02
# The median Kelvin that integer values of unknown units must give to be read as one of those
# products. No median fits both: MODIS numbers read as Landsat ST give 187-209 K, Landsat ST
# numbers read as MODIS over 415 K.
DN_MEDIAN_MIN_KELVIN = 220.0
DN_MEDIAN_MAX_KELVIN = 350.0
# Kelvin x 100 in unsigned integers, a common export; without a GDAL scale tag, such values between
# 22000 and 35000 also fit Landsat ST numbers (224-269 K), so neither reading is guessed.
KELVIN_X100_SCALE = 0.01

# Products whose LST is stored as unsigned integers, Kelvin = DN x 0.02 with 0 as fill, by the names their
# files, subdatasets and bands carry (HDF-EOS subdatasets, AppEEARS and Earth Engine exports).
DN_002_PRODUCTS = (
    (r"M[OY]D11|M[OY]D21|LST_(DAY|NIGHT)_1KM|LST_(DAY|NIGHT)\b", "MODIS LST"),
    (r"VNP21|VJ[12]21", "VIIRS LST"),
    (r"ECO2LSTE|ECOSTRESS_L2_LSTE|ECOV00\d_L2T?_LSTE", "ECOSTRESS L2 LST"),
    (r"LST_1KM", "MODIS or VIIRS LST"),
)
# Sentinel-3 SLSTR Level-2 LST (netCDF LST_in.nc of S3A/S3B_SL_2_LST products), in Kelvin once unpacked.
SLSTR_LST = r"SL_2_LST|LST_IN\.NC"

# Landsat 5 TM band 6 radiance gains, used when the raster carries no MTL gains (those of
# the bundled sample scene); the thermal constants are engine.landsat's.
TM_B6_RADIANCE_MULT = 0.055
TM_B6_RADIANCE_ADD = 1.18243
# TM band 6 numbers are 8-bit; from 149 up they also fit the Kelvin range (DN 149 is about 301 K).
TM_B6_DN_MAX = 255

_UNIT_TYPE_ALIASES = {
    "k": "kelvin",
    "kelvin": "kelvin",
    "degk": "kelvin",
    "c": "celsius",
    "°c": "celsius",
    "degc": "celsius",
    "deg c": "celsius",
    "celsius": "celsius",
    "degree_celsius": "celsius",
    "degrees celsius": "celsius",
}


@dataclass(frozen=True)
class LstUnits:
    """A decided unit and how to turn its values into Kelvin."""

    name: str
    reason: str
    radiance_mult: float = TM_B6_RADIANCE_MULT
    radiance_add: float = TM_B6_RADIANCE_ADD
    # The band's own scale and offset (GDAL's GetScale/GetOffset), applied to the stored values first,
    # as QGIS does when it shows the layer.
    band_scale: float = 1.0
    band_offset: float = 0.0

    @property
    def is_digital_number(self) -> bool:
        return self.name.endswith("_dn")

    def to_kelvin(self, values: np.ndarray) -> np.ndarray:
        """Kelvin as float32 from the stored values; digital-number fill (0) becomes NaN."""
        v = values.astype(np.float64)
        fill = v == 0
        if (self.band_scale, self.band_offset) != (1.0, 0.0):
            v = v * self.band_scale + self.band_offset
        if self.is_digital_number:
            v = np.where(fill, np.nan, v)
        if self.name == "kelvin":
            kelvin = v
        elif self.name == "celsius":
            kelvin = v + CELSIUS_OFFSET
        elif self.name == "landsat_c2_st_dn":
            kelvin = v * LANDSAT_C2_ST_MULT + LANDSAT_C2_ST_ADD
        elif self.name == "modis_lst_dn":
            kelvin = v * MODIS_LST_MULT
        elif self.name == "landsat5_tm_b6_dn":
            radiance = v * self.radiance_mult + self.radiance_add
            with np.errstate(divide="ignore", invalid="ignore"):
                kelvin = TM_K1_K2[1] / np.log(TM_K1_K2[0] / radiance + 1.0)
        else:
            raise InputError(f"Unknown LST units {self.name!r}; use one of {', '.join(LST_UNITS)}.")
        return kelvin.astype(np.float32)


@dataclass(frozen=True)
class UnitHints:
    """What a raster says about itself: GDAL unit type, names and metadata items."""

    unit_type: str = ""
    description: str = ""
    file_name: str = ""
    is_integer: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)


def to_kelvin_where_valid(values: np.ndarray, valid: np.ndarray, units: LstUnits) -> np.ndarray:
    """``values`` in Kelvin as float32, NaN where not ``valid`` (nodata, masked or fill)."""
    return np.where(valid, units.to_kelvin(values), np.nan).astype(np.float32)


@dataclass
class KelvinRange:
    """The lowest and highest Kelvin seen over blocks of a raster, for the plausibility check."""

    low_kelvin: float = math.inf
    high_kelvin: float = -math.inf

    @property
    def is_empty(self) -> bool:
        return self.low_kelvin > self.high_kelvin

    def add(self, kelvin: np.ndarray) -> None:
        if np.isfinite(kelvin).any():
            self.low_kelvin = min(self.low_kelvin, float(np.nanmin(kelvin)))
            self.high_kelvin = max(self.high_kelvin, float(np.nanmax(kelvin)))


def kelvin_to(values_kelvin: np.ndarray, output_units: str) -> np.ndarray:
    """Kelvin to the requested output units."""
    if output_units == "kelvin":
        return values_kelvin
    if output_units == "celsius":
        return values_kelvin - np.float32(CELSIUS_OFFSET)
    raise InputError(f"Unknown output units {output_units!r}; use 'kelvin' or 'celsius'.")


def lst_units(name: str, hints: UnitHints | None = None, reason: str = "") -> LstUnits:
    """The conversion for an explicitly named unit (Landsat 5 gains read from the MTL if present)."""
    if name not in LST_UNITS or name == "auto":
        raise InputError(f"Unknown LST units {name!r}; use one of {', '.join(LST_UNITS)}.")
    if name == "landsat5_tm_b6_dn" and hints is not None:
        gains = _tm_b6_gains(hints.metadata)
        if gains is None:
            return LstUnits(
                name,
                (reason or "given") + "; no MTL radiance gains in the raster, default TM band 6 gains used",
            )
        return LstUnits(name, reason or "given", radiance_mult=gains[0], radiance_add=gains[1])
    return LstUnits(name, reason or "given")


# The whole band's lowest and highest valid value (None if unknown), computed only when a message quotes it.
ValueRange = Callable[[], "tuple[float, float] | None"]


def detect_lst_units(
    sample: np.ndarray, hints: UnitHints, layer: str, value_range: ValueRange | None = None
) -> LstUnits:
    """Decide the units of an LST raster from its metadata, then from its value range.

    ``sample`` holds valid (non-nodata) values of the band, e.g. a decimated read; the decision uses its
    1st-99th percentiles. ``value_range`` gives the whole band's lowest and highest valid value, which
    error messages quote (it is called only for a message); without it they quote the sample's.
    """
    values = sample[np.isfinite(sample)].astype(np.float64)
    from_metadata = _units_from_metadata(hints, values)
    if from_metadata is not None:
        return lst_units(from_metadata[0], hints, from_metadata[1])
    if values.size == 0:
        raise InputError(f"{layer} has no valid pixels (all nodata); check the band and its nodata value.")
    low, high = float(np.percentile(values, 1)), float(np.percentile(values, 99))
    median = float(np.median(values))
    span = f"values {low:.6g}..{high:.6g} (1st-99th percentile of a sample)"
    if PLAUSIBLE_MIN_KELVIN <= low and high <= PLAUSIBLE_MAX_KELVIN:
        if hints.is_integer and high <= TM_B6_DN_MAX:
            whole = data_range(values, value_range)
            as_tm_kelvin = lst_units("landsat5_tm_b6_dn").to_kelvin(np.array(whole))
            raise InputError(
                f"{layer}: the integer {data_span(values, value_range)} could be Kelvin or Landsat 4/5 TM "
                f"band 6 digital numbers ({as_tm_kelvin[0]:.0f}-{as_tm_kelvin[1]:.0f} K); set the LST "
                f"units explicitly to {_quoted_labels(('kelvin', 'landsat5_tm_b6_dn'), 'or')}."
            )
        return LstUnits(
            "kelvin", f"{span} lie in {PLAUSIBLE_MIN_KELVIN:.0f}-{PLAUSIBLE_MAX_KELVIN:.0f}, read as Kelvin"
        )
    if -90.0 <= low and high <= 90.0:
        return LstUnits("celsius", f"{span} lie in -90..90, read as Celsius")
    if hints.is_integer and low >= 1000:
        candidates = []
        for name, mult, add in (
            ("landsat_c2_st_dn", LANDSAT_C2_ST_MULT, LANDSAT_C2_ST_ADD),
            ("modis_lst_dn", MODIS_LST_MULT, 0.0),
        ):
            if DN_MEDIAN_MIN_KELVIN <= median * mult + add <= DN_MEDIAN_MAX_KELVIN:
                candidates.append(name)
        if candidates == ["landsat_c2_st_dn"] and _fits_kelvin_x100(low, high, median):
            raise InputError(_st_or_kelvin_x100_message(layer, data_range(values, value_range)))
        if len(candidates) == 1:
            return LstUnits(
                candidates[0], f"integer {span} with a median of {median:.0f} fit only {candidates[0]}"
            )
    integer = "integer " if hints.is_integer else ""
    raise InputError(
        f"{layer}: cannot tell the units of the LST ({integer}{data_span(values, value_range)}); set the LST "
        f"units to the one that applies: {_quoted_labels(tuple(u for u in LST_UNITS if u != 'auto'), 'or')}."
    )


def _fits_kelvin_x100(low: float, high: float, median: float) -> bool:
    """Whether integers read as Kelvin x 100 (a scale of 0.01 with no scale tag) give a plausible LST."""
    return (
        PLAUSIBLE_MIN_KELVIN <= low * KELVIN_X100_SCALE
        and high * KELVIN_X100_SCALE <= PLAUSIBLE_MAX_KELVIN
        and DN_MEDIAN_MIN_KELVIN <= median * KELVIN_X100_SCALE <= DN_MEDIAN_MAX_KELVIN
    )


def _st_or_kelvin_x100_message(layer: str, whole: tuple[float, float]) -> str:
    """The refusal of integers that read as Landsat ST_B10 numbers and as Kelvin x 100 alike."""
    as_st = lst_units("landsat_c2_st_dn").to_kelvin(np.array(whole))
    as_x100 = np.array(whole) * KELVIN_X100_SCALE
    return (
        f"{layer}: the integer values {whole[0]:.6g}..{whole[1]:.6g} could be Landsat Collection 2 ST_B10 digital "
        f"numbers ({as_st[0]:.1f}-{as_st[1]:.1f} K) or Kelvin x 100 stored without a scale "
        f"({as_x100[0]:.1f}-{as_x100[1]:.1f} K), and neither the file name, the band description, the metadata nor "
        f"the band's unit or scale says which; if it is a Landsat ST_B10 band, set the LST units to "
        f"{_quoted_labels(('landsat_c2_st_dn',), 'or')}; if it is Kelvin x 100, give the file its scale with "
        "gdal_edit.py -scale 0.01 FILE (or in QGIS: Raster > Conversion > Translate with -a_scale 0.01 as an "
        "additional command-line parameter) and use that file, which auto then reads as Kelvin."
    )


def data_range(sample: np.ndarray, value_range: ValueRange | None = None) -> tuple[float, float]:
    """The data's lowest and highest valid value: the whole band's when ``value_range`` gives it, else the
    sample's."""
    whole = value_range() if value_range is not None else None
    return whole or (float(np.min(sample)), float(np.max(sample)))


def data_span(sample: np.ndarray, value_range: ValueRange | None = None) -> str:
    """``data_range`` for messages, e.g. "values 28501..31900"."""
    low, high = data_range(sample, value_range)
    return f"values {low:.6g}..{high:.6g}"


# Valid values all within this magnitude are an emissivity, a reflectance, an index or a 0/1 mask: no
# temperature in any unit (Kelvin, Celsius or a product's numbers) spans at most two degrees about 0 C.
NOT_A_TEMPERATURE_MAX_ABS = 1.0


def require_temperature_values(sample: np.ndarray, layer: str, value_range: ValueRange | None = None) -> None:
    """Refuse a band whose valid values cannot be a temperature in any unit, whatever the units chosen.

    ``sample`` holds valid values (as QGIS shows them: scale and offset applied).
    """
    values = sample[np.isfinite(sample)]
    if values.size and not values.any():
        raise InputError(
            f"{layer}: every valid pixel of the sampled band is 0, a fill value; set the band's nodata value "
            "to 0, or choose the band that holds the land surface temperature (LST band number, --lst-band)."
        )
    if values.size and float(np.max(np.abs(values))) <= NOT_A_TEMPERATURE_MAX_ABS:
        raise InputError(
            f"{layer}: its {data_span(values, value_range)} all lie within -{NOT_A_TEMPERATURE_MAX_ABS:g}.."
            f"{NOT_A_TEMPERATURE_MAX_ABS:g}, which is an emissivity, a reflectance, an index or a mask, not a "
            "temperature in any unit; choose the band that holds the land surface temperature (LST band "
            "number, --lst-band)."
        )


def check_plausible_kelvin(low_kelvin: float, high_kelvin: float, layer: str, units: LstUnits) -> None:
    """Refuse an LST whose converted values cannot be land surface temperatures."""
    if not (PLAUSIBLE_MIN_KELVIN <= low_kelvin and high_kelvin <= PLAUSIBLE_MAX_KELVIN):
        raise InputError(
            f"{layer}: read as {UNIT_LABELS[units.name]} ({units.reason}), the LST spans "
            f"{low_kelvin:.1f}..{high_kelvin:.1f} K, "
            f"outside the plausible {PLAUSIBLE_MIN_KELVIN:.0f}-{PLAUSIBLE_MAX_KELVIN:.0f} K; set the "
            "correct LST "
            f"units or the band's nodata value."
        )


def _units_from_metadata(hints: UnitHints, values: np.ndarray) -> tuple[str, str] | None:
    """Units named by the raster itself: a product name (file, band description, metadata) or the band's unit.

    A product's digital numbers are taken only from an integer band or from values that cannot be Kelvin,
    so that a product band already converted (and renamed nothing) is still read by its unit or values.
    """
    median = float(np.median(values)) if values.size else float("nan")
    product_numbers = hints.is_integer or median > PLAUSIBLE_MAX_KELVIN
    names = " ".join(
        (
            hints.file_name,
            hints.description,
            _metadata_item(hints.metadata, "SHORTNAME"),
            _metadata_item(hints.metadata, "long_name"),
        )
    ).upper()
    if product_numbers and re.search(r"ST_B10|ST_B6\b", names):
        return "landsat_c2_st_dn", f"the name says Landsat Collection 2 ST ({_cue(names, r'ST_B10|ST_B6')})"
    for pattern, product in DN_002_PRODUCTS:
        if product_numbers and re.search(pattern, names):
            return "modis_lst_dn", f"the name says {product} ({_cue(names, pattern)})"
    if not hints.is_integer and re.search(SLSTR_LST, names):
        return "kelvin", f"the name says Sentinel-3 SLSTR LST, which is in Kelvin ({_cue(names, SLSTR_LST)})"
    if re.search(r"TM_?B6_?DN", names):
        return "landsat5_tm_b6_dn", "the name says Landsat TM band 6 digital numbers"
    unit = hints.unit_type.strip().lower()
    if unit in _UNIT_TYPE_ALIASES:
        return _UNIT_TYPE_ALIASES[unit], f"the band's unit is {hints.unit_type!r}"
    tm_numbers = hints.is_integer or (values.size > 0 and float(np.max(values)) <= TM_B6_DN_MAX)
    spacecraft = _metadata_item(hints.metadata, "SPACECRAFT_ID").upper()
    if tm_numbers and spacecraft in ("LANDSAT_4", "LANDSAT_5") and re.search(r"_B6(\.TIF+)?\b", names):
        return "landsat5_tm_b6_dn", f"the MTL says {spacecraft} and the file is band 6"
    if tm_numbers and re.search(r"\bLT0?[45]\w*_B6(?!\d)", names):
        return "landsat5_tm_b6_dn", "the file name is a Landsat 4/5 TM band 6 file (LT04/LT05 ..._B6)"
    return None


def _cue(names: str, pattern: str) -> str:
    return re.search(pattern, names).group(0)


def _quoted_labels(units: tuple[str, ...], conjunction: str) -> str:
    labels = [f'"{UNIT_LABELS[name]}"' for name in units]
    return ", ".join(labels[:-1]) + f" {conjunction} " + labels[-1] if len(labels) > 1 else labels[0]


def _metadata_item(metadata: Mapping[str, str], key: str) -> str:
    """A metadata value by its last dotted component (GDAL flattens the MTL as A.B.KEY)."""
    for name, value in metadata.items():
        if name == key or name.endswith("." + key):
            return value.strip().strip('"')
    return ""


def _tm_b6_gains(metadata: Mapping[str, str]) -> tuple[float, float] | None:
    mult = _metadata_item(metadata, "RADIANCE_MULT_BAND_6")
    add = _metadata_item(metadata, "RADIANCE_ADD_BAND_6")
    try:
        return float(mult), float(add)
    except ValueError:
        return None

"""An LST band's units: the hints GDAL holds about them, and the band read in Kelvin.

The decision itself is pure and lives in `engine.units`; this module reads what it needs from GDAL.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import numpy as np

from ..grids import Grid
from ..units import (
    LstUnits,
    UnitHints,
    detect_lst_units,
    lst_units,
    require_temperature_values,
)
from .read import (
    band_nodata,
    band_scaling,
    get_band,
    grid_of,
    open_raster,
    require_value_band,
    sample_values,
    valid_mask,
    valid_values,
    value_range,
)
from .session import gdal


def unit_hints(dataset: gdal.Dataset, band: gdal.Band, path: str | os.PathLike) -> UnitHints:
    metadata: dict[str, str] = {}
    for domain in ("", "IMD"):
        metadata.update(dataset.GetMetadata(domain) or {})
    metadata.update(band.GetMetadata() or {})
    dtype = gdal.GetDataTypeName(band.DataType)
    return UnitHints(
        unit_type=band.GetUnitType() or "",
        description=band.GetDescription() or "",
        file_name=Path(str(path)).name,
        # Stored integers with a scale or offset are fractional values, not a product's digital numbers.
        is_integer=not dtype.startswith(("Float", "CFloat")) and band_scaling(band) is None,
        metadata=metadata,
    )


def decide_lst_units(
    dataset: gdal.Dataset, band: gdal.Band, path: str | os.PathLike, requested: str, layer: str
) -> LstUnits:
    """The requested LST units, or for "auto" the units its metadata and values suggest.

    Whatever the units, a band whose values cannot be a temperature is refused, and the band's own scale
    and offset are applied before the units' conversion (and said in the reason).
    """
    require_value_band(band, layer, f"band {band.GetBand()}")
    hints = unit_hints(dataset, band, path)
    sample = valid_values(band, sample_values(band))
    whole_range = functools.partial(value_range, band)
    require_temperature_values(sample, layer, whole_range)
    if requested != "auto":
        units = lst_units(requested, hints)
    else:
        units = detect_lst_units(sample, hints, layer, whole_range)
    scaling = band_scaling(band)
    if scaling is None:
        return units
    return dataclasses.replace(
        units,
        band_scale=scaling[0],
        band_offset=scaling[1],
        reason=f"{units.reason}; the band's scale {scaling[0]:g} and offset {scaling[1]:g} applied first, "
        "as QGIS shows it",
    )


def read_lst_kelvin(
    path: str | os.PathLike, band_index: int, requested_units: str, layer: str
) -> tuple[np.ndarray, Grid, LstUnits]:
    """A whole LST band in Kelvin (NaN where nodata), its grid and the units it was read in."""
    dataset = open_raster(path, layer)
    band = get_band(dataset, band_index, layer)
    units = decide_lst_units(dataset, band, path, requested_units, layer)
    values = band.ReadAsArray()
    kelvin = np.where(valid_mask(values, band_nodata(band)), units.to_kelvin(values), np.nan).astype(
        np.float32
    )
    return kelvin, grid_of(dataset, layer), units

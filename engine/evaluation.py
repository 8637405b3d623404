"""Compare a downscaled LST raster with a reference raster: masked metrics in Kelvin and an
optional difference raster (prediction minus reference, Kelvin)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metrics
from .errors import Cancelled, InputError
from .grids import Grid, same_shape_and_transform
from .raster import (
    OUTPUT_CREATION_OPTIONS,
    band_of,
    create_geotiff,
    describe_band,
    flush,
    gdal_session,
    io_errors,
    read_lst_kelvin,
    same_crs,
    write_window,
)
from .units import LstUnits, check_plausible_kelvin

DIFFERENCE_NODATA = -9999.0


@dataclass(frozen=True)
class Evaluation:
    """Metrics (keys of `engine.metrics.evaluate`) and how each raster was read."""

    metrics: dict[str, float]
    prediction_units: LstUnits
    reference_units: LstUnits
    grid: Grid
    difference_path: str | None


def evaluate_rasters(
    prediction_path: str,
    reference_path: str,
    prediction_band: int = 1,
    reference_band: int = 1,
    prediction_units: str = "auto",
    reference_units: str = "auto",
    difference_path: str | None = None,
    progress: Callable[[float], None] = lambda percent: None,
    is_cancelled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda message: None,
) -> Evaluation:
    """Read both rasters in Kelvin (nodata excluded), check they share one grid, score the
    prediction and, if asked, write the difference raster atomically.

    Both bands are read whole: evaluation rasters are meant to be clipped scenes."""
    prediction_layer, reference_layer = f"Prediction {prediction_path}", f"Reference {reference_path}"
    if difference_path is not None and Path(difference_path).resolve() in (
        Path(prediction_path).resolve(),
        Path(reference_path).resolve(),
    ):
        raise InputError(
            f"Difference raster {difference_path} is one of the inputs; choose another output path."
        )
    layers = {prediction_path: prediction_layer, reference_path: reference_layer}
    with gdal_session(), io_errors(layers, difference_path or prediction_path):
        prediction, grid, pred_units = read_lst_kelvin(
            prediction_path, prediction_band, prediction_units, prediction_layer
        )
        progress(25)
        reference, ref_grid, ref_units = read_lst_kelvin(
            reference_path, reference_band, reference_units, reference_layer
        )
        progress(50)
        if not (same_crs(grid.crs_wkt, ref_grid.crs_wkt) and same_shape_and_transform(grid, ref_grid)):
            raise InputError(
                f"{prediction_layer} ({grid.width}x{grid.height} px) and {reference_layer} "
                f"({ref_grid.width}x{ref_grid.height} px) are not on the same grid; warp the reference onto "
                "the "
                f"prediction's grid first (e.g. gdalwarp -te/-tr, or Raster > Align Rasters)."
            )
        for values, layer, units in (
            (prediction, prediction_layer, pred_units),
            (reference, reference_layer, ref_units),
        ):
            if not np.isfinite(values).any():
                raise InputError(
                    f"{layer} has no valid pixels (all nodata); check the band and its nodata value."
                )
            check_plausible_kelvin(float(np.nanmin(values)), float(np.nanmax(values)), layer, units)
        log(
            f"Prediction read as {pred_units.name} ({pred_units.reason}); reference read as "
            f"{ref_units.name} ({ref_units.reason})"
        )
        if not metrics.valid_pixels(prediction, reference).any():
            raise InputError(f"{prediction_layer} and {reference_layer} have no valid pixel in common.")
        if is_cancelled():
            raise Cancelled("Evaluation cancelled; no output was written.")
        scores = metrics.evaluate(prediction, reference)
        progress(90)
        if difference_path is not None:
            _write_difference(prediction - reference, grid, Path(difference_path))
            log(f"Wrote the difference raster {difference_path}")
    progress(100)
    return Evaluation(scores, pred_units, ref_units, grid, difference_path)


def _write_difference(difference_kelvin: np.ndarray, grid: Grid, path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial.tif")
    try:
        dataset = create_geotiff(partial, grid, OUTPUT_CREATION_OPTIONS, nodata=DIFFERENCE_NODATA)
        band = band_of(dataset)
        describe_band(band, "Prediction minus reference (K)", "K")
        write_window(
            band,
            np.where(np.isfinite(difference_kelvin), difference_kelvin, DIFFERENCE_NODATA).astype(np.float32),
        )
        flush(dataset)
        dataset = band = None
        os.replace(partial, path)
    except BaseException:
        dataset = band = None
        partial.unlink(missing_ok=True)
        raise

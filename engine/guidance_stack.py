"""The guidance stack writer: reads reflectance rasters (and a DEM), computes the bands that
`engine.guidance` defines, and writes them as one GeoTIFF through `engine.raster`.

The stack is written in blocks of rows, so a full scene never sits in memory, and appears
only when complete: a failure or a cancellation leaves nothing at the output path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import Cancelled, InputError
from .guidance import (
    ENCODINGS,
    L1_TOA_ENCODING,
    LANDSAT_89_OLI_BANDS,
    check_units,
    compute_guidance,
    count_index_bounds,
    guidance_band,
    index_bounds,
    reflectance_converter,
    required_inputs,
)
from .landsat import reflective_band_files
from .raster import (
    band_count,
    band_nodata,
    band_of,
    create_geotiff,
    dataset_grid,
    describe_band,
    flush,
    gdal_session,
    io_errors,
    open_raster,
    raster_size,
    read_window,
    same_crs,
    warped_view,
    write_metadata,
    write_window,
)
from .tiling import Block

ROWS_PER_BLOCK = 512
STACK_CREATION_OPTIONS = ("COMPRESS=DEFLATE", "PREDICTOR=3", "TILED=YES", "BIGTIFF=IF_SAFER")
GEOTRANSFORM_TOLERANCE = 1e-6


def build_guidance_stack(
    out_path: str | Path,
    band_names: Sequence[str],
    reflectance_paths: Mapping[str, str | Path],
    dem_path: str | Path | None = None,
    encoding: str = "c2l2_dn",
    expected_units: Sequence[str] | None = None,
    mtl_path: str | Path | None = None,
    progress: Callable[[float], None] = lambda percent: None,
    is_cancelled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda message: None,
) -> Path:
    """Write the guidance GeoTIFF for ``band_names`` on the grid of the reflectance rasters.

    ``reflectance_paths`` maps reflectance names (``red``, ``nir``, ...) to single-band
    rasters sharing one grid; the DEM is resampled bilinearly onto that grid. With
    ``encoding="landsat_l1_toa"`` the values are Level-1 digital numbers turned into TOA
    reflectance with ``mtl_path``, and missing reflectance paths are taken from the MTL. Indices are
    bounded to -1..1 (`engine.indices`) and the pixels that changed are counted in the log. With
    ``expected_units`` (a model card's units per band) the units are checked first. Works in
    blocks of rows so a full scene never sits in memory; ``progress`` gets percent. The file
    appears only when complete: a failure or a cancellation leaves nothing at ``out_path``.
    """
    inputs = {str(path): f"Reflectance {name} {path}" for name, path in (reflectance_paths or {}).items()}
    if dem_path:
        inputs[str(dem_path)] = f"DEM {dem_path}"
    with gdal_session(), io_errors(inputs, out_path):
        return _build_guidance_stack(
            Path(out_path),
            band_names,
            reflectance_paths,
            dem_path,
            encoding,
            expected_units,
            mtl_path,
            progress,
            is_cancelled,
            log,
        )


def _build_guidance_stack(
    out_path,
    band_names,
    reflectance_paths,
    dem_path,
    encoding,
    expected_units,
    mtl_path,
    progress,
    is_cancelled,
    log,
) -> Path:
    if encoding not in ENCODINGS:
        raise InputError(f"Unknown reflectance encoding {encoding!r}; use one of {', '.join(ENCODINGS)}.")
    to_reflectance = reflectance_converter(encoding, mtl_path)
    if encoding == L1_TOA_ENCODING:
        reflectance_paths = {
            **{name: path for name, (path, _) in reflective_band_files(mtl_path).items()},
            **reflectance_paths,
        }
    if expected_units is not None:
        check_units(band_names, expected_units)
        if encoding != L1_TOA_ENCODING and any("toa" in unit.lower() for unit in expected_units):
            log(
                "Note: the model was trained on top-of-atmosphere reflectance; surface reflectance is "
                "usually a little darker in the visible bands, which the model has not seen."
            )
    needed = required_inputs(band_names)
    missing = [name for name in needed if name != "dem" and name not in reflectance_paths]
    if missing:
        names = ", ".join(
            f"{name} ({LANDSAT_89_OLI_BANDS.get(name, '?')} on Landsat 8/9)" for name in missing
        )
        raise InputError(
            f"The guidance bands {', '.join(band_names)} need the surface reflectance band(s) {names}; add "
            "them."
        )
    if "dem" in needed and dem_path is None:
        raise InputError(f"The guidance bands {', '.join(band_names)} include elevation: give a DEM layer.")
    for path in (*reflectance_paths.values(), *([dem_path] if dem_path else [])):
        if Path(path).resolve() == out_path.resolve():
            raise InputError(f"The output {out_path} is one of the inputs; choose another output file.")
    sources = {name: _open_single_band(reflectance_paths[name], name) for name in needed if name != "dem"}
    grid_name, reference = next(iter(sources.items()))
    for name, dataset in sources.items():
        _require_same_grid(dataset, reference, name, grid_name)
    grid = dataset_grid(reference)
    if "dem" in needed:
        _open_single_band(dem_path, "DEM")
        sources["dem"] = warped_view(dem_path, grid, "bilinear", f"DEM {dem_path}")

    partial = out_path.with_name(f".{out_path.name}.partial")
    log(
        f"Building {len(band_names)} guidance band(s) {', '.join(band_names)} on a {grid.width} x "
        f"{grid.height} grid from {', '.join(needed)}."
    )
    out = create_geotiff(partial, grid, STACK_CREATION_OPTIONS, nodata=float("nan"), bands=len(band_names))
    bounds = index_bounds(band_names)
    try:
        _describe(out, band_names, encoding)
        for row in range(0, grid.height, ROWS_PER_BLOCK):
            if is_cancelled():
                raise Cancelled("Building the guidance stack was cancelled; no output was written.")
            rows = min(ROWS_PER_BLOCK, grid.height - row)
            inputs = {
                name: _read_rows(dataset, row, rows, name, to_reflectance)
                for name, dataset in sources.items()
            }
            stack = compute_guidance(band_names, inputs)
            count_index_bounds(bounds, inputs)
            for index in range(len(band_names)):
                write_window(band_of(out, index + 1), stack[index], 0, row)
            progress(100.0 * (row + rows) / grid.height)
        flush(out)
        out = None
        os.replace(partial, out_path)
    except BaseException:
        out = None
        partial.unlink(missing_ok=True)
        raise
    for counter in bounds.values():
        message = counter.message()
        if message:
            log(message)
    return out_path


def _describe(out, band_names: Sequence[str], encoding: str) -> None:
    """Each band's name as its description and its units as metadata; the band list on the file."""
    for index, name in enumerate(band_names, start=1):
        recipe = guidance_band(name)
        describe_band(
            band_of(out, index),
            name,
            "m" if recipe.units == "m" else None,
            {"units": recipe.units, "description": recipe.description},
        )
    write_metadata(out, {"guidance_bands": ",".join(band_names), "sr_encoding": encoding})


def _open_single_band(path: str | Path, name: str):
    dataset = open_raster(path, f"The {name} layer")
    if band_count(dataset) < 1:
        raise InputError(f"The {name} layer {path} has no band.")
    if 0 in raster_size(dataset):
        raise InputError(f"The {name} layer {path} is empty (0 pixels).")
    return dataset


def _require_same_grid(dataset, reference, name: str, reference_name: str) -> None:
    grid, reference_grid = dataset_grid(dataset), dataset_grid(reference)
    same = (
        (grid.width, grid.height) == (reference_grid.width, reference_grid.height)
        and np.allclose(grid.geotransform, reference_grid.geotransform, rtol=0, atol=GEOTRANSFORM_TOLERANCE)
        and same_crs(grid.crs_wkt, reference_grid.crs_wkt)
    )
    if not same:
        raise InputError(
            f"The {name} layer ({grid.width} x {grid.height}, geotransform "
            f"{grid.geotransform}) is not on the grid of the {reference_name} layer "
            f"({reference_grid.width} x {reference_grid.height}, {reference_grid.geotransform}); "
            f"use the bands of one Landsat scene, or clip them to the same extent first."
        )


def _read_rows(dataset, row: int, rows: int, name: str, to_reflectance) -> np.ndarray:
    band = band_of(dataset)
    values = read_window(band, Block(0, row, raster_size(dataset)[0], rows))
    nodata = band_nodata(band)
    if name == "dem":
        elevation = values.astype(np.float32)
        if nodata is not None and np.isfinite(nodata):
            elevation[values == nodata] = np.nan
        return elevation
    return to_reflectance(name, values, nodata)

"""Every bad input a new user meets, through processing.run in real QGIS: each run ends in a clear
message (naming the layer or file and the fix, no traceback) or in a correct output; the inputs
are never changed and a failed run leaves nothing in the output folder."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import processing
import pytest
import torch
from osgeo import gdal, osr
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsRasterLayer

from engine.package import sha256_of_file
from tests.conftest import REPO
from tests.corrupt import (
    copy_package,
    garble_onnx_keeping_checksum,
    nan_weights_keeping_checksum,
    truncated_copy,
)

from .conftest import C2_SR_OFFSET, C2_SR_SCALE, coarse_geotransform, write_geotiff

ALGORITHM = "mocolsk:downscalelst"
MOCOLSK, BICUBIC, TSHARP, DMS = 0, 1, 2, 3
NODATA = -9999.0
TRACEBACK_MARKERS = ("Traceback", 'File "', "RuntimeError:", "Error:")


def lst_values(scene) -> np.ndarray:
    return gdal.Open(str(scene.lst_120m)).ReadAsArray().astype(np.float32)


def guidance_values(scene) -> np.ndarray:
    return gdal.Open(str(scene.guidance_30m)).ReadAsArray().astype(np.float32)


def guidance_names(scene) -> list[str]:
    stack = gdal.Open(str(scene.guidance_30m))
    return [stack.GetRasterBand(i).GetDescription() for i in range(1, stack.RasterCount + 1)]


def write_lst(scene, folder, name, values=None, geotransform=None, crs=None, nodata=NODATA, unit=None):
    values = lst_values(scene) if values is None else values
    return str(
        write_geotiff(
            folder / name,
            values,
            geotransform or coarse_geotransform(scene.geotransform),
            crs or scene.crs_wkt,
            nodata=nodata,
            unit=unit,
        )
    )


def write_guidance(scene, folder, name, values=None, names="same", dtype=gdal.GDT_Float32, geotransform=None):
    return str(
        write_geotiff(
            folder / name,
            guidance_values(scene) if values is None else values,
            geotransform or scene.geotransform,
            scene.crs_wkt,
            names=guidance_names(scene) if names == "same" else names,
            dtype=dtype,
        )
    )


def utm_to_web_mercator(scene, folder) -> str:
    """The real LST reprojected to EPSG:3857 (another CRS, pixels no longer on the guidance grid)."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3857)
    target = folder / "lst_3857.tif"
    gdal.Warp(str(target), str(scene.lst_120m), dstSRS=srs.ExportToWkt(), resampleAlg="near")
    return str(target)


def shifted_far_away(scene, folder) -> str:
    x0, dx, _, y0, _, dy = coarse_geotransform(scene.geotransform)
    return write_lst(scene, folder, "lst_elsewhere.tif", geotransform=(x0 + 1e6, dx, 0.0, y0, 0.0, dy))


def with_holes(scene, folder, out=None, package=None) -> dict:
    """Nodata and NaN holes in the LST plus a cloud mask: every fine pixel under them must be nodata."""
    values = lst_values(scene)
    values[2, 3] = NODATA
    values[5, 6] = np.nan
    cloud = np.zeros(values.shape, np.uint8)
    cloud[9, 9] = 1
    lst = write_lst(scene, folder, "lst_holes.tif", values)
    qa = write_geotiff(folder / "cloud.tif", cloud, coarse_geotransform(scene.geotransform), scene.crs_wkt)
    return {"INPUT_LST": lst, "QA_MASK": str(qa), "METHOD": BICUBIC}


def holes_are_nodata(values, results, messages):
    for row, col in ((2, 3), (5, 6), (9, 9)):
        assert np.all(values[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] == NODATA)
    assert (values == NODATA).sum() == 3 * 16


def tiny_pair(scene, folder, coarse_px) -> dict:
    """The real LST and guidance cut to ``coarse_px`` x ``coarse_px`` coarse pixels."""
    fine = coarse_px * 4
    return {
        "INPUT_LST": write_lst(
            scene, folder, f"lst_{coarse_px}px.tif", lst_values(scene)[:coarse_px, :coarse_px]
        ),
        "GUIDANCE": [
            write_guidance(scene, folder, f"guidance_{fine}px.tif", guidance_values(scene)[:, :fine, :fine])
        ],
    }


def sr_integers(scene, folder, scaling) -> dict:
    """The guidance as Landsat C2 SR integers or x10000 reflectance, one file named like the product's."""
    reflectance = guidance_values(scene)
    encoded = (reflectance - C2_SR_OFFSET) / C2_SR_SCALE if scaling == "c2" else reflectance * 10000
    name = "LC08_L2SP_SAMPLE_SR_STACK.TIF" if scaling == "c2" else "S2_L2A_x10000.tif"
    return {"GUIDANCE": [write_guidance(scene, folder, name, np.round(encoded), dtype=gdal.GDT_UInt16)]}


def corrupted_checksum(package, folder) -> str:
    card = copy_package(package, folder, "tampered")
    onnx = folder / "tampered.onnx"
    data = bytearray(onnx.read_bytes())
    data[-8:] = b"\x00" * 8
    onnx.write_bytes(bytes(data))
    return str(card)


def pickled_torch_weights(package, folder) -> str:
    """A package whose .pt holds a Python object beside the tensors (and a card whose checksum matches)."""
    card_path = Path(copy_package(package, folder, "pickled"))
    weights = folder / "pickled.pt"
    state = torch.load(package.torch_weights_path, weights_only=True)
    torch.save({**state, "payload": Path("/tmp")}, weights)
    card = json.loads(card_path.read_text())
    card.update(torch_weights_file=weights.name, torch_weights_sha256=sha256_of_file(weights))
    card_path.write_text(json.dumps(card))
    return str(card_path)


def within_the_scene_range(scene):
    def check(values, results, messages):
        assert np.all(values != NODATA)
        assert scene.lst_min_k - 5 < values.min() and values.max() < scene.lst_max_k + 5

    return check


@dataclass(frozen=True)
class Case:
    # (scene, inputs folder, output folder, tiny package) -> parameter overrides
    make: Callable
    error: str | None = None  # the message must match this; None: the run must succeed
    check: Callable | None = None  # (scene) -> check(values, results, messages), for a success
    log: str | None = None  # a log line that must appear (successes)


CASES = {
    "truncated LST GeoTIFF": Case(
        lambda s, i, o, p: {"INPUT_LST": str(truncated_copy(s.lst_120m, i / "lst_cut.tif"))},
        r"LST .*lst_cut\.tif: GDAL could not read .*lst_cut\.tif .*damaged or truncated.*again",
    ),
    # Read by the tile loop's reading thread (bicubic checks no guidance values before the tiles).
    "truncated guidance GeoTIFF": Case(
        lambda s, i, o, p: {
            "GUIDANCE": [str(truncated_copy(s.guidance_30m, i / "guidance_cut.tif"))],
            "METHOD": 1,
        },
        r"GDAL could not read .*guidance_cut\.tif .*damaged or truncated.*again",
    ),
    "garbled LST file": Case(
        lambda s, i, o, p: {"INPUT_LST": str(_garbled(i / "lst_garbled.tif"))},
        r"Coarse LST layer: GDAL cannot read .*lst_garbled\.tif as a raster",
    ),
    "0-byte LST file": Case(
        lambda s, i, o, p: {"INPUT_LST": str(_empty(i / "lst_empty.tif"))},
        r"Coarse LST layer: file .*lst_empty\.tif is empty \(0 bytes\), not a raster; copy or download it again",
    ),
    "missing guidance file": Case(
        lambda s, i, o, p: {"GUIDANCE": [str(i / "nowhere.tif")]},
        r"Guidance layers \(fine grid\): file .*nowhere\.tif does not exist",
    ),
    "unparsable ONNX with a matching checksum": Case(
        lambda s, i, o, p: {"MODEL_FILE": str(garble_onnx_keeping_checksum(copy_package(p, i, "garbled")))},
        r"Model package 'garbled': .*garbled\.onnx is not a model ONNX Runtime can load .*InvalidProtobuf.*"
        r"Download or export the package again",
    ),
    "ONNX returning NaN with a matching checksum": Case(
        lambda s, i, o, p: {
            "MODEL_FILE": str(nan_weights_keeping_checksum(copy_package(p, i, "nan"), p.torch_weights_path))
        },
        r"Model 'nan' .*nan\.json\) returned non-finite values .*weights are damaged",
    ),
    "corrupted ONNX, checksum differs from the card": Case(
        lambda s, i, o, p: {"MODEL_FILE": corrupted_checksum(p, i)},
        r"Model package 'tampered': checksum of tampered\.onnx .*corrupted or was replaced",
    ),
    ".pt with a pickle payload": Case(
        lambda s, i, o, p: {"MODEL_FILE": pickled_torch_weights(p, i), "BACKEND": 1},
        r"pickled\.pt holds Python objects besides plain tensors.*never loaded",
    ),
    "guidance as Landsat C2 SR integers": Case(
        lambda s, i, o, p: sr_integers(s, i, "c2"),
        check=within_the_scene_range,
        log="Landsat Collection 2 Level-2 surface reflectance integers",
    ),
    "guidance as reflectance x10000": Case(
        lambda s, i, o, p: sr_integers(s, i, "x10000"), check=within_the_scene_range, log="scaled x10000"
    ),
    "guidance far outside reflectance": Case(
        lambda s, i, o, p: {"GUIDANCE": [write_guidance(s, i, "radiance.tif", guidance_values(s) * 300)]},
        r"Guidance .*radiance\.tif: guidance band 'blue' has values .* Convert the band to reflectance",
    ),
    "output .png": Case(
        lambda s, i, o, p: {"OUTPUT": str(o / "lst_30m.png")},
        r"Output lst_30m\.png has the extension \.png, .* one of \.tif, \.tiff, \.nc, \.img.*e\.g\. lst_30m\.tif",
    ),
    "output .vrt": Case(
        lambda s, i, o, p: {"OUTPUT": str(o / "lst_30m.vrt")}, r"a \.vrt only points at other"
    ),
    "output netCDF": Case(
        lambda s, i, o, p: {"OUTPUT": str(o / "lst_30m.nc"), "METHOD": BICUBIC}, check=within_the_scene_range
    ),
    "output Erdas Imagine": Case(
        lambda s, i, o, p: {"OUTPUT": str(o / "lst_30m.img"), "METHOD": BICUBIC}, check=within_the_scene_range
    ),
    "output = input": Case(
        lambda s, i, o, p: {"OUTPUT": write_lst(s, i, "same.tif"), "INPUT_LST": str(i / "same.tif")},
        r"Output .*same\.tif is one of the inputs; choose another output path",
    ),
    "1x1 coarse LST": Case(
        lambda s, i, o, p: tiny_pair(s, i, 1),
        r"LST .*lst_1px\.tif: .*1x1 coarse pixel.*at least 2x2.*",
    ),
    "2x2 coarse LST": Case(lambda s, i, o, p: tiny_pair(s, i, 2), check=within_the_scene_range),
    "LST in another CRS": Case(
        lambda s, i, o, p: {"INPUT_LST": utm_to_web_mercator(s, i), "METHOD": BICUBIC},
        log="area averaging because its CRS",
    ),
    "guidance layers on different grids": Case(
        lambda s, i, o, p: {
            "GUIDANCE": [
                str(s.guidance_30m),
                write_guidance(
                    s, i, "moved.tif", guidance_values(s)[:1], ["dem"], geotransform=_moved(s.geotransform)
                ),
            ]
        },
        r"Guidance .*moved\.tif is not on the grid of .*resample all guidance rasters onto one grid",
    ),
    "no overlap": Case(
        lambda s, i, o, p: {"INPUT_LST": shifted_far_away(s, i)},
        r"LST .*lst_elsewhere\.tif does not overlap the guidance extent",
    ),
    "non-integer pixel ratio (averaged onto the coarser x4 grid)": Case(
        lambda s, i, o, p: {
            "INPUT_LST": write_lst(
                s, i, "lst_100m.tif", lst_values(s)[:19, :19], geotransform=_pixel(s.geotransform, 100.0)
            )
        },
        log="its pixel of 100 m is finer than the coarse pixel of 120 m",
    ),
    "Celsius labelled Kelvin": Case(
        lambda s, i, o, p: {"INPUT_LST": write_lst(s, i, "lst_c.tif", lst_values(s) - 273.15, unit="K")},
        r"LST .*lst_c\.tif: read as [Kk]elvin .*outside the plausible 149-400 K; set the",
    ),
    "nodata, NaN and cloud mask": Case(with_holes, check=lambda s: holes_are_nodata),
    "all nodata": Case(
        lambda s, i, o, p: {
            "INPUT_LST": write_lst(s, i, "lst_none.tif", np.full((16, 16), NODATA, np.float32))
        },
        r"LST .*lst_none\.tif has no valid pixels",
    ),
    "wrong band names given": Case(
        lambda s, i, o, p: {"GUIDANCE_BAND_NAMES": "b1,b2,b3,b4,b5,b6"},
        r"guidance band 'blue'.* is missing.*name the bands correctly",
    ),
    "unnamed bands, one too few": Case(
        lambda s, i, o, p: {
            "GUIDANCE": [write_guidance(s, i, "unnamed.tif", guidance_values(s)[:5], names=None)]
        },
        r"Guidance .*unnamed\.tif: model .* needs the bands .* have no names, and their order cannot be guessed",
    ),
    "unnamed bands named in the parameters": Case(
        lambda s, i, o, p: {
            "GUIDANCE": [write_guidance(s, i, "unnamed6.tif", names=None)],
            "GUIDANCE_BAND_NAMES": "blue,green,red,nir,swir1,swir2",
        },
        check=within_the_scene_range,
        log="guidance bands mapped by band name",
    ),
    # Issue 22: silent wrong outputs, now clear errors or correct outputs.
    "a guidance band all nodata": Case(
        lambda s, i, o, p: {"GUIDANCE": [_guidance_with(s, i, "empty_red.tif", red=NODATA, nodata=NODATA)]},
        r"Guidance .*empty_red\.tif: band 3 \(red\) has no valid pixel \(all nodata -9999 or NaN\).*every "
        r"output pixel would be nodata.*leave that band out",
    ),
    "a guidance band all NaN, no nodata set": Case(
        lambda s, i, o, p: {"GUIDANCE": [_guidance_with(s, i, "nan_nir.tif", nir=np.nan)], "METHOD": BICUBIC},
        r"Guidance .*nan_nir\.tif: band 4 \(nir\) has no valid pixel \(all nodata or NaN\)",
    ),
    "emissivity chosen as the LST band": Case(
        lambda s, i, o, p: {"INPUT_LST": _lst_and_emissivity(s, i), "LST_BAND": 2},
        r"LST .*lst_emis\.tif: its values 0\.95\.\.0\.99 all lie within -1\.\.1, which is an emissivity.*not a "
        r"temperature in any unit; choose the band that holds the land surface temperature",
    ),
    "emissivity as the LST band, units set to Celsius": Case(
        lambda s, i, o, p: {"INPUT_LST": _lst_and_emissivity(s, i), "LST_BAND": 2, "LST_UNITS": 2},
        r"LST .*lst_emis\.tif: its values 0\.95\.\.0\.99 .*not a temperature in any unit",
    ),
    "emissivity as the LST band, units set to Landsat ST numbers": Case(
        lambda s, i, o, p: {"INPUT_LST": _lst_and_emissivity(s, i), "LST_BAND": 2, "LST_UNITS": 3},
        r"not a temperature in any unit",
    ),
    "UInt16 Kelvin x100 with a GDAL scale 0.01": Case(
        lambda s, i, o, p: {
            "INPUT_LST": _encoded_lst(s, i, "lst_k100.tif", 100.0, 0.0, gdal.GDT_UInt16, 0.01)
        },
        check=within_the_scene_range,
        log="scale 0.01 and offset 0 applied first, as QGIS shows it",
    ),
    "UInt16 Kelvin x100 without a scale or product name": Case(
        lambda s, i, o, p: {
            "INPUT_LST": _encoded_lst(s, i, "lst_k100_noscale.tif", 100.0, 0.0, gdal.GDT_UInt16)
        },
        r"LST .*lst_k100_noscale\.tif: the integer values \d+\.\.\d+ could be Landsat Collection 2 ST_B10 digital "
        r"numbers \(2\d\d\.\d-2\d\d\.\d K\) or Kelvin x 100 stored without a scale \(\d+\.\d-\d+\.\d K\).*set the "
        r"LST units to .*ST_B10.*gdal_edit\.py -scale 0\.01 FILE",
    ),
    "Int16 Celsius x100 with a GDAL scale 0.01": Case(
        lambda s, i, o, p: {
            "INPUT_LST": _encoded_lst(s, i, "lst_c100.tif", 100.0, -27315.0, gdal.GDT_Int16, 0.01)
        },
        check=within_the_scene_range,
        log="read as Celsius",
    ),
    "Int16 Celsius x100 with scale 0.01 and offset 273.15 (Kelvin)": Case(
        lambda s, i, o, p: {
            "INPUT_LST": _encoded_lst(s, i, "lst_c100k.tif", 100.0, -27315.0, gdal.GDT_Int16, 0.01, 273.15)
        },
        check=within_the_scene_range,
    ),
    "unnamed bands in another order (red, green, blue, ...)": Case(
        lambda s, i, o, p: {
            "GUIDANCE": [
                write_guidance(s, i, "rgb_order.tif", guidance_values(s)[[2, 1, 0, 3, 4, 5]], names=None)
            ]
        },
        r"Guidance .*rgb_order\.tif: model .* the 6 guidance band\(s\) have no names, and their order cannot be "
        r"guessed safely; give one name per band .*'Guidance band names'.*e\.g\. blue,green,red,nir,swir1,swir2",
    ),
    "output path is a folder": Case(
        lambda s, i, o, p: {"OUTPUT": str(_folder(i / "lst_30m.tif"))},
        r"Output .*lst_30m\.tif is a folder; give a file name inside it",
    ),
    "uncertainty output = LST output": Case(
        lambda s, i, o, p: {"UNCERTAINTY": str(o / "lst_30m.tif")},
        r"The uncertainty output .*out/lst_30m\.tif is the LST output too; give the uncertainty another file "
        r"name, e\.g\. lst_30m_sigma\.tif",
    ),
    "units quoted from the data's real range": Case(
        lambda s, i, o, p: {"INPUT_LST": _unknown_units_with_outliers(s, i)},
        r"LST .*lst_odd\.tif: cannot tell the units of the LST \(values 450\.\.950\)",
    ),
    "scratch folder of a killed run in the output folder": Case(
        lambda s, i, o, p: {"OUTPUT": str(_dead_run_scratch(o) / "lst_30m.tif"), "METHOD": BICUBIC},
        check=within_the_scene_range,
        log="the scratch folder of a run that was stopped before it could clean up",
    ),
    # Widened matrix: what GIS users feed a raster tool.
    "LST as a VRT": Case(
        lambda s, i, o, p: {"INPUT_LST": _translated(s.lst_120m, i / "lst.vrt", "VRT")},
        check=within_the_scene_range,
    ),
    "LST as a Cloud Optimized GeoTIFF": Case(
        lambda s, i, o, p: {"INPUT_LST": _translated(s.lst_120m, i / "lst_cog.tif", "COG")},
        check=within_the_scene_range,
    ),
    "LST inside a zip (/vsizip/)": Case(
        lambda s, i, o, p: {"INPUT_LST": _zipped(s.lst_120m, i / "lst.zip")}, check=within_the_scene_range
    ),
    "guidance stack as a VRT of single-band files": Case(
        lambda s, i, o, p: {"GUIDANCE": [_vrt_stack(s, i)]}, check=within_the_scene_range
    ),
    "LST with stale overviews": Case(
        lambda s, i, o, p: {"INPUT_LST": _stale_overviews(s.lst_120m, i / "lst_ovr.tif", -40.0)},
        check=within_the_scene_range,
    ),
    "guidance with stale overviews": Case(
        lambda s, i, o, p: {"GUIDANCE": [_stale_overviews(s.guidance_30m, i / "guidance_ovr.tif", 5000.0)]},
        check=within_the_scene_range,
    ),
    "paletted LST": Case(
        lambda s, i, o, p: {"INPUT_LST": _paletted(s, i)},
        r"LST .*lst_classes\.tif: band 1 is a paletted band \(a colour table over class numbers\)",
    ),
    "complex LST": Case(
        lambda s, i, o, p: {"INPUT_LST": _encoded_lst(s, i, "lst_complex.tif", 1.0, 0.0, gdal.GDT_CFloat32)},
        r"LST .*lst_complex\.tif: band 1 holds complex numbers \(CFloat32\); give a real-valued band",
    ),
    "Float64 LST and guidance": Case(
        lambda s, i, o, p: {
            "INPUT_LST": _encoded_lst(s, i, "lst_f64.tif", 1.0, 0.0, gdal.GDT_Float64),
            "GUIDANCE": [write_guidance(s, i, "guidance_f64.tif", dtype=gdal.GDT_Float64)],
        },
        check=within_the_scene_range,
    ),
    "LST nodata -3.4e38 (float32 lowest) with holes": Case(
        lambda s, i, o, p: {"INPUT_LST": _huge_nodata_lst(s, i), "METHOD": BICUBIC},
        check=lambda s: _holes_at_corner,
    ),
    "guidance fill -3.4e38 without a nodata value": Case(
        lambda s, i, o, p: {"GUIDANCE": [_guidance_with(s, i, "fill.tif", corner=-3.4028234663852886e38)]},
        r"Guidance .*fill\.tif: band 1 \(blue\) holds values of -3\.4e\+38, a fill value, but no nodata value is "
        r"set; set the band's nodata to -3\.4028235e\+38",
    ),
    "LST with a separate .msk mask": Case(
        lambda s, i, o, p: {"INPUT_LST": _with_msk(s.lst_120m, i / "lst_masked.tif")},
        r"LST .*lst_masked\.tif: band 1's valid pixels are set by a mask \(\.msk file or internal mask\), which "
        r"the engine does not read; turn the mask into a nodata value first, e\.g\. gdalwarp -dstnodata",
    ),
    "guidance with a 7th band of colour interpretation alpha": Case(
        lambda s, i, o, p: {"GUIDANCE": [_with_alpha(s, i)]}, check=within_the_scene_range
    ),
    "LST in netCDF with scale_factor (GetScale)": Case(
        lambda s, i, o, p: {
            "INPUT_LST": _translated(
                _encoded_lst(s, i, "k100.tif", 100.0, 0.0, gdal.GDT_UInt16, 0.01), i / "lst.nc", "netCDF"
            )
        },
        check=within_the_scene_range,
        log="scale 0.01",
    ),
    "LST as a netCDF subdataset (NETCDF:file:variable)": Case(
        lambda s, i, o, p: {"INPUT_LST": _netcdf_subdataset(s, i)}, check=within_the_scene_range
    ),
    "LST georeferenced by GCPs only": Case(
        lambda s, i, o, p: {"INPUT_LST": _gcps_only(s, i)},
        r"LST .*lst_gcps\.tif is georeferenced by 4 ground control points, not on a grid; warp it",
    ),
    "LST with a CRS but no geotransform": Case(
        lambda s, i, o, p: {"INPUT_LST": _no_geotransform(s, i)},
        r"LST .*lst_nogt\.tif has a coordinate reference system but no geotransform",
    ),
    "guidance bands valid in disjoint halves": Case(
        lambda s, i, o, p: {"GUIDANCE": [_disjoint_halves(s, i)], "METHOD": BICUBIC},
        r"Every output pixel would be nodata: the LST .* and the guidance .*halves\.tif have no valid pixel in "
        r"common.*Nothing was written",
    ),
    "guidance UInt16 x10000 with a GDAL scale 0.0001": Case(
        lambda s, i, o, p: {
            "GUIDANCE": [_scaled_guidance(s, i)],
        },
        check=within_the_scene_range,
        log="the band's scale 0.0001 and offset 0, as QGIS shows it, applied",
    ),
    "uncertainty output path is a folder": Case(
        lambda s, i, o, p: {"UNCERTAINTY": str(_folder(i / "sigma.tif"))},
        r"Output .*sigma\.tif is a folder; give a file name inside it",
    ),
    "output name with spaces and accents": Case(
        lambda s, i, o, p: {"OUTPUT": str(o / "température été 30 m.tif"), "METHOD": BICUBIC},
        check=within_the_scene_range,
    ),
}


def _guidance_with(scene, folder, name, nodata=None, corner=None, **bands) -> str:
    """The guidance with the named bands set to one value everywhere, or ``corner`` in band 1's first pixels."""
    values = guidance_values(scene)
    names = guidance_names(scene)
    for band, value in bands.items():
        values[names.index(band)] = value
    if corner is not None:
        values[0, :4, :4] = corner
    return str(
        write_geotiff(folder / name, values, scene.geotransform, scene.crs_wkt, nodata=nodata, names=names)
    )


def _lst_and_emissivity(scene, folder) -> str:
    """A two-band LST: Kelvin, then a broadband emissivity of 0.95-0.99."""
    kelvin = lst_values(scene)
    emissivity = np.linspace(0.95, 0.99, kelvin.size, dtype=np.float32).reshape(kelvin.shape)
    return write_lst(scene, folder, "lst_emis.tif", np.stack([kelvin, emissivity]))


def _encoded_lst(scene, folder, name, factor, add, dtype, scale=None, offset=None) -> str:
    """The LST stored as round(K x factor + add) in ``dtype``, with a GDAL scale/offset when given."""
    values = np.round(lst_values(scene).astype(np.float64) * factor + add)
    path = folder / name
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), values.shape[1], values.shape[0], 1, dtype)
    dataset.SetGeoTransform(coarse_geotransform(scene.geotransform))
    dataset.SetProjection(scene.crs_wkt)
    band = dataset.GetRasterBand(1)
    band.WriteArray(values)
    if scale is not None:
        band.SetScale(scale)
    if offset is not None:
        band.SetOffset(offset)
    dataset = None
    return str(path)


def _unknown_units_with_outliers(scene, folder) -> str:
    """Values 500-900 (no unit fits) and two pixels at 450 and 950 that a percentile would hide."""
    values = np.linspace(500.0, 900.0, 256, dtype=np.float32).reshape(16, 16)
    values[0, 0], values[15, 15] = 450.0, 950.0
    return write_lst(scene, folder, "lst_odd.tif", values)


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _dead_run_scratch(out: Path) -> Path:
    """A scratch folder as a killed run leaves it: files and an unlocked lock file."""
    scratch = out / ".mocolsk-killed"
    scratch.mkdir()
    (scratch / "run.lock").write_text("12345\n")
    (scratch / "lst_kelvin.tif").write_bytes(b"II*\x00")
    return out


def _translated(source, target: Path, driver: str) -> str:
    gdal.Translate(
        str(target), str(source), format=driver, creationOptions=["FORMAT=NC4"] if driver == "netCDF" else []
    )
    return str(target)


def _zipped(source, archive: Path) -> str:
    import zipfile

    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(source, "scene/lst.tif")
    return _layer(f"/vsizip/{archive}/scene/lst.tif")


def _layer(source: str) -> QgsRasterLayer:
    """A raster layer as the dialog passes it (QGIS 3.22's processing.run loads only plain file paths)."""
    layer = QgsRasterLayer(source, "lst")
    assert layer.isValid(), source
    return layer


def _vrt_stack(scene, folder) -> str:
    """Single-band files stacked by gdalbuildvrt -separate, the VRT's bands described."""
    files = []
    for index, name in enumerate(guidance_names(scene)):
        files.append(
            write_guidance(scene, folder, f"single_{name}.tif", guidance_values(scene)[index], names=None)
        )
    vrt = gdal.BuildVRT(str(folder / "stack.vrt"), files, separate=True)
    for index, name in enumerate(guidance_names(scene)):
        vrt.GetRasterBand(index + 1).SetDescription(name)
    vrt = None
    return str(folder / "stack.vrt")


def _stale_overviews(source, target: Path, value: float) -> str:
    """A copy whose overviews (pyramids) hold ``value``: built, then the data changed under them."""
    shutil.copy(source, target)
    dataset = gdal.Open(str(target), gdal.GA_Update)
    dataset.BuildOverviews("NEAREST", [2, 4])
    for index in range(1, dataset.RasterCount + 1):
        band = dataset.GetRasterBand(index)
        for level in range(band.GetOverviewCount()):
            overview = band.GetOverview(level)
            overview.WriteArray(np.full((overview.YSize, overview.XSize), value, np.float32))
    dataset = None
    return str(target)


def _paletted(scene, folder) -> str:
    path = _encoded_lst(scene, folder, "lst_classes.tif", 0.0, 3.0, gdal.GDT_Byte)
    dataset = gdal.Open(path, gdal.GA_Update)
    table = gdal.ColorTable()
    table.SetColorEntry(3, (255, 0, 0, 255))
    dataset.GetRasterBand(1).SetColorTable(table)
    dataset = None
    return path


def _huge_nodata_lst(scene, folder) -> str:
    values = lst_values(scene)
    values[:2, :2] = -3.4028234663852886e38
    return write_lst(scene, folder, "lst_flt_min.tif", values, nodata=-3.4028234663852886e38)


def _holes_at_corner(values, results, messages):
    assert np.all(values[:8, :8] == NODATA)
    assert (values == NODATA).sum() == 64


def _with_msk(source, target: Path) -> str:
    shutil.copy(source, target)
    dataset = gdal.Open(str(target))
    dataset.CreateMaskBand(gdal.GMF_PER_DATASET)
    mask = dataset.GetRasterBand(1).GetMaskBand()
    mask.WriteArray(np.full((dataset.RasterYSize, dataset.RasterXSize), 255, np.uint8))
    dataset = None
    return str(target)


def _with_alpha(scene, folder) -> str:
    values = guidance_values(scene)
    path = folder / "rgba.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), values.shape[2], values.shape[1], 7, gdal.GDT_Float32
    )
    dataset.SetGeoTransform(scene.geotransform)
    dataset.SetProjection(scene.crs_wkt)
    for index, name in enumerate(guidance_names(scene)):
        dataset.GetRasterBand(index + 1).WriteArray(values[index])
        dataset.GetRasterBand(index + 1).SetDescription(name)
    dataset.GetRasterBand(7).WriteArray(np.full(values.shape[1:], 255, np.float32))
    dataset.GetRasterBand(7).SetColorInterpretation(gdal.GCI_AlphaBand)
    dataset = None
    return str(path)


def _netcdf_subdataset(scene, folder) -> str:
    """An LST as the second variable of a two-variable netCDF, named as QGIS names such a layer."""
    path = folder / "two_variables.nc"
    kelvin = lst_values(scene)
    emissivity = np.full(kelvin.shape, 0.97, np.float32)
    for index, (name, values) in enumerate((("emissivity", emissivity), ("lst", kelvin))):
        memory = gdal.GetDriverByName("MEM").Create("", 16, 16, 1, gdal.GDT_Float32)
        memory.SetGeoTransform(coarse_geotransform(scene.geotransform))
        memory.SetProjection(scene.crs_wkt)
        memory.GetRasterBand(1).WriteArray(values)
        memory.GetRasterBand(1).SetMetadataItem("NETCDF_VARNAME", name)
        gdal.Translate(
            str(path), memory, format="netCDF", creationOptions=["APPEND_SUBDATASET=YES"] if index else []
        )
    return _layer(f'NETCDF:"{path}":lst')


def _gcps_only(scene, folder) -> str:
    path = folder / "lst_gcps.tif"
    x0, dx, _, y0, _, dy = coarse_geotransform(scene.geotransform)
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 16, 16, 1, gdal.GDT_Float32)
    gcps = [gdal.GCP(x0 + c * dx, y0 + r * dy, 0.0, c, r) for c, r in ((0, 0), (16, 0), (0, 16), (16, 16))]
    dataset.SetGCPs(gcps, scene.crs_wkt)
    dataset.GetRasterBand(1).WriteArray(lst_values(scene))
    dataset = None
    return str(path)


def _no_geotransform(scene, folder) -> str:
    path = folder / "lst_nogt.tif"
    values = lst_values(scene)
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 16, 16, 1, gdal.GDT_Float32)
    dataset.SetProjection(scene.crs_wkt)
    dataset.GetRasterBand(1).WriteArray(values)
    dataset = None
    return str(path)


def _disjoint_halves(scene, folder) -> str:
    """Blue valid on the left half only, green on the right half only: each band has data, no pixel has all."""
    values = guidance_values(scene)
    values[0, :, 32:] = NODATA
    values[1, :, :32] = NODATA
    return str(
        write_geotiff(
            folder / "halves.tif",
            values,
            scene.geotransform,
            scene.crs_wkt,
            nodata=NODATA,
            names=guidance_names(scene),
        )
    )


def _scaled_guidance(scene, folder) -> str:
    """Reflectance x10000 as UInt16 with the GDAL scale 0.0001 that says so (as Sentinel-2 exports do)."""
    path = folder / "reflectance_scaled.tif"
    write_guidance(scene, folder, path.name, np.round(guidance_values(scene) * 10000), dtype=gdal.GDT_UInt16)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    for index in range(1, dataset.RasterCount + 1):
        dataset.GetRasterBand(index).SetScale(0.0001)
    dataset = None
    return str(path)


def _garbled(path: Path) -> Path:
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    return path


def _empty(path: Path) -> Path:
    path.touch()
    return path


def _moved(geotransform):
    x0, dx, _, y0, _, dy = geotransform
    return (x0 + 15.0, dx, 0.0, y0, 0.0, dy)


def _pixel(geotransform, size_m):
    x0, _, _, y0, _, _ = geotransform
    return (x0, size_m, 0.0, y0, 0.0, -size_m)


def fingerprint(*folders: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folders``, except the .aux.xml statistics QGIS's GDAL provider writes
    beside any raster layer it has loaded (GDAL's PAM cache, not a change to the raster)."""
    return {
        str(path): hashlib.sha256(_without_vrt_statistics(path)).hexdigest()
        for folder in folders
        for path in sorted(Path(folder).rglob("*"))
        if path.is_file() and not path.name.endswith(".aux.xml")
    }


def _without_vrt_statistics(path: Path) -> bytes:
    """A file's bytes; for a VRT, without the statistics and histograms that QGIS has GDAL store inside it
    (its PAM) when it loads the layer, and the source properties GDAL's rewrite drops or adds."""
    data = path.read_bytes()
    if path.suffix.lower() != ".vrt":
        return data
    data = re.sub(rb"\s*<Histograms>.*?</Histograms>", b"", data, flags=re.S)
    data = re.sub(rb'\s*<MDI key="STATISTICS_[A-Z_]+">[^<]*</MDI>', b"", data)
    data = re.sub(rb"\s*<SourceProperties [^>]*/>", b"", data)
    return re.sub(rb"\s*<Metadata>\s*</Metadata>", b"", data)


class RecordingFeedback(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.infos, self.errors = [], []

    def pushInfo(self, info):  # noqa: N802
        self.infos.append(info)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803
        self.errors.append(error)


def base_parameters(scene, output: Path) -> dict:
    return {
        "INPUT_LST": str(scene.lst_120m),
        "GUIDANCE": [str(scene.guidance_30m)],
        "METHOD": MOCOLSK,
        "THREADS": 1,
        "OUTPUT": str(output),
    }


def assert_clear_error(error: QgsProcessingException, expected: str, feedback: RecordingFeedback) -> None:
    message = str(error)
    assert re.search(expected, message, re.S), message
    for text in (message, *feedback.errors):
        assert not any(marker in text for marker in TRACEBACK_MARKERS), text


@pytest.mark.parametrize("case", CASES)
def test_each_bad_input_ends_in_a_clear_error_or_a_correct_output(
    case, mocolsk_provider, sample_scene, tiny_package_x4, tmp_path
):
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    spec = CASES[case]
    parameters = {**base_parameters(sample_scene, out / "lst_30m.tif")}
    parameters.update(spec.make(sample_scene, inputs, out, tiny_package_x4))
    before = fingerprint(sample_scene.folder, inputs, tiny_package_x4.card_path.parent)
    feedback = RecordingFeedback()
    if spec.error is not None:
        with pytest.raises(QgsProcessingException) as caught:
            processing.run(ALGORITHM, parameters, feedback=feedback)
        assert_clear_error(caught.value, spec.error, feedback)
        assert list(out.iterdir()) == []
    else:
        results = processing.run(ALGORITHM, parameters, feedback=feedback)
        output = Path(results["OUTPUT"])
        assert [p.name for p in out.iterdir() if not p.name.endswith(".aux.xml")] == [output.name]
        dataset = gdal.Open(str(output))
        assert dataset.GetDriver().ShortName == {".nc": "netCDF", ".img": "HFA"}.get(output.suffix, "GTiff")
        values = dataset.GetRasterBand(1).ReadAsArray()
        dataset = None
        if spec.check:
            spec.check(sample_scene)(values, results, feedback.infos)
        if spec.log:
            assert any(spec.log in line for line in feedback.infos), feedback.infos
    assert fingerprint(sample_scene.folder, inputs, tiny_package_x4.card_path.parent) == before


@pytest.mark.parametrize("at_percent", [0, 50, 90])
def test_a_cancel_at_the_start_middle_or_end_writes_nothing(
    at_percent, mocolsk_provider, sample_scene, tmp_path
):
    feedback = RecordingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel() if percent >= at_percent else None)
    before = fingerprint(sample_scene.folder)
    with pytest.raises(QgsProcessingException, match="Cancelled: .*no output was written"):
        processing.run(
            ALGORITHM,
            {**base_parameters(sample_scene, tmp_path / "lst.tif"), "TILE_SIZE": 16},
            feedback=feedback,
        )
    assert list(tmp_path.iterdir()) == []
    assert fingerprint(sample_scene.folder) == before


def mount_tmpfs(folder: Path, options: str) -> None:
    """A small tmpfs at ``folder`` (root only); skips the test with the reason where it cannot be mounted."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full or read-only disk is simulated with a tmpfs, which needs root")
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    folders = []

    def mount(size_kib: int, read_only: bool = False) -> Path:
        folder = tmp_path / f"disk{len(folders)}"
        mount_tmpfs(folder, f"size={size_kib}k" + (",ro" if read_only else ""))
        folders.append(folder)
        return folder

    yield mount
    for folder in folders:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("size_kib", [8, 24, 48, 64])
def test_a_full_disk_is_an_error_naming_the_output_folder_and_leaves_nothing(
    size_kib, small_disk, mocolsk_provider, sample_scene
):
    """The scratch files and the output of a 64 x 64 px run need about 70 KiB: these sizes run out at
    different steps (scratch folder, conversion, warp, tiles, final write)."""
    disk = small_disk(size_kib)
    feedback = RecordingFeedback()
    parameters = {**base_parameters(sample_scene, disk / "lst_30m.tif"), "METHOD": BICUBIC, "TILE_SIZE": 16}
    with pytest.raises(QgsProcessingException) as caught:
        processing.run(ALGORITHM, parameters, feedback=feedback)
    assert_clear_error(
        caught.value,
        rf"No space left on the disk of the output folder {re.escape(str(disk))} .*Free some space there, or "
        "choose an output in another folder",
        feedback,
    )
    assert list(disk.iterdir()) == []


def test_a_read_only_output_folder_is_an_error_saying_to_choose_another(
    small_disk, mocolsk_provider, sample_scene
):
    disk = small_disk(64, read_only=True)
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException) as caught:
        processing.run(ALGORITHM, base_parameters(sample_scene, disk / "lst_30m.tif"), feedback=feedback)
    assert_clear_error(
        caught.value, r"Permission denied writing lst_30m\.tif .*choose a folder you can write", feedback
    )


MISSING_RUNTIME_RUN = """
import sys
sys.modules["onnxruntime"] = None  # a real ImportError for every `import onnxruntime` from here on
from qgis.core import QgsApplication, QgsProcessingException
app = QgsApplication([], False)
app.initQgis()
sys.path.append("/usr/share/qgis/python/plugins")
from processing.core.Processing import Processing
Processing.initialize()
import processing
import mocolsk_qgis
from qgis.utils import iface
plugin = mocolsk_qgis.classFactory(iface)
plugin.initProcessing()
try:
    processing.run("mocolsk:downscalelst", {"INPUT_LST": sys.argv[1], "GUIDANCE": [sys.argv[2]], "METHOD": 0,
                   "OUTPUT": sys.argv[3]})
except QgsProcessingException as error:
    print("MESSAGE:", error)
"""


def test_missing_onnxruntime_is_an_install_command_not_a_traceback(sample_scene, tmp_path):
    output = tmp_path / "out" / "lst_30m.tif"
    output.parent.mkdir()
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            MISSING_RUNTIME_RUN,
            str(sample_scene.lst_120m),
            str(sample_scene.guidance_30m),
            str(output),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        "MESSAGE: ONNX Runtime is not installed, so model 'mocolsk-x4-landsat-light' cannot run"
        in completed.stdout
    ), completed.stdout + completed.stderr
    assert "Plugins > MoCoLSK > Install runtime" in completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr
    assert list(output.parent.iterdir()) == []


def test_the_output_dialog_offers_the_formats_the_engine_writes_geotiff_first(mocolsk_provider):
    from qgis.core import QgsApplication

    from engine.raster import output_formats

    destination = QgsApplication.processingRegistry().algorithmById(ALGORITHM).parameterDefinition("OUTPUT")
    offered = destination.supportedOutputRasterLayerExtensions()
    assert offered[0] == "tif" and destination.defaultFileExtension() == "tif"
    assert offered == [extension.lstrip(".") for extension in output_formats()]
    assert {"nc", "img"} <= set(offered) and "vrt" not in offered and "png" not in offered
    assert "*.nc" in destination.createFileFilter()

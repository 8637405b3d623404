"""Landsat 8 Collection 2 Level-2, end to end through the engine: SR_B2..SR_B7 with negative water
reflectance and fill 0 -> Build guidance stack -> Downscale LST with every default, for every bundled
package (the contract between the two), and with indices a raster calculator made or none at all."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from engine.guidance_stack import build_guidance_stack
from engine.package import load_package
from engine.pipeline import DownscaleRequest, downscale_scene
from tests.c2l2 import C2Scene, write_c2l2_scene
from tests.conftest import REPO

gdal.UseExceptions()

BUNDLED_CARDS = sorted((REPO / "resources" / "models").glob("*.json"))
SIX_BANDS = ["blue", "green", "red", "nir", "swir1", "swir2"]


@pytest.fixture(scope="module")
def c2_scene(tmp_path_factory) -> C2Scene:
    return write_c2l2_scene(tmp_path_factory.mktemp("c2l2"))


def downscale(lst_path, guidance_path, output, **overrides):
    lines: list[str] = []
    request = DownscaleRequest(
        lst_path=str(lst_path), guidance_paths=[str(guidance_path)], output_path=str(output), **overrides
    )
    return downscale_scene(request, log=lines.append), lines


def read(path):
    dataset = gdal.Open(str(path))
    band = dataset.GetRasterBand(1)
    values = band.ReadAsArray().astype(np.float64)
    return np.where(values == band.GetNoDataValue(), np.nan, values)


def assert_plausible_kelvin(output, scene: C2Scene):
    """Every pixel with guidance and LST has a temperature within the scene's range; the lake keeps its
    temperature; the fill corner stays nodata."""
    kelvin = read(output)
    land_low, land_high = np.nanmin(scene.land_kelvin), np.nanmax(scene.land_kelvin)
    valid = np.isfinite(kelvin)
    assert valid.mean() > 0.9
    assert land_low - 3 < np.nanmin(kelvin) and np.nanmax(kelvin) < land_high + 3
    assert not valid[scene.fill & (np.add.outer(np.arange(160), np.arange(160)) < 20)].any()
    inner_lake = scene.water & np.roll(scene.water, 8, 0) & np.roll(scene.water, -8, 0)
    assert valid[inner_lake].all()
    assert abs(np.mean(kelvin[inner_lake]) - 294.0) < 1.5


@pytest.mark.parametrize("card_path", BUNDLED_CARDS, ids=lambda path: path.stem)
def test_every_stack_built_from_c2_sr_with_negative_water_passes_downscale_with_its_bundled_package(
    c2_scene, card_path, tmp_path
):
    card = load_package(card_path, verify=False).card
    messages: list[str] = []
    stack = build_guidance_stack(
        tmp_path / "guidance.tif",
        card.guidance_band_names,
        c2_scene.sr,
        expected_units=[band.units for band in card.guidance_bands],
        log=messages.append,
    )
    assert any(m.startswith("Index ndvi (") and "with negative reflectance" in m for m in messages)
    # TIRS senses 100 m, which x2 cannot sharpen (the engine would refuse, naming x4): to run the x2
    # package's checks on this stack, its 60 m copy is declared to be the LST's own pixel.
    native = {"native_pixel_m": 60.0} if card.scale == 2 else {}
    result, lines = downscale(
        c2_scene.st_b10_averaged(card.scale),
        stack,
        tmp_path / "lst.tif",
        threads=1,
        model=card.name,
        **native,
    )
    assert (result.model_name, result.scale) == (card.name, card.scale)
    assert result.lst_units == "landsat_c2_st_dn"
    assert not any(line.startswith("Index ") for line in lines)  # the stack's indices are already bounded
    assert_plausible_kelvin(result.output_path, c2_scene)


@pytest.mark.parametrize("method", ["mocolsk", "tsharp"])
def test_indices_a_raster_calculator_made_from_c2_sr_are_clipped_and_the_run_succeeds(
    c2_scene, method, tmp_path
):
    reflectance = {
        name: read(path) * 0.0000275 - 0.2 for name, path in c2_scene.sr.items()
    }  # fill 0 read as NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (reflectance["nir"] - reflectance["red"]) / (reflectance["nir"] + reflectance["red"])
        ndwi = (reflectance["green"] - reflectance["nir"]) / (reflectance["green"] + reflectance["nir"])
    assert np.nanmin(ndvi) < -100 and np.nanmax(ndwi) > 2
    stack = tmp_path / "calculator.tif"
    bands = [reflectance[name] for name in SIX_BANDS] + [ndvi, ndwi]
    dataset = gdal.GetDriverByName("GTiff").Create(str(stack), 160, 160, len(bands), gdal.GDT_Float32)
    dataset.SetGeoTransform(c2_scene.geotransform)
    dataset.SetProjection(c2_scene.crs_wkt)
    for index, (name, values) in enumerate(zip([*SIX_BANDS, "ndvi", "ndwi"], bands), 1):
        dataset.GetRasterBand(index).SetDescription(name)
        dataset.GetRasterBand(index).SetNoDataValue(float("nan"))
        dataset.GetRasterBand(index).WriteArray(values)
    dataset = None
    result, lines = downscale(
        c2_scene.st_b10_averaged(4), stack, tmp_path / "lst.tif", method=method, threads=1
    )
    assert any(line.startswith("Index ndvi (") and "clipped to -1..1" in line for line in lines)
    assert_plausible_kelvin(result.output_path, c2_scene)


def test_tsharp_uses_an_ndvi_scaled_x10000_as_it_is_since_its_fit_does_not_depend_on_the_scale(
    c2_scene, tmp_path
):
    stack = build_guidance_stack(tmp_path / "ndvi.tif", ["ndvi"], c2_scene.sr)
    scaled = tmp_path / "ndvi_x10000.tif"
    gdal.Translate(str(scaled), str(stack), scaleParams=[[-1, 1, -10000, 10000]], outputType=gdal.GDT_Float32)
    unscaled, _ = downscale(
        c2_scene.st_b10_averaged(4), stack, tmp_path / "a.tif", method="tsharp", threads=1
    )
    result, lines = downscale(
        c2_scene.st_b10_averaged(4), scaled, tmp_path / "b.tif", method="tsharp", threads=1
    )
    assert any(line.startswith("Index ndvi: only") and "used as it is" in line for line in lines)
    np.testing.assert_allclose(read(result.output_path), read(unscaled.output_path), atol=0.01)


def test_indices_left_out_of_the_stack_are_derived_bounded_and_the_run_succeeds(c2_scene, tmp_path):
    stack = build_guidance_stack(tmp_path / "six.tif", SIX_BANDS, c2_scene.sr)
    result, lines = downscale(c2_scene.st_b10_averaged(4), stack, tmp_path / "lst.tif", threads=1)
    derived = [line for line in lines if line.startswith("Index nd")]
    assert [line.split(",")[0] for line in derived] == ["Index ndvi", "Index ndwi"]
    assert all("derived from" in line and "bounded to -1..1" in line for line in derived)
    assert_plausible_kelvin(result.output_path, c2_scene)

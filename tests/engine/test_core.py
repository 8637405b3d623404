"""The array core (engine.core): what the scene pipeline computes, on numpy arrays alone, so that
training and a machine without GDAL run exactly what users run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from engine.bands import map_bands
from engine.classic import create_sharpener
from engine.core import ArrayMethod, NetworkSharpener, downscale_arrays
from engine.inference import Downscaler
from engine.masks import expand

from .conftest import GUIDANCE_BANDS, GUIDANCE_NODATA, read, run_downscale

SCALE = 4


def test_the_core_and_the_network_backend_import_without_gdal():
    code = "import sys; sys.modules['osgeo'] = None; import engine.core, engine.inference; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def scene_arrays(scene, required=None):
    """The scene's coarse LST and its guidance in the order a method needs (all bands, or ``required``)."""
    valid = (scene.guidance != GUIDANCE_NODATA).all(axis=0)
    guidance = scene.guidance
    if required:
        guidance, valid = map_bands(required, list(GUIDANCE_BANDS), "Guidance", "test").compose(
            guidance, valid
        )
    return scene.lst_kelvin, np.where(valid, guidance, np.nan)


@pytest.mark.parametrize(("method", "uncertainty"), [("bicubic", False), ("tsharp", False), ("dms", True)])
def test_classic_methods_on_arrays_equal_the_scene_pipelines_output(
    method, uncertainty, small_scene, tmp_path
):
    sigma_path = str(tmp_path / "sigma.tif") if uncertainty else None
    result, _ = run_downscale(
        small_scene, tmp_path / "out.tif", method=method, tile_size_px=48, uncertainty_path=sigma_path
    )
    required = ("ndvi",) if method == "tsharp" else None
    coarse, guidance = scene_arrays(small_scene, required)
    arrays = downscale_arrays(
        ArrayMethod(create_sharpener(method, SCALE, len(guidance))),
        coarse,
        guidance,
        tile_size_px=48,
        uncertainty=uncertainty,
    )
    written = read(result.output_path)
    np.testing.assert_allclose(np.where(written == -9999, np.nan, written), arrays.fine_kelvin, atol=1e-4)
    assert arrays.tiles == result.tiles > 1
    if uncertainty:
        sigma = read(result.uncertainty_path)
        np.testing.assert_allclose(np.where(sigma == -9999, np.nan, sigma), arrays.sigma_kelvin, atol=1e-4)


def test_mocolsk_on_arrays_equals_the_scene_pipelines_output_and_counts_the_same_clipping(
    small_scene, tmp_path
):
    result, _ = run_downscale(small_scene, tmp_path / "out.tif", method="mocolsk", tile_size_px=64)
    downscaler = Downscaler(result.model_name, backend="onnxruntime", device="cpu", threads=1)
    coarse, guidance = scene_arrays(small_scene, downscaler.guidance_band_names)
    arrays = downscale_arrays(ArrayMethod(NetworkSharpener(downscaler)), coarse, guidance, tile_size_px=64)
    written = read(result.output_path)
    np.testing.assert_allclose(np.where(written == -9999, np.nan, written), arrays.fine_kelvin, atol=1e-4)
    assert arrays.stats.detail_clipped_px == result.detail_clipped_px


def test_arrays_with_masked_pixels_give_output_only_under_valid_lst_and_guidance(small_scene):
    coarse, guidance = scene_arrays(small_scene)
    coarse = coarse.copy()
    coarse[3:6, 4:9] = np.nan
    guidance = guidance.copy()
    guidance[:, 50:60, 10:30] = np.nan
    arrays = downscale_arrays(ArrayMethod(create_sharpener("bicubic", SCALE, 0)), coarse, guidance[:0])
    expected = expand(np.isfinite(coarse), SCALE)[: guidance.shape[1], : guidance.shape[2]]
    np.testing.assert_array_equal(np.isfinite(arrays.fine_kelvin), expected)
    with_guidance = downscale_arrays(
        ArrayMethod(create_sharpener("dms", SCALE, len(guidance))), coarse, guidance
    )
    np.testing.assert_array_equal(
        np.isfinite(with_guidance.fine_kelvin), expected & np.isfinite(guidance).all(0)
    )


def test_arrays_not_on_the_scales_grid_are_refused(small_scene):
    coarse, guidance = scene_arrays(small_scene)
    with pytest.raises(ValueError, match="not the x4 grid"):
        downscale_arrays(ArrayMethod(create_sharpener("bicubic", SCALE, 0)), coarse[:-2], guidance[:0])

"""Coarse-pixel conservation: the output averaged back onto the coarse grid reproduces the
input LST, and the largest remaining difference is reported."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from engine.pipeline import OUTPUT_NODATA

from .conftest import coarse_means, read, run_downscale

SCALE = 4


def largest_coarse_difference(result, scene):
    fine = read(result.output_path).astype(np.float64)
    means = coarse_means(fine, fine != OUTPUT_NODATA, SCALE, scene.lst_kelvin.shape)
    return float(np.nanmax(np.abs(means - scene.lst_kelvin)))


@pytest.mark.parametrize("method", ["mocolsk", "dms"])
def test_output_averages_back_to_the_input_lst(method, scene, tiny_package_x4, tmp_path):
    model = str(tiny_package_x4.card_path) if method == "mocolsk" else None
    result, lines = run_downscale(scene, tmp_path / "out.tif", method=method, model=model, tile_size_px=128)
    measured = largest_coarse_difference(result, scene)
    assert measured < 1e-3
    assert result.max_conservation_residual_k == pytest.approx(measured, abs=1e-4)
    dataset = gdal.Open(result.output_path)
    assert float(dataset.GetMetadata()["MOCOLSK_MAX_CONSERVATION_RESIDUAL_K"]) == pytest.approx(
        measured, abs=1e-4
    )
    assert any(
        line.startswith("Largest difference between the output averaged onto the coarse grid")
        for line in lines
    )


def test_without_correction_the_network_output_drifts_and_the_drift_is_reported(
    scene, tiny_package_x4, tmp_path
):
    result, lines = run_downscale(
        scene,
        tmp_path / "out.tif",
        method="mocolsk",
        model=str(tiny_package_x4.card_path),
        conserve_coarse_means=False,
    )
    measured = largest_coarse_difference(result, scene)
    assert measured > 0.05
    assert result.max_conservation_residual_k == pytest.approx(measured, abs=1e-4)
    assert gdal.Open(result.output_path).GetMetadata()["MOCOLSK_CONSERVE_COARSE_MEANS"] == "no"
    assert any("(coarse-pixel conservation off)" in line for line in lines)

"""Tiling: tiles cover the scene with blend weights that sum to one, and a scene processed
in many tiles matches the same scene processed as one tile."""

from __future__ import annotations

import numpy as np
import pytest

from engine.pipeline import OUTPUT_NODATA
from engine.tiling import plan_tiles

from .conftest import read, run_downscale

TOLERANCE_K = 0.05


@pytest.mark.parametrize(
    "width, height, core, halo", [(72, 78, 16, 24), (10, 7, 4, 2), (5, 5, 64, 24), (33, 17, 8, 8)]
)
def test_tile_weights_form_a_partition_of_unity(width, height, core, halo):
    total = np.zeros((height, width))
    for tile in plan_tiles(width, height, core, halo):
        rows, cols = tile.rows, tile.cols
        assert (
            rows.read_start <= rows.write_start <= rows.start < rows.stop <= rows.write_stop <= rows.read_stop
        )
        assert (
            cols.read_start <= cols.write_start <= cols.start < cols.stop <= cols.write_stop <= cols.read_stop
        )
        total[rows.write_start : rows.write_stop, cols.write_start : cols.write_stop] += tile.weights()
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


def test_blend_weights_ramp_smoothly_across_a_tile_border():
    first, second = plan_tiles(40, 1, 20, 8)
    weights = first.cols.weights()
    assert weights[0] == 1.0 and np.all(np.diff(weights) <= 0) and weights[-1] < 0.05
    assert np.abs(np.diff(weights)).max() < 0.25


@pytest.mark.parametrize("method", ["mocolsk", "bicubic", "tsharp"])
def test_many_tiles_match_one_tile(method, scene, detailed_package_x4, tmp_path):
    """The network pools over the whole tile (channel attention, MCWG pyramid pooling), so
    tiles cannot match exactly; the halo and the blending keep the difference small."""
    model = str(detailed_package_x4.card_path) if method == "mocolsk" else None
    one, _ = run_downscale(scene, tmp_path / "one.tif", method=method, model=model, tile_size_px=2048)
    many, lines = run_downscale(scene, tmp_path / "many.tif", method=method, model=model, tile_size_px=64)
    assert (one.tiles, many.tiles) == (1, 25)
    a, b = read(one.output_path), read(many.output_path)
    np.testing.assert_array_equal(a == OUTPUT_NODATA, b == OUTPUT_NODATA)
    valid = a != OUTPUT_NODATA
    difference = np.abs(a[valid].astype(np.float64) - b[valid])
    print(
        f"{method}: one tile vs 25 tiles, max |difference| {difference.max():.5f} K, mean "
        f"{difference.mean():.6f} K"
    )
    assert difference.max() <= TOLERANCE_K

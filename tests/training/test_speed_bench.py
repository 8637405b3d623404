"""`make bench`'s whole-scene figures: the matmul peak as the best of every multiply timed in the
process, medians with their spread, the gdalwarp ratio per size and the model's proxy scene."""

from __future__ import annotations

import statistics

import pytest

from training.bench import full
from training.bench.measure import MatmulPeak, spread


def test_the_peak_is_the_best_multiply_so_far_and_never_drops(monkeypatch):
    rates = iter([80.0, 170.0, 60.0])
    monkeypatch.setattr("training.bench.measure.measure_peak_gflops", lambda size, repeats: next(rates))
    peak = MatmulPeak()
    assert [peak.sample(4) for _ in range(3)] == [80.0, 170.0, 170.0]
    assert "best of 12 multiplies" in peak.describe()


def test_repeated_timings_are_reported_as_median_and_range():
    assert spread([3.0, 1.0, 2.0, 10.0]) == "2.50 (1.00-10.00)"


def test_the_full_scene_is_projected_from_the_proxy_by_tile_count():
    assert full.scene_tiles(2048) == (16, 16 * 704**2)
    assert full.scene_tiles(7904)[0] == 256


def test_the_gdalwarp_ratio_times_both_at_every_size_and_compares_medians():
    lines = []
    rows = full.gdalwarp_ratio((64, 128), repeats=2, log=lines.append)
    assert [row["size_px"] for row in rows] == [64, 128]
    for row in rows:
        assert len(row["gdalwarp_s"]) == len(row["pipeline_s"]) == 2
        assert row["ratio"] == pytest.approx(
            statistics.median(row["pipeline_s"]) / statistics.median(row["gdalwarp_s"])
        )
    assert sum(line.startswith("| 64 | 8 |") or line.startswith("| 128 | 8 |") for line in lines) == 2


def test_the_model_proxy_reports_rate_fraction_of_peak_and_the_full_scene_time():
    lines = []
    result = full.model_scene_rate(256, repeats=1, log=lines.append)
    assert len(result["seconds"]) == 1 and result["mpx_per_s"] == pytest.approx(
        256**2 / result["seconds"][0] / 1e6
    )
    assert 0 < result["fraction_of_peak"] < 1 and result["peak_gflops"] > 0
    tiles, _ = full.scene_tiles(256)
    assert result["full_scene_s"] == pytest.approx(result["seconds"][0] * 256 / tiles)
    assert "counting the halos' work" in lines[-1] and "best of" in lines[-1]

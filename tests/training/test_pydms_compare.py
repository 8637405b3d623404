"""The pyDMS comparison script: skipped with instructions when pyDMS is absent, and its table."""

from __future__ import annotations

import sys
from unittest.mock import patch

from training.bench.pydms_compare import format_table, main
from training.scenes import BandInfo, Scene


def test_without_pydms_the_comparison_says_how_to_install_it_and_succeeds(capsys):
    with patch.dict(sys.modules, {"pyDMS": None, "pyDMS.pyDMS": None}):
        assert main(["--scales", "4"]) == 0
    assert "pyDMS is not importable" in capsys.readouterr().out


def test_the_table_gives_each_method_per_scene_and_the_ratio_to_the_best_pydms():
    import numpy as np

    scene = Scene(
        "site-a",
        np.zeros((8, 8), np.float32),
        np.zeros((1, 8, 8), np.float32),
        (BandInfo("red", "reflectance"),),
        pixel_size_m=30.0,
        native_pixel_m=30.0,
    )
    rmse = {"bicubic": 1.0, "dms": 0.8, "pydms": 0.9, "pydms15": 0.85}
    result = {
        "per_scene": {"site-a": rmse},
        "mean": rmse,
        "pooled": rmse,
        "s_per_mpx": dict.fromkeys(rmse, 1.0),
        "left_out": {"site-b": "too few clear coarse pixels"},
    }
    table = format_table({4: result}, {4: [scene]}, 15)
    assert "| DMS-style (engine.classic) | 0.800 | 0.800 | 0.800 | 1.0 |" in table
    assert "best pyDMS (pyDMS, 15-px windows): mean 0.941" in table
    assert "Left out at x4: site-b (too few clear coarse pixels)" in table

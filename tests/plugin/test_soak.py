"""200 consecutive Downscale LST runs in one QGIS process, methods mixed and some failing on purpose:
memory stays flat and nothing is left behind (files, scratch folders, open rasters)."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from .conftest import coarse_geotransform, write_geotiff

ALGORITHM = "mocolsk:downscalelst"
MOCOLSK, BICUBIC, TSHARP, DMS = 0, 1, 2, 3
RUNS, WARM_UP_RUNS = 200, 20
MAX_RSS_GROWTH = 0.10


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_files_under(*folders: Path) -> list[str]:
    opened = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if any(target.startswith(str(folder)) for folder in folders):
            opened.append(target)
    return opened


def run_plan(scene, celsius_lst: str) -> list[tuple[dict, bool]]:
    """(parameter overrides, should succeed) for each run: the four methods and two failures, in turn."""
    kinds = [
        ({"METHOD": MOCOLSK}, True),
        ({"METHOD": BICUBIC}, True),
        ({"METHOD": TSHARP}, True),
        ({"METHOD": DMS}, True),
        ({"METHOD": BICUBIC, "INPUT_LST": celsius_lst}, False),
        ({"METHOD": MOCOLSK, "GUIDANCE_BAND_NAMES": "a,b,c,d,e,f"}, False),
    ]
    return [kinds[i % len(kinds)] for i in range(RUNS)]


def test_two_hundred_runs_keep_memory_flat_and_leave_nothing_behind(mocolsk_provider, sample_scene, tmp_path):
    lst = gdal.Open(str(sample_scene.lst_120m)).ReadAsArray().astype(np.float32)
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    celsius = write_geotiff(
        inputs / "lst_celsius.tif",
        lst - 273.15,
        coarse_geotransform(sample_scene.geotransform),
        sample_scene.crs_wkt,
        nodata=-9999.0,
        unit="K",
    )
    failures = 0
    baseline = None
    # Other tests of the session may hold files of the shared scene open; only this test's count.
    open_before = set(open_files_under(out, inputs, sample_scene.folder))
    plan = run_plan(sample_scene, str(celsius))
    for index, (overrides, succeeds) in enumerate(plan):
        if index == WARM_UP_RUNS:
            gc.collect()
            baseline = resident_bytes()
        output = out / f"run_{index:03d}.tif"
        parameters = {
            "INPUT_LST": str(sample_scene.lst_120m),
            "GUIDANCE": [str(sample_scene.guidance_30m)],
            "THREADS": 1,
            "OUTPUT": str(output),
            **overrides,
        }
        if succeeds:
            processing.run(ALGORITHM, parameters, feedback=QgsProcessingFeedback())
            assert output.is_file()
            output.unlink()
        else:
            with pytest.raises(QgsProcessingException):
                processing.run(ALGORITHM, parameters, feedback=QgsProcessingFeedback())
            failures += 1
        assert list(out.iterdir()) == [], f"run {index} left {list(out.iterdir())}"
    gc.collect()
    growth = resident_bytes() / baseline - 1
    assert failures == sum(not succeeds for _, succeeds in plan) > 0
    print(
        f"resident memory grew {growth:.2%} over {RUNS - WARM_UP_RUNS} runs after {WARM_UP_RUNS} warm-up runs"
    )
    assert growth < MAX_RSS_GROWTH, f"resident memory grew {growth:.1%} over {RUNS - WARM_UP_RUNS} runs"
    assert set(open_files_under(out, inputs, sample_scene.folder)) - open_before == set()

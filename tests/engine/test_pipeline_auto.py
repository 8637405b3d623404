"""Method "auto": every candidate method rebuilds the scene's own LST from a copy coarsened once
more, and the one closest to it runs on the scene; too small a scene keeps the default."""

import re

import numpy as np
import pytest

from .conftest import make_scene, read, run_downscale

ROWS, COLS = slice(40, 168), slice(60, 156)


@pytest.fixture(scope="module")
def x2_scene(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("auto_x2"), scale=2)


def self_check_scores(result) -> dict[str, float]:
    return {m: float(v) for m, v in re.findall(r"(\w+) (\d+\.\d+) K", result.self_check)}


def test_auto_runs_the_method_whose_self_check_rmse_is_lowest_and_reports_every_score(x2_scene, tmp_path):
    result, lines = run_downscale(x2_scene, tmp_path / "auto.tif", method="auto")
    scores = self_check_scores(result)
    assert set(scores) == {"blend", "mocolsk", "bicubic", "tsharp", "dms"}
    assert result.method == min(scores, key=scores.get)
    assert any(line.startswith(f"Auto: {result.method} (lowest RMSE") for line in lines)
    direct, _ = run_downscale(x2_scene, tmp_path / "direct.tif", method=result.method)
    np.testing.assert_allclose(read(tmp_path / "auto.tif"), read(tmp_path / "direct.tif"), atol=1e-4)
    assert direct.scale == result.scale == 2


def test_auto_follows_the_data_an_lst_linear_in_ndvi_is_sharpened_by_a_regression(x2_scene, tmp_path):
    guidance = x2_scene.guidance
    red, nir = guidance[2], guidance[3]
    valid = (red > 0) & (nir > 0)
    ndvi = np.where(valid, (nir - red) / np.where(valid, nir + red, 1.0), 0.0)
    fine = 310.0 - 25.0 * ndvi
    h, w = fine.shape[0] // 2, fine.shape[1] // 2
    coarse = fine[: 2 * h, : 2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3)).astype(np.float32)
    lst = x2_scene.write_lst("lst_ndvi.tif", coarse, unit="K")
    result, _ = run_downscale(x2_scene, tmp_path / "auto.tif", method="auto", lst_path=lst)
    scores = self_check_scores(result)
    assert result.method in ("tsharp", "dms")
    assert scores[result.method] < 0.5 * scores["bicubic"]


def test_auto_keeps_the_blend_when_the_scene_is_too_small_to_check(tmp_path):
    tiny = make_scene(tmp_path / "tiny", rows=slice(0, 96), cols=slice(0, 96), scale=8)
    result, lines = run_downscale(tiny, tmp_path / "auto.tif", method="auto")
    assert result.method == "blend"
    assert "fewer than 16" in result.self_check and "the default for this scale" in result.self_check


def test_auto_with_an_uncertainty_output_compares_only_methods_that_write_one(x2_scene, tmp_path):
    result, _ = run_downscale(
        x2_scene, tmp_path / "auto.tif", method="auto", uncertainty_path=str(tmp_path / "sigma.tif")
    )
    assert set(self_check_scores(result)) == {"blend", "mocolsk", "dms"}
    assert result.method in ("blend", "mocolsk", "dms") and (tmp_path / "sigma.tif").is_file()


def test_auto_leaves_nothing_of_its_self_check_beside_the_output(x2_scene, tmp_path):
    run_downscale(x2_scene, tmp_path / "auto.tif", method="auto")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auto.tif"]


def test_auto_on_a_ratio_no_bundled_package_matches_compares_every_method_on_the_coarser_grid(tmp_path):
    """x3 (90 m over 30 m): MoCoLSK runs x4 on the coarser 120 m grid, and so do the classic methods it is
    compared with, so that the method chosen runs on the grid the self-check scored."""
    x3 = make_scene(tmp_path / "x3", ROWS, COLS, scale=3)
    result, _ = run_downscale(x3, tmp_path / "auto.tif", method="auto")
    assert {"mocolsk", "blend"} <= set(self_check_scores(result)) and result.scale == 4


def test_auto_on_a_ratio_that_needs_a_cascade_chooses_among_the_classic_methods(tmp_path):
    x32 = make_scene(tmp_path / "x32", scale=32)
    result, lines = run_downscale(x32, tmp_path / "auto.tif", method="auto")
    assert result.method in ("bicubic", "tsharp", "dms") and result.scale == 32
    assert any(
        line.startswith("Auto: mocolsk cannot run on these inputs") and "needs a cascade" in line
        for line in lines
    )
    assert not {"mocolsk", "blend"} & set(self_check_scores(result))

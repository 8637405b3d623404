"""The unseen-scene benchmark: the two in-grid views share one run; the native-pixel view of a
TM scene at x4 is exact by conservation (its 120 m coarse pixel is the native one), not at x8;
auto's pick is read off its scores; the blend never uses weights fitted on its own site."""

from __future__ import annotations

import numpy as np
import pytest

from engine.package import bundled_packages, load_package
from training.bench.unseen import auto_record, fold_methods, ratio_text, score_scene, unseen_scenes
from training.pipeline_runs import PipelineMethod
from training.protocol import SceneErrors


def test_an_in_grid_run_judged_at_tms_native_pixel_is_exact_at_x4_and_not_at_x8(l5_scene):
    methods = {"bicubic": PipelineMethod("bicubic"), "dms": PipelineMethod("dms")}
    at_x4 = score_scene(l5_scene, 4, methods)
    assert set(at_x4) == {"native", "ingrid", "ingrid_native"}
    assert at_x4["ingrid_native"].rmse("bicubic") < 1e-3 and at_x4["ingrid_native"].rmse("dms") < 1e-3
    assert at_x4["ingrid"].rmse("bicubic") > 0.05
    assert score_scene(l5_scene, 8, methods)["ingrid_native"].rmse("dms") > 0.01


def test_auto_is_credited_with_the_method_whose_score_it_matches():
    sse = {"blend": np.array([4.0]), "mocolsk": np.array([9.0]), "bicubic": np.array([1.0])}
    sse |= {"tsharp": np.array([16.0]), "dms": np.array([25.0]), "auto": np.array([4.0])}
    record = auto_record([SceneErrors("s", "native", "", 4, sse, np.array([1]))])
    assert record["per_scene"]["s"]["chosen"] == "blend" and record["per_scene"]["s"]["best"] == "bicubic"
    assert record["picked_the_winner"] == 0


def test_ratios_of_exact_reconstructions_are_not_divided():
    assert ratio_text(0.0, 0.0) == "all exact" and ratio_text(0.5, 0.25) == "2.00"


def test_every_scene_is_scored_with_a_blend_fitted_without_its_site(tmp_path):
    scenes, sites = unseen_scenes(4)
    assert len(scenes) >= 10 and len(set(sites[s.name] for s in scenes)) >= 8
    methods = fold_methods(4, scenes[0].name, tmp_path)
    fold = load_package(methods["blend"].model).card.blend["weights"]
    bundled = load_package(bundled_packages()["mocolsk-x4-landsat-light"]).card
    assert fold == bundled.blend["leave_site_out_weights"][scenes[0].name] != bundled.blend["weights"]
    delivered = load_package(methods["blend"].model).card.blend["delivered_weights"]
    assert delivered == bundled.blend["leave_site_out_delivered_weights"][scenes[0].name]
    assert methods["auto"].model == methods["blend"].model and methods["mocolsk"].model is None
    with pytest.raises(ValueError, match="no leave-site-out blend weights"):
        fold_methods(4, "a scene never fitted", tmp_path)

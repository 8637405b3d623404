"""Classic sharpeners, each checked on the real Landsat 5 scene against its defining property."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from engine.classic import (
    CoarseSamples,
    Dms,
    DmsSettings,
    Tsharp,
    bicubic,
    coarse_samples,
    fractional_cover,
    homogeneity_weights,
    local_weight,
)
from engine.conservation import conserve_coarse_means, max_abs_residual
from engine.masks import block_mean
from engine.metrics import rmse
from engine.trees import ForestSettings, fit_forest

from .conftest import GUIDANCE_BANDS

SCALE = 4


@pytest.fixture(scope="module")
def arrays(scene):
    """Real coarse LST and guidance, cropped to whole coarse pixels: (lst, guidance, valid)."""
    h, w = scene.lst_kelvin.shape
    guidance = scene.guidance[:, : h * SCALE, : w * SCALE].astype(np.float64)
    valid = (guidance > 0).all(axis=0)
    return scene.lst_kelvin.astype(np.float64), guidance, valid


def ndvi_of(guidance):
    red, nir = guidance[list(GUIDANCE_BANDS).index("red")], guidance[list(GUIDANCE_BANDS).index("nir")]
    return (nir - red) / (nir + red)


def test_bicubic_equals_gdal_cubic_resampling_inside_the_scene(scene, tmp_path):
    lst = scene.lst_kelvin
    h, w = lst.shape
    gt = scene.coarse_geotransform
    fine = gdal.Warp(
        str(tmp_path / "cubic.tif"),
        scene.lst_path,
        width=w * SCALE,
        height=h * SCALE,
        outputBounds=(gt[0], gt[3] + gt[5] * h, gt[0] + gt[1] * w, gt[3]),
        resampleAlg="cubic",
    ).ReadAsArray()
    ours = bicubic(lst, SCALE)
    margin = 2 * SCALE
    np.testing.assert_allclose(
        ours[margin:-margin, margin:-margin], fine[margin:-margin, margin:-margin], atol=2e-3
    )


def test_bicubic_reproduces_a_linear_ramp_exactly():
    rows, cols = np.mgrid[0:12, 0:10]
    ramp = 290.0 + 0.5 * rows - 0.25 * cols
    fine_rows, fine_cols = (np.mgrid[0:48, 0:40] + 0.5) / SCALE - 0.5
    expected = 290.0 + 0.5 * fine_rows - 0.25 * fine_cols
    np.testing.assert_allclose(bicubic(ramp, SCALE)[8:-8, 8:-8], expected[8:-8, 8:-8], atol=1e-9)


def test_tsharp_is_the_least_squares_line_of_lst_on_vegetation_cover(arrays):
    lst, guidance, valid = arrays
    ndvi = ndvi_of(guidance)
    tsharp = Tsharp(SCALE)
    tsharp.add_samples(coarse_samples(lst, np.isfinite(lst), ndvi[None], valid, SCALE))
    tsharp.finish_fit()
    fit = tsharp.fit
    ndvi_coarse, count = block_mean(ndvi, valid, SCALE)
    usable = count >= 0.9 * SCALE * SCALE
    assert fit.samples == usable.sum() > 1000
    cover = fractional_cover(ndvi_coarse[usable], fit.ndvi_min, fit.ndvi_max)
    slope, intercept = np.polyfit(cover, lst[usable], 1)
    assert (fit.slope_kelvin, fit.intercept_kelvin) == pytest.approx((slope, intercept), abs=1e-6)
    assert slope < 0, "vegetated pixels are cooler in this tropical scene"
    fine = tsharp.predict(lst, np.isfinite(lst), ndvi[None], valid)
    np.testing.assert_allclose(
        fine, intercept + slope * fractional_cover(ndvi, fit.ndvi_min, fit.ndvi_max), atol=1e-4
    )


def test_fractional_cover_runs_from_bare_to_full_vegetation():
    np.testing.assert_allclose(
        fractional_cover(np.array([0.1, 0.2, 0.8, 0.9]), 0.2, 0.8), [0.0, 0.0, 1.0, 1.0]
    )


def test_dms_recovers_a_nonlinear_guidance_relation_that_tsharp_and_bicubic_miss(arrays):
    """A known fine LST made from the real guidance (warmer with SWIR brightness, cooler
    above an NDVI threshold), averaged to 120 m: the trees recover the fine pattern that
    NDVI alone (TsHARP) and interpolation (bicubic) cannot."""
    _, guidance, valid = arrays
    ndvi, swir1 = ndvi_of(guidance), guidance[list(GUIDANCE_BANDS).index("swir1")]
    truth = 294.0 + 25.0 * swir1 - 8.0 * np.maximum(ndvi - 0.4, 0.0)
    lst, count = block_mean(truth, valid, SCALE)
    coarse_valid = count >= 0.9 * SCALE * SCALE
    lst = np.where(coarse_valid, lst, np.nan)
    dms = Dms(SCALE, channels=len(guidance))
    dms.add_samples(coarse_samples(lst, coarse_valid, guidance, valid, SCALE))
    dms.finish_fit()
    filled = np.where(coarse_valid, lst, np.nanmean(lst))
    sharp = conserve_coarse_means(
        dms.predict(filled, coarse_valid, guidance, valid), valid, lst, coarse_valid, SCALE
    )
    tsharp = Tsharp(SCALE)
    tsharp.add_samples(coarse_samples(lst, coarse_valid, ndvi[None], valid, SCALE))
    tsharp.finish_fit()
    linear = conserve_coarse_means(
        tsharp.predict(filled, coarse_valid, ndvi[None], valid), valid, lst, coarse_valid, SCALE
    )
    smooth = conserve_coarse_means(bicubic(filled, SCALE), valid, lst, coarse_valid, SCALE)
    scored = valid & np.repeat(np.repeat(coarse_valid, SCALE, 0), SCALE, 1)
    errors = {
        name: rmse(pred, truth, scored)
        for name, pred in (("dms", sharp), ("tsharp", linear), ("bicubic", smooth))
    }
    assert errors["dms"] < 0.5 * errors["bicubic"], errors
    assert errors["dms"] < 0.5 * errors["tsharp"], errors
    assert max_abs_residual(sharp, valid, lst, coarse_valid, SCALE) < 1e-3


def test_trees_with_linear_leaves_fit_a_step_between_two_slopes_and_do_not_extrapolate_far():
    """y = 290 + 5x below x = 0.3, 310 + 5x above: one split and a line in each leaf fit it
    exactly (the step lies on an edge of the 40 quantile bins, the split's resolution); beyond the
    samples a leaf's line stops a quarter of its range past them."""
    x = np.linspace(0.0, 1.0, 400)[:, None]
    y = np.where(np.arange(400) < 120, 290.0, 310.0) + 5.0 * x[:, 0]
    settings = ForestSettings(trees=5, max_leaves=2, min_samples_leaf=10, bins=40, ridge=0.0)
    forest = fit_forest(x, y, np.ones(len(y)), np.zeros(len(y), int), 1, settings, np.random.default_rng(0))
    each = forest.predict_trees(x.T.astype(np.float32))
    np.testing.assert_allclose(each, np.broadcast_to(y, each.shape), atol=2e-3)
    assert forest.leaves == 2 * 5
    far = forest.predict_trees(np.array([[10.0]], np.float32))
    assert np.all(far <= 315.0 + 0.25 * 5.0 + 1e-3), far


def test_trees_of_many_groups_are_each_fitted_on_their_own_samples():
    """Ten groups with opposite relations: every group's trees follow its own."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 1.0, (2000, 2))
    group = np.repeat(np.arange(10), 200)
    sign = np.where(group % 2 == 0, 1.0, -1.0)
    y = 300.0 + 10.0 * sign * x[:, 0]
    settings = ForestSettings(trees=4, max_leaves=5, min_samples_leaf=10, bins=16, ridge=1.0)
    forest = fit_forest(x, y, np.ones(len(y)), group, 10, settings, np.random.default_rng(0))
    predicted = forest.predict_trees(x.T.astype(np.float32), group).mean(axis=0)
    assert rmse(predicted, y) < 0.3


def test_growing_trees_for_more_windows_takes_no_more_array_passes(monkeypatch):
    """The speed bound that matters for a full scene: trees of all windows grow together, so the
    number of numpy histogram passes does not grow with the number of windows."""
    import engine.trees as trees

    calls = []
    real = np.bincount

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    rng = np.random.default_rng(2)
    settings = ForestSettings(trees=10, max_leaves=5, min_samples_leaf=5, bins=16, ridge=10.0)
    passes = {}
    for groups in (4, 400):
        x = rng.uniform(0.0, 1.0, (groups * 60, 3))
        y = 300.0 + np.sin(6 * x[:, 0]) + x[:, 1]
        monkeypatch.setattr(trees.np, "bincount", counted)
        calls.clear()
        forest = fit_forest(x, y, np.ones(len(y)), np.repeat(np.arange(groups), 60), groups, settings, rng)
        monkeypatch.setattr(trees.np, "bincount", real)
        passes[groups] = (len(calls), forest.depth)
    assert passes[400][0] <= passes[4][0] * 1.5, passes


def test_homogeneity_weights_favour_uniform_coarse_pixels():
    weights = homogeneity_weights(np.array([0.0, 0.1, 0.2, 0.4, 0.8]))
    assert weights[0] == pytest.approx(1.0)
    assert weights[2] == pytest.approx(0.5), "a pixel as mixed as the median counts half"
    assert np.all(np.diff(weights) < 0)


def test_homogeneity_weighting_keeps_mixed_pixels_from_pulling_the_fit():
    """Mixed coarse pixels (high heterogeneity) carry a biased LST, as when a hot road sits in a
    field: weighted by homogeneity, the trees follow the uniform pixels' relation more closely."""
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.uniform(0.0, 1.0, (n, 2))
    heterogeneity = rng.uniform(0.0, 1.0, n) ** 3
    clean = 300.0 + 8.0 * x[:, 0]
    y = clean + 6.0 * heterogeneity
    settings = ForestSettings(trees=10, max_leaves=10, min_samples_leaf=10, bins=32, ridge=10.0)
    fits = {}
    for name, weight in (("weighted", homogeneity_weights(heterogeneity)), ("flat", np.ones(n))):
        forest = fit_forest(x, y, weight, np.zeros(n, int), 1, settings, np.random.default_rng(0))
        fits[name] = rmse(forest.predict_trees(x.T.astype(np.float32)).mean(axis=0), clean)
    assert fits["weighted"] < 0.8 * fits["flat"], fits


def two_regimes(scale: int = 4, size: int = 96):
    """A fine LST whose relation to the guidance flips between the left and right halves."""
    rng = np.random.default_rng(4)
    coarse_noise = rng.uniform(0.0, 1.0, (2, size // scale, size // scale))
    guidance = (
        np.repeat(np.repeat(coarse_noise, scale, 1), scale, 2) + 0.3 * rng.uniform(0.0, 1.0, (2, size, size))
    ).astype(np.float32)
    side = np.where(np.arange(size) < size // 2, 1.0, -1.0)[None, :]
    truth = 300.0 + 10.0 * side * guidance[0] + 2.0 * guidance[1]
    lst = block_mean(truth, np.ones(truth.shape, bool), scale)[0]
    return truth, lst, guidance


def sharpened(dms: Dms, lst, guidance, scale: int = 4) -> np.ndarray:
    valid, coarse_valid = np.ones(guidance.shape[1:], bool), np.ones(lst.shape, bool)
    dms.add_samples(coarse_samples(lst, coarse_valid, guidance, valid, scale))
    dms.finish_fit()
    return conserve_coarse_means(
        dms.predict(lst, coarse_valid, guidance, valid), valid, lst, coarse_valid, scale
    )


def test_local_windows_follow_a_relation_that_changes_across_the_scene():
    """The scene-wide trees average two opposite relations; the moving-window trees, combined by
    their coarse residuals, recover each half."""
    truth, lst, guidance = two_regimes()
    combined = rmse(sharpened(Dms(4, 2), lst, guidance), truth)
    global_only = rmse(sharpened(Dms(4, 2, DmsSettings(min_window_samples=10**9)), lst, guidance), truth)
    assert combined < 0.5 * global_only, (combined, global_only)


def test_the_combination_weighs_each_model_by_the_inverse_of_its_squared_coarse_residual():
    scale = 2
    lst = np.full((6, 6), 300.0)
    global_fine = np.full((12, 12), 301.0)  # residual -1 everywhere
    local_fine = np.full((12, 12), 300.5)  # residual -0.5: weight 1 / (1 + 0.25)
    has_local = np.ones((6, 6), bool)
    has_local[:, :2] = False
    weight = local_weight(
        global_fine, local_fine, has_local, lst, np.ones((6, 6), bool), np.ones((12, 12), bool), scale
    )
    assert weight[:, 8:] == pytest.approx(0.8, abs=1e-6)
    assert np.all(weight[:, :3] == 0.0), "no local model, no local share"


def test_dms_is_reproducible_with_a_seed_and_varies_with_another():
    truth, lst, guidance = two_regimes()
    first = sharpened(Dms(4, 2, DmsSettings(seed=7)), lst, guidance)
    again = sharpened(Dms(4, 2, DmsSettings(seed=7)), lst, guidance)
    other = sharpened(Dms(4, 2, DmsSettings(seed=8)), lst, guidance)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3


def test_fit_sample_weighs_every_tile_by_its_size_whatever_the_order():
    sharpener = Tsharp(scale=4, max_samples=1_000)
    for tile in range(10):
        n = 800
        sharpener.add_samples(CoarseSamples(np.zeros((n, 1)), np.zeros(n), np.full(n, 280.0 + tile)))
    kept_tiles = sharpener.samples().lst_kelvin - 280.0
    shares = np.bincount(kept_tiles.astype(int), minlength=10) / len(kept_tiles)
    assert len(kept_tiles) == 1_000
    assert np.all(np.abs(shares - 0.1) < 0.04), shares


def test_spread_scale_widens_the_members_about_their_mean_and_leaves_the_prediction():
    _, lst, guidance = two_regimes()
    valid, coarse_valid = np.ones(guidance.shape[1:], bool), np.ones(lst.shape, bool)
    results = {}
    for factor in (1.0, 3.0):
        dms = Dms(4, 2, DmsSettings(spread_scale=factor))
        dms.add_samples(coarse_samples(lst, coarse_valid, guidance, valid, 4))
        dms.finish_fit()
        members, _ = dms.predict_members(lst, coarse_valid, guidance, valid)
        results[factor] = (dms.predict(lst, coarse_valid, guidance, valid), members.std(axis=0))
    np.testing.assert_allclose(results[3.0][0], results[1.0][0], atol=1e-3)
    np.testing.assert_allclose(results[3.0][1], 3.0 * results[1.0][1], rtol=1e-3, atol=1e-4)
    assert results[1.0][1].mean() > 0.01


def test_windows_under_clouds_grow_until_they_hold_enough_coarse_pixels():
    """Most of the left half is clouded: its windows reach out to the few clear pixels around them
    and still follow the left half's relation, where fixed windows fall back to the scene-wide one."""
    truth, lst, guidance = two_regimes(size=192)
    scale = 4
    rows, cols = lst.shape
    coarse_valid = np.ones(lst.shape, bool)
    coarse_valid[:, : cols // 2] = np.random.default_rng(5).uniform(size=(rows, cols // 2)) < 0.25
    valid = np.ones(guidance.shape[1:], bool)
    left = np.zeros(truth.shape, bool)
    left[:, : truth.shape[1] // 2] = True
    scored = left & np.repeat(np.repeat(coarse_valid, scale, 0), scale, 1)
    errors = {}
    for name, samples in (("growing", 60), ("fixed", 0)):
        dms = Dms(scale, 2, DmsSettings(window_samples=samples))
        dms.add_samples(coarse_samples(lst, coarse_valid, guidance, valid, scale))
        dms.finish_fit()
        filled = np.where(coarse_valid, lst, lst[coarse_valid].mean())
        fine = conserve_coarse_means(
            dms.predict(filled, coarse_valid, guidance, valid), valid, lst, coarse_valid, scale
        )
        errors[name] = rmse(fine, truth, scored)
    assert errors["growing"] < 0.7 * errors["fixed"], errors

"""Classic sharpeners, each checked on the real Landsat 5 scene against its defining property."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from engine.classic import CoarseSamples, Dms, Tsharp, bicubic, coarse_samples, fractional_cover
from engine.conservation import conserve_coarse_means, max_abs_residual
from engine.masks import block_mean
from engine.metrics import rmse
from engine.trees import BaggedTrees, RegressionTree

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


def test_regression_tree_fits_a_step_exactly_and_bagging_reports_out_of_bag_error():
    x = np.linspace(0.0, 1.0, 200)[:, None]
    y = np.where(x[:, 0] < 0.3, 290.0, 300.0)
    tree = RegressionTree(max_depth=3, min_samples_leaf=5).fit(x, y)
    np.testing.assert_allclose(tree.predict(x), y)
    assert tree.threshold[0] == pytest.approx(0.3, abs=0.01)
    noisy = y + np.random.default_rng(0).normal(0.0, 0.5, y.shape)
    forest = BaggedTrees(n_trees=5, max_depth=4, min_samples_leaf=10).fit(x, noisy)
    assert 0.1 < forest.oob_mse < 1.0


def test_fit_sample_weighs_every_tile_by_its_size_whatever_the_order():
    sharpener = Tsharp(scale=4, max_samples=1_000)
    for tile in range(10):
        n = 800
        sharpener.add_samples(CoarseSamples(np.zeros((n, 1)), np.zeros(n), np.full(n, 280.0 + tile)))
    kept_tiles = sharpener.samples().lst_kelvin - 280.0
    shares = np.bincount(kept_tiles.astype(int), minlength=10) / len(kept_tiles)
    assert len(kept_tiles) == 1_000
    assert np.all(np.abs(shares - 0.1) < 0.04), shares

"""The optional uncertainty output of a scene run: written beside the LST for MoCoLSK and DMS,
on its grid and mask, scaled by the card's calibration, without changing the LST itself."""

from __future__ import annotations

import re

import numpy as np
import pytest
from osgeo import gdal

from engine.errors import Cancelled, InputError, OutputError
from engine.package import resolve_package
from engine.pipeline import OUTPUT_NODATA

from .conftest import read, run_downscale, tmpfs


@pytest.mark.parametrize("method", ["mocolsk", "dms"])
def test_uncertainty_is_written_on_the_output_grid_and_mask_and_leaves_the_lst_unchanged(
    method, small_scene, tmp_path
):
    plain, _ = run_downscale(small_scene, tmp_path / "plain.tif", method=method)
    result, lines = run_downscale(
        small_scene, tmp_path / "lst.tif", method=method, uncertainty_path=str(tmp_path / "sigma.tif")
    )
    assert result.uncertainty_path == str((tmp_path / "sigma.tif").resolve())
    np.testing.assert_array_equal(read(result.output_path), read(plain.output_path))
    sigma, lst = read(result.uncertainty_path), read(result.output_path)
    np.testing.assert_array_equal(sigma == OUTPUT_NODATA, lst == OUTPUT_NODATA)
    valid = sigma != OUTPUT_NODATA
    assert valid.sum() > 0.9 * valid.size
    assert (sigma[valid] >= 0).all() and np.median(sigma[valid]) > 0.001
    assert np.percentile(sigma[valid], 99) < 10.0
    out, guidance = gdal.Open(result.uncertainty_path), gdal.Open(small_scene.guidance_path)
    assert out.GetGeoTransform() == guidance.GetGeoTransform()
    assert out.GetRasterBand(1).GetUnitType() == "K"
    assert any("Wrote" in line and "sigma.tif" in line for line in lines)


def test_mocolsk_uncertainty_is_the_raw_spread_times_the_cards_fitted_factor(small_scene, tmp_path):
    result, lines = run_downscale(
        small_scene, tmp_path / "lst.tif", method="mocolsk", uncertainty_path=str(tmp_path / "sigma.tif")
    )
    card = resolve_package(result.model_name).card
    factor = card.uncertainty_calibration["mocolsk"]["sigma_scale"]
    assert result.uncertainty_sigma_scale == pytest.approx(factor)
    metadata = gdal.Open(result.uncertainty_path).GetMetadata()
    assert float(metadata["MOCOLSK_UNCERTAINTY_SIGMA_SCALE"]) == pytest.approx(factor)
    assert "test-time augmentation" in metadata["MOCOLSK_UNCERTAINTY"]
    assert any(f"x {factor:.2f}" in line for line in lines)


def test_dms_uncertainty_says_it_is_not_calibrated(small_scene, tmp_path):
    result, lines = run_downscale(
        small_scene, tmp_path / "lst.tif", method="dms", uncertainty_path=str(tmp_path / "sigma.tif")
    )
    assert result.uncertainty_sigma_scale is None
    assert any("not calibrated" in line for line in lines)


@pytest.mark.parametrize("method", ["bicubic", "tsharp"])
def test_methods_without_an_uncertainty_refuse_the_output_before_writing(method, small_scene, tmp_path):
    with pytest.raises(
        InputError, match="uncertainty layer is available for mocolsk, blend, dms and auto only"
    ):
        run_downscale(
            small_scene, tmp_path / "lst.tif", method=method, uncertainty_path=str(tmp_path / "sigma.tif")
        )
    assert list(tmp_path.iterdir()) == []


def test_the_uncertainty_output_must_be_a_new_tif_other_than_the_lst(small_scene, tmp_path):
    with pytest.raises(
        OutputError,
        match=rf"The uncertainty output {re.escape(str(tmp_path.resolve() / 'lst.tif'))} is the LST output too; "
        r"give the uncertainty another file name, e\.g\. lst_sigma\.tif",
    ):
        run_downscale(
            small_scene, tmp_path / "lst.tif", method="dms", uncertainty_path=str(tmp_path / "lst.tif")
        )
    with pytest.raises(OutputError, match=r"must end in \.tif"):
        run_downscale(
            small_scene, tmp_path / "lst.tif", method="dms", uncertainty_path=str(tmp_path / "sigma.png")
        )


def test_a_cancelled_run_leaves_neither_output(small_scene, tmp_path):
    calls = []

    def cancel_late():
        calls.append(1)
        return len(calls) > 6

    with pytest.raises(Cancelled):
        run_downscale(
            small_scene,
            tmp_path / "lst.tif",
            method="dms",
            tile_size_px=32,
            uncertainty_path=str(tmp_path / "sigma.tif"),
            is_cancelled=cancel_late,
        )
    assert list(tmp_path.iterdir()) == []


def on_cell_edges(shape, scale: int) -> np.ndarray:
    """Fine pixels in the first or last row or column of their coarse pixel (the grids share an origin)."""
    rows, cols = np.arange(shape[0]) % scale, np.arange(shape[1]) % scale
    return np.isin(rows, (0, scale - 1))[:, None] | np.isin(cols, (0, scale - 1))[None, :]


def step_ratio(values: np.ndarray, scale: int) -> float:
    """Mean |difference| of neighbouring pixels across coarse-pixel edges over that within coarse pixels:
    about 1 for a field blind to the coarse grid, above 1 where the grid shows as a lattice."""
    steps = [np.abs(np.diff(values, axis=axis)) for axis in (0, 1)]
    crossing = [(np.arange(s.shape[axis]) % scale) == scale - 1 for s, axis in zip(steps, (0, 1))]
    across = np.concatenate([steps[0][crossing[0]].ravel(), steps[1][:, crossing[1]].ravel()])
    within = np.concatenate([steps[0][~crossing[0]].ravel(), steps[1][:, ~crossing[1]].ravel()])
    return float(np.nanmean(across) / np.nanmean(within))


@pytest.fixture(scope="module")
def mocolsk_with_uncertainty(scene, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lattice")
    result, _ = run_downscale(
        scene, folder / "lst.tif", method="mocolsk", uncertainty_path=str(folder / "sigma.tif")
    )
    lst, sigma = (read(path).astype(np.float64) for path in (result.output_path, result.uncertainty_path))
    return np.where(lst == OUTPUT_NODATA, np.nan, lst), np.where(sigma == OUTPUT_NODATA, np.nan, sigma)


def test_the_uncertainty_is_as_high_on_coarse_pixel_edges_as_inside_them(mocolsk_with_uncertainty):
    # The orientations of the network disagree more on coarse-pixel edges (0.143 K against 0.123 K
    # on this scene before the variance was averaged over a coarse pixel): a lattice, not information.
    _, sigma = mocolsk_with_uncertainty
    edges = on_cell_edges(sigma.shape, 4)
    assert np.nanmean(sigma[edges]) / np.nanmean(sigma[~edges]) == pytest.approx(1.0, abs=0.02)
    assert step_ratio(sigma, 4) < 1.05


def test_the_lst_shows_the_coarse_grid_no_more_than_a_bicubic_interpolation_of_it(
    mocolsk_with_uncertainty, scene, tmp_path
):
    # Any interpolation of a coarse grid changes fastest between its pixel centres, i.e. across coarse-pixel
    # edges (1.23 for bicubic here): the faint lattice over flat water is that, and the network adds none.
    lst, _ = mocolsk_with_uncertainty
    result, _ = run_downscale(scene, tmp_path / "bicubic.tif", conserve_coarse_means=False)
    bicubic = read(result.output_path).astype(np.float64)
    bicubic = np.where(bicubic == OUTPUT_NODATA, np.nan, bicubic)
    assert step_ratio(lst, 4) < step_ratio(bicubic, 4) + 0.03


@pytest.fixture
def other_disk(tmp_path):
    """A folder on another file system: a small tmpfs."""
    yield from tmpfs(tmp_path / "other_disk", "4m", "another file system is simulated with a tmpfs")


def test_an_uncertainty_on_another_disk_is_written_with_the_lst_and_no_scratch_is_left(
    small_scene, tmp_path, other_disk
):
    out = tmp_path / "out"
    out.mkdir()
    result, _ = run_downscale(
        small_scene, out / "lst.tif", method="dms", uncertainty_path=str(other_disk / "sigma.tif")
    )
    assert result.uncertainty_path == str(other_disk / "sigma.tif")
    assert sorted(p.name for p in out.iterdir()) == ["lst.tif"]
    assert sorted(p.name for p in other_disk.iterdir()) == ["sigma.tif"]
    assert np.isfinite(read(other_disk / "sigma.tif")).any()

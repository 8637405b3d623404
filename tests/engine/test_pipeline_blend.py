"""Method "blend": MoCoLSK and the classic methods averaged with the weights of the model card,
conserved like any method; a package without weights or with bad ones is refused clearly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from engine.errors import PackageError
from engine.package import bundled_packages, load_package
from engine.pipeline import OUTPUT_NODATA

from .conftest import coarse_means, read, run_downscale, write_raster

WEIGHTS = {"mocolsk": 0.5, "bicubic": 0.2, "tsharp": 0.1, "dms": 0.2}


def package_copy(folder: Path, blend: dict | None) -> str:
    """The bundled x4 package with its blend section replaced (weights files linked)."""
    card_path = Path(bundled_packages()["mocolsk-x4-landsat-light"])
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.pop("blend", None)
    if blend is not None:
        card["blend"] = blend
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("weights_file", "torch_weights_file"):
        os.symlink(card_path.parent / card[key], folder / card[key])
    out = folder / card_path.name
    out.write_text(json.dumps(card), encoding="utf-8")
    return str(out)


@pytest.fixture(scope="module")
def weighted_package(tmp_path_factory) -> str:
    return package_copy(tmp_path_factory.mktemp("weighted"), {"weights": WEIGHTS, "fitted": "by hand"})


def test_the_blend_is_the_weighted_mean_of_its_members_runs(small_scene, weighted_package, tmp_path):
    result, lines = run_downscale(small_scene, tmp_path / "blend.tif", method="blend", model=weighted_package)
    assert result.method == "blend" and result.scale == 4
    assert any(
        line.startswith("Blend of MoCoLSK 0.50, bicubic 0.20, TsHARP 0.10, DMS 0.20 (by hand)")
        for line in lines
    )
    members = {}
    for name in WEIGHTS:
        model = weighted_package if name == "mocolsk" else None
        run_downscale(small_scene, tmp_path / f"{name}.tif", method=name, model=model)
        members[name] = read(tmp_path / f"{name}.tif").astype(np.float64)
    blend = read(tmp_path / "blend.tif").astype(np.float64)
    valid = blend != OUTPUT_NODATA
    expected = sum(w * members[name] for name, w in WEIGHTS.items())
    # Close, not equal: inside the blend DMS reads the model's eight bands (NDVI and NDWI derived),
    # alone it reads the six given, and the network's bound applies before conservation.
    assert np.sqrt(np.mean((blend - expected)[valid] ** 2)) < 0.05
    assert np.abs(blend - members["mocolsk"])[valid].max() > 0.1


def test_the_blend_is_conserved_to_the_coarse_input(small_scene, weighted_package, tmp_path):
    result, _ = run_downscale(small_scene, tmp_path / "blend.tif", method="blend", model=weighted_package)
    fine = read(result.output_path).astype(np.float64)
    means = coarse_means(fine, fine != OUTPUT_NODATA, 4, small_scene.lst_kelvin.shape)
    assert np.nanmax(np.abs(means - small_scene.lst_kelvin)) < 1e-3


def test_the_blend_writes_how_much_its_methods_disagree_as_uncertainty(
    small_scene, weighted_package, tmp_path
):
    sigma_path = tmp_path / "sigma.tif"
    run_downscale(
        small_scene,
        tmp_path / "blend.tif",
        method="blend",
        model=weighted_package,
        uncertainty_path=str(sigma_path),
    )
    sigma = read(sigma_path)
    assert np.isfinite(sigma).all() and (sigma[sigma != OUTPUT_NODATA] >= 0).all()
    assert np.median(sigma[sigma != OUTPUT_NODATA]) > 0.01


DELIVERED = {"mocolsk": 0.8, "bicubic": 0.2}


def test_an_lst_delivered_on_the_guidance_grid_is_blended_with_the_delivered_weights(small_scene, tmp_path):
    model = package_copy(
        tmp_path / "two",
        {
            "weights": WEIGHTS,
            "fitted": "native",
            "delivered_weights": DELIVERED,
            "delivered_fitted": "delivered",
        },
    )
    band_30m = np.repeat(np.repeat(small_scene.lst_kelvin, 4, 0), 4, 1)
    delivered = write_raster(
        tmp_path / "st_b10_30m.tif", band_30m, small_scene.fine_geotransform, small_scene.crs_wkt, unit="K"
    )
    _, lines = run_downscale(
        small_scene,
        tmp_path / "delivered.tif",
        method="blend",
        model=model,
        lst_path=delivered,
        native_pixel_m=120,
    )
    assert "Blend of MoCoLSK 0.80, bicubic 0.20 (delivered)" in lines
    written = gdal.Open(str(tmp_path / "delivered.tif")).GetMetadata()["MOCOLSK_BLEND_WEIGHTS"]
    assert written == "mocolsk 0.8000, bicubic 0.2000 (delivered-band weights)"
    _, lines = run_downscale(small_scene, tmp_path / "coarse.tif", method="blend", model=model)
    assert "Blend of MoCoLSK 0.50, bicubic 0.20, TsHARP 0.10, DMS 0.20 (native)" in lines
    written = gdal.Open(str(tmp_path / "coarse.tif")).GetMetadata()["MOCOLSK_BLEND_WEIGHTS"]
    assert written.startswith("mocolsk 0.5000, bicubic 0.2000") and written.endswith(
        "(native-resolution weights)"
    )


def test_a_delivered_blend_without_the_network_says_so_and_records_its_members(small_scene, tmp_path):
    model = package_copy(
        tmp_path / "classic",
        {
            "weights": WEIGHTS,
            "delivered_weights": {"bicubic": 0.7, "dms": 0.3},
            "delivered_fitted": "delivered",
        },
    )
    band_30m = np.repeat(np.repeat(small_scene.lst_kelvin, 4, 0), 4, 1)
    delivered = write_raster(
        tmp_path / "st_b10_30m.tif", band_30m, small_scene.fine_geotransform, small_scene.crs_wkt, unit="K"
    )
    result, lines = run_downscale(
        small_scene, tmp_path / "out.tif", method="blend", model=model, lst_path=delivered, native_pixel_m=120
    )
    assert result.blend_members == ("bicubic", "dms")
    assert any(
        line.startswith("MoCoLSK takes no part in this blend: the delivered-band weights") for line in lines
    )
    result, lines = run_downscale(small_scene, tmp_path / "coarse.tif", method="blend", model=model)
    assert result.blend_members == ("mocolsk", "bicubic", "tsharp", "dms")
    assert not any("takes no part" in line for line in lines)


def test_delivered_blend_weights_that_do_not_sum_to_one_make_the_card_invalid(tmp_path):
    model = package_copy(tmp_path / "bad", {"weights": WEIGHTS, "delivered_weights": {"mocolsk": 0.5}})
    with pytest.raises(PackageError, match="summing to 1"):
        load_package(model)


def test_a_package_without_blend_weights_runs_mocolsk_alone_and_says_so(small_scene, tmp_path):
    model = package_copy(tmp_path / "plain", None)
    result, lines = run_downscale(small_scene, tmp_path / "blend.tif", method="blend", model=model)
    assert result.method == "mocolsk"
    assert any("carries no blend weights" in line and "MoCoLSK runs alone" in line for line in lines)
    assert gdal.Open(result.output_path).GetMetadata()["MOCOLSK_METHOD"] == "mocolsk"


def test_blend_weights_that_do_not_sum_to_one_make_the_card_invalid(tmp_path):
    model = package_copy(tmp_path / "bad", {"weights": {"mocolsk": 0.9, "bicubic": 0.3}})
    with pytest.raises(PackageError, match="summing to 1"):
        load_package(model)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_every_bundled_package_carries_cross_validated_blend_weights(scale):
    cards = [load_package(p).card for p in bundled_packages().values()]
    card = next(c for c in cards if c.scale == scale)
    assert abs(sum(card.blend["weights"].values()) - 1.0) < 1e-3
    assert len(card.blend["leave_site_out_weights"]) == len(card.blend["scenes"]) >= 10
    assert abs(sum(card.blend["delivered_weights"].values()) - 1.0) < 1e-3
    assert set(card.blend["leave_site_out_delivered_weights"]) == set(card.blend["scenes"])


def test_a_member_that_cannot_fit_on_a_small_scene_leaves_the_blend_and_the_rest_still_run(
    weighted_package, tmp_path
):
    from .conftest import make_scene

    tiny = make_scene(tmp_path / "tiny", rows=slice(0, 12), cols=slice(0, 12), scale=4)
    result, lines = run_downscale(tiny, tmp_path / "blend.tif", method="blend", model=weighted_package)
    assert result.method == "blend"
    fitted = next(line for line in lines if "left out of the blend" in line)
    assert "tsharp left out" in fitted and "dms left out" in fitted
    assert fitted.endswith("blend weights: mocolsk 0.71, bicubic 0.29")

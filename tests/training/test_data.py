"""Training data: Landsat conversion, GeoTIFF and self-supervised scenes, area splits,
patch sampling, augmentation, masks, GrokLST layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.io import savemat

from tests.training.conftest import CROP_PX, write_geotiff
from training.datasets import (
    GROKLST_BANDS,
    Normalizer,
    Sample,
    SamplePatches,
    ScenePatches,
    augment,
    groklst_normalizer,
    held_out_samples,
    read_groklst,
    sample_from_fine,
)
from training.landsat_scenes import read_landsat_scene, read_mtl
from training.loop import masked_l1
from training.scenes import area_average, read_coarse_scene, read_geotiff_scene
from training.splits import block_split, read_split, role_mask, training_area, write_split

SATELLITE_DATA = "resources/data"


def test_landsat5_thermal_dn_becomes_brightness_temperature_by_the_source_formula(l5_scene):
    from osgeo import gdal

    from tests.training.conftest import LANDSAT5

    dn = gdal.Open(str(LANDSAT5 / "LT52240631988227CUB02_B6.TIF")).ReadAsArray()
    radiance = 0.055 * float(dn[10, 20]) + 1.18243
    expected = 1260.56 / math.log(607.76 / radiance + 1.0)
    assert l5_scene.lst_kelvin[10, 20] == pytest.approx(expected, abs=1e-3)
    assert 285.0 < np.nanmin(l5_scene.lst_kelvin) and np.nanmax(l5_scene.lst_kelvin) < 310.0


def test_landsat_guidance_is_toa_reflectance_and_indices_in_their_ranges(l5_scene):
    assert l5_scene.band_names == ("blue", "green", "red", "nir", "swir1", "swir2", "ndvi", "ndwi")
    reflectance, indices = l5_scene.guidance[:6], l5_scene.guidance[6:]
    assert -0.02 < np.nanmin(reflectance) and np.nanmax(reflectance) < 1.0
    assert 0.03 < np.nanmean(reflectance) < 0.3
    assert -1.0 <= np.nanmin(indices) and np.nanmax(indices) <= 1.0
    nir, red = l5_scene.guidance[3], l5_scene.guidance[2]
    np.testing.assert_allclose(l5_scene.guidance[6], (nir - red) / (nir + red), rtol=1e-5)


@pytest.mark.parametrize(
    "folder, mtl",
    [
        ("landsat8-oli-tirs-2013", "LC08_L1TP_195025_20130707_20170503_01_T1_MTL.txt"),
        ("landsat7-etm-2001", "LE07_L1TP_195025_20010730_20170204_01_T1_MTL.txt"),
    ],
)
def test_bundled_landsat7_and_8_subsets_read_as_plausible_summer_scenes(folder, mtl):
    from tests.conftest import REPO

    path = REPO / SATELLITE_DATA / folder / mtl
    scene = read_landsat_scene(path)
    assert scene.shape == (41, 41)
    assert scene.valid.all()
    assert 290.0 < np.nanmean(scene.lst_kelvin) < 310.0
    assert read_mtl(path)["SPACECRAFT_ID"] in scene.notes


def test_area_average_marks_a_coarse_cell_with_any_invalid_pixel_invalid():
    fine = np.arange(16, dtype=np.float32).reshape(4, 4)
    fine[0, 0] = np.nan
    coarse = area_average(fine, 2)
    assert np.isnan(coarse[0, 0])
    assert coarse[1, 1] == pytest.approx(np.mean([10, 11, 14, 15]))


def test_geotiff_scene_reads_lst_and_named_guidance_bands(scene_tifs, l5_scene):
    scene = read_geotiff_scene(*scene_tifs)
    assert scene.shape == (CROP_PX, CROP_PX)
    assert scene.band_names == l5_scene.band_names
    np.testing.assert_allclose(scene.lst_kelvin, l5_scene.lst_kelvin[:CROP_PX, :CROP_PX])


def test_geotiff_scene_on_different_grids_is_refused_with_the_fix(scene_tifs, tmp_path, l5_scene):
    shifted = write_geotiff(
        tmp_path / "g.tif",
        l5_scene.guidance[:, :CROP_PX, :CROP_PX],
        30.0,
        l5_scene.band_names,
        origin=(500030.0, 9000000.0),
    )
    with pytest.raises(ValueError, match="not on the same grid; warp"):
        read_geotiff_scene(scene_tifs[0], shifted)


def test_coarse_only_scene_becomes_a_self_supervised_scene_on_the_lst_grid(coarse_tifs, l5_scene):
    scene, scale = read_coarse_scene(*coarse_tifs)
    assert scale == 4
    assert scene.shape == (CROP_PX // 4, CROP_PX // 4)
    expected = area_average(l5_scene.guidance[:, :CROP_PX, :CROP_PX], 4)
    np.testing.assert_allclose(scene.guidance, expected, rtol=1e-5)


def test_validation_blocks_are_kept_a_guard_band_away_from_the_training_area():
    shape = (320, 288)
    blocks = block_split({"a": shape}, 64, 0.15, 0.0, seed=0)
    val = role_mask(blocks, "a", shape, "val")
    train_blocks = role_mask(blocks, "a", shape, "train")
    assert val.any() and not (val & train_blocks).any() and (val | train_blocks).all()
    touching = train_blocks & ~training_area(blocks, "a", shape, 0)
    assert not touching.any()
    guarded = training_area(blocks, "a", shape, 8)
    rows, cols = np.nonzero(val)
    near = np.zeros(shape, bool)
    for dr in range(-8, 9):
        for dc in range(-8, 9):
            near[np.clip(rows + dr, 0, shape[0] - 1), np.clip(cols + dc, 0, shape[1] - 1)] = True
    assert not (guarded & near).any()
    assert (train_blocks & near).any()
    assert guarded.sum() == (train_blocks & ~near).sum()


def test_whole_test_scenes_never_reach_training_or_validation(tiny_config, tmp_path):
    from training.config import TrainConfig
    from training.sources import build_training_data

    data = build_training_data(TrainConfig.load(tiny_config), tmp_path / "run")
    assert [s.name for s in data.test_scenes] == ["held_out"]
    seen = {s.name for s in data.sampler.scenes} | {s.name.split("[")[0] for s in data.val}
    assert not any(name.startswith("held_out") for name in seen)
    assert {s.name for s in data.sampler.scenes} == {"lst"}


def test_a_split_asking_for_test_blocks_is_told_to_hold_out_whole_scenes(tiny_config, tmp_path):
    import json

    from training.config import TrainConfig
    from training.sources import build_training_data

    values = json.loads(tiny_config.read_text())
    values["split"]["test_fraction"] = 0.2
    config = TrainConfig.from_dict(values, tiny_config.parent)
    with pytest.raises(ValueError, match="whole scenes"):
        build_training_data(config, tmp_path / "run")


def test_split_file_round_trips(tmp_path):
    blocks = block_split({"a": (128, 128), "b": (40, 40)}, 32, 0.1, 0.2, seed=3, train_only=frozenset({"b"}))
    write_split(tmp_path / "split.json", blocks, {"block_px": 32})
    again, settings = read_split(tmp_path / "split.json")
    assert again == blocks and settings == {"block_px": 32}
    assert [b.role for b in blocks if b.scene == "b"] == ["train"]


def test_too_small_scene_for_held_out_blocks_gets_an_actionable_error():
    with pytest.raises(ValueError, match="smaller block_px or mark the scene train-only"):
        block_split({"tiny": (41, 41)}, 32, 0.1, 0.2, seed=0)


def test_training_patches_never_touch_held_out_pixels(l5_scene):
    blocks = block_split({l5_scene.name: l5_scene.shape}, 64, 0.1, 0.2, seed=0)
    train = role_mask(blocks, l5_scene.name, l5_scene.shape, "train")
    normalizer = Normalizer.from_scenes([l5_scene], [train])
    sampler = ScenePatches([l5_scene], blocks, 4, 40, normalizer)
    for r, c in sampler.positions[0]:
        assert r % 4 == 0 and c % 4 == 0
        assert train[r : r + 40, c : c + 40].all()
    batch = sampler.batch(3, np.random.default_rng(0))
    assert batch["lst"].shape == (3, 1, 10, 10) and batch["guidance"].shape == (3, 8, 40, 40)
    assert batch["target"].shape == batch["mask"].shape == (3, 1, 40, 40)


def test_normalisation_statistics_come_from_the_training_area_only(l5_scene):
    blocks = block_split({l5_scene.name: l5_scene.shape}, 64, 0.1, 0.2, seed=0)
    train = role_mask(blocks, l5_scene.name, l5_scene.shape, "train")
    normalizer = Normalizer.from_scenes([l5_scene], [train])
    assert normalizer.lst_mean_kelvin == pytest.approx(float(np.mean(l5_scene.lst_kelvin[train])), rel=1e-6)
    assert normalizer.lst_mean_kelvin != pytest.approx(float(np.mean(l5_scene.lst_kelvin)), rel=1e-7)


def test_flips_and_rotations_keep_lst_guidance_and_coarse_aligned(l5_scene):
    """Guidance bands holding each pixel's original row, column and LST must still describe
    the LST pixel beside them after augmentation, and each coarse pixel must average one
    original 4 x 4 block, whether the coarse LST is made after augmenting (scenes) or
    augmented beside the fine LST (GrokLST patches)."""
    lst = l5_scene.lst_kelvin[:32, :32]
    rows, cols = np.indices(lst.shape)
    guidance = np.stack([rows, cols, lst]).astype(np.float32)
    coarse = area_average(lst, 4)
    seen = set()
    for seed in range(32):
        aug_lst, aug_guidance = augment([lst, guidance], np.random.default_rng(seed))
        from_row, from_col = aug_guidance[0].astype(int), aug_guidance[1].astype(int)
        assert np.array_equal(aug_lst, lst[from_row, from_col])
        assert np.array_equal(aug_guidance[2], aug_lst)
        for origin in (from_row // 4, from_col // 4):
            cells = origin.reshape(8, 4, 8, 4)
            assert (cells == cells[:, :1, :, :1]).all()
        expected = coarse[from_row[::4, ::4] // 4, from_col[::4, ::4] // 4]
        assert np.allclose(
            sample_from_fine("x", aug_lst, aug_guidance, 4).coarse_kelvin, expected, rtol=0, atol=1e-4
        )
        aug_coarse, aug_fine = augment([coarse, lst], np.random.default_rng(seed))
        assert np.allclose(area_average(aug_fine, 4), aug_coarse, rtol=0, atol=1e-4)
        seen.add(aug_lst.tobytes())
    assert len(seen) == 8


def test_masked_pixels_do_not_count_in_the_loss_or_the_scores(l5_scene):
    fine = l5_scene.lst_kelvin[:32, :32].copy()
    fine[:8, :8] = np.nan
    sample = sample_from_fine("masked", fine, l5_scene.guidance[:, :32, :32], 4)
    assert not sample.mask[:8, :8].any() and sample.mask[8:, 8:].all()
    target = torch.zeros(1, 1, 4, 4)
    mask = torch.ones(1, 1, 4, 4)
    mask[..., 0, 0] = 0
    prediction = torch.zeros(1, 1, 4, 4)
    prediction[..., 0, 0] = 1000.0
    assert masked_l1(prediction, target, mask).item() == 0.0


def test_held_out_samples_are_whole_test_blocks(l5_scene):
    blocks = block_split({l5_scene.name: l5_scene.shape}, 64, 0.1, 0.2, seed=0)
    samples = held_out_samples([l5_scene], blocks, "test", 8)
    assert len(samples) == sum(b.role == "test" for b in blocks)
    assert all(s.coarse_kelvin.shape == (8, 8) and s.fine_kelvin.shape == (64, 64) for s in samples)


def write_groklst(root, scale: int, n: int, rng) -> None:
    for folder in (f"{30 * scale}m/lst", "30m/lst", "30m/guidance", "split"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        fine = 290 + rng.normal(size=(16, 16)).astype(np.float32)
        fine[0, 0] = 0.0
        savemat(root / "30m/lst" / f"{i:04d}.mat", {"data": fine})
        savemat(root / f"{30 * scale}m/lst" / f"{i:04d}.mat", {"data": area_average(fine, scale)})
        savemat(root / "30m/guidance" / f"{i:04d}.mat", {b.name: rng.random((16, 16)) for b in GROKLST_BANDS})
    (root / "split/trainval.txt").write_text("0\n1\n2\n")
    (root / "split/test.txt").write_text("3\n")


def test_groklst_layout_reads_the_listed_patches_with_their_ten_bands(tmp_path):
    write_groklst(tmp_path, 4, 4, np.random.default_rng(0))
    train = read_groklst(tmp_path, 4, "trainval")
    test = read_groklst(tmp_path, 4, "test")
    assert len(train) == 3 and [s.name for s in test] == ["0003"]
    assert train[0].guidance.shape == (10, 16, 16) and train[0].coarse_kelvin.shape == (4, 4)
    assert np.isnan(train[0].fine_kelvin[0, 0]) and not train[0].mask[0, 0]
    sampler = SamplePatches(train, 4, 8, groklst_normalizer(4))
    batch = sampler.batch(2, np.random.default_rng(0))
    assert batch["lst"].shape == (2, 1, 2, 2) and batch["guidance"].shape == (2, 10, 8, 8)


def test_groklst_missing_folder_names_what_the_scale_needs(tmp_path):
    write_groklst(tmp_path, 4, 1, np.random.default_rng(0))
    with pytest.raises(FileNotFoundError, match="x8 needs 240m/lst"):
        read_groklst(tmp_path, 8, "test")


def test_sample_mask_excludes_pixels_under_invalid_coarse_cells():
    fine = np.full((8, 8), 290.0, np.float32)
    coarse = np.full((2, 2), 290.0, np.float32)
    coarse[1, 1] = np.nan
    sample = Sample("s", coarse, np.zeros((1, 8, 8), np.float32), fine)
    assert sample.mask.sum() == 48 and not sample.mask[4:, 4:].any()


def test_guidance_bands_the_engine_does_not_know_must_be_declared(scene_tifs, tmp_path, l5_scene):
    names = ("a", "b", "c", "d", "e", "f", "g", "h")
    odd = write_geotiff(tmp_path / "g.tif", l5_scene.guidance[:, :CROP_PX, :CROP_PX], 30.0, names)
    with pytest.raises(ValueError, match="declare data.guidance_bands"):
        read_geotiff_scene(scene_tifs[0], odd)


def test_fine_and_coarse_only_scenes_train_together(scene_tifs, coarse_tifs, tmp_path):
    from tests.training.conftest import write_config
    from training.config import TrainConfig
    from training.sources import build_training_data

    config = TrainConfig.load(write_config(tmp_path, *scene_tifs, patch_px=16))
    data = dict(config.data)
    data["scenes"] = [
        *data["scenes"],
        {
            "kind": "coarse_geotiff",
            "lst": str(coarse_tifs[0]),
            "guidance": str(coarse_tifs[1]),
            "role": "train",
            "name": "coarse",
        },
    ]
    config = TrainConfig.from_dict({**config.to_dict(), "data": data}, config.base_dir)
    built = build_training_data(config, tmp_path / "run")
    assert [s.shape for s in built.sampler.scenes] == [(CROP_PX, CROP_PX), (CROP_PX // 4, CROP_PX // 4)]
    assert len(built.sampler.positions[1]) > 0 and 0 < built.sampler.weights[1] < built.sampler.weights[0]
    assert not built.test_scenes


def test_groklst_validation_comes_from_trainval_never_from_the_test_list(tmp_path):
    from training.config import TrainConfig
    from training.sources import build_training_data

    write_groklst(tmp_path / "groklst", 4, 4, np.random.default_rng(0))
    config = TrainConfig.from_dict(
        {"name": "g", "scale": 4, "data": {"kind": "groklst", "root": "groklst"}, "patch_px": None}, tmp_path
    )
    data = build_training_data(config, tmp_path / "run")
    assert [s.name for s in data.val] == ["0000"] and [s.name for s in data.test] == ["0003"]
    assert sorted(s.name for s in data.sampler.samples) == ["0001", "0002"]


CORPUS_CONFIGS = [f"training/configs/landsat-x{scale}-corpus.json" for scale in (2, 4, 8)]
ADDED_SCENES = (
    "LE07-016035-2000-raleigh",
    "LC08-elkton-va",
    "LE07-022049-1999-chiapas",
    "LE07-022049-2002-chiapas",
    "LT04-013030-1987-vermont",
    "LT05-013030-1994-vermont",
    "LT05-012031-2002-massachusetts",
    "LE07-215065-2000-semiarid",
    "LC08-215065-2017-semiarid",
    "LE07-013031-2015-berkshires",
    "LT05-047027-2002-chehalis",
    "LE07-047027-2000-chehalis",
    "LT05-046027-2005-chehalis",
    "LC08-091084-2019-canberra",
    "LC08-204033-2021-lisbon",
)
HOT_TARGET = "LC08-099069-2020-capeyork-fire"


def corpus_entry(name: str) -> tuple[dict, object]:
    import json

    from tests.conftest import REPO
    from training.config import TrainConfig

    path = REPO / CORPUS_CONFIGS[1]
    entries = {e["name"]: e for e in json.loads(path.read_text())["data"]["scenes"]}
    return entries[name], TrainConfig.load(path)


@pytest.fixture(scope="module")
def added_scenes():
    from training.sources import read_scene

    loaded = {}
    for name in (*ADDED_SCENES, HOT_TARGET):
        entry, config = corpus_entry(name)
        loaded[name] = read_scene(entry, config, None)
    return loaded


@pytest.mark.parametrize("name", ADDED_SCENES)
def test_added_scenes_load_with_plausible_kelvin_and_reflectance(added_scenes, name):
    scene = added_scenes[name]
    assert scene.site and scene.sensor in ("LANDSAT_4", "LANDSAT_5", "LANDSAT_7", "LANDSAT_8", "LANDSAT_9")
    assert scene.valid.mean() > 0.1
    lst = scene.lst_kelvin[scene.valid]
    assert 250.0 < lst.min() and lst.max() < 340.0 and 280.0 < np.median(lst) < 310.0
    assert scene.band_names == ("blue", "green", "red", "nir", "swir1", "swir2", "ndvi", "ndwi")
    reflectance = scene.guidance[:6][:, scene.valid]
    assert np.all((0.01 < np.median(reflectance, axis=1)) & (np.median(reflectance, axis=1) < 0.5))
    assert -0.05 < np.percentile(reflectance, 0.1) and np.percentile(reflectance, 99.9) < 1.05
    ndvi = scene.guidance[6][scene.valid]
    assert 0.2 < np.median(ndvi) < 0.9
    assert scene.native_pixel_m in (60.0, 100.0, 120.0) and 28.0 < scene.pixel_size_m < 31.0
    assert scene.quantisation_k and scene.quantisation_k < 0.7


def test_raleigh_assumed_gains_reproduce_the_radiances_grass_printed_for_these_rasters():
    """i.landsat.toar gave band 3 a minimum of 7.433 W/m2/sr/um (DN 21 here) and band 6 6.239-11.136
    (DN 94-167): the assumed high/low gains must give the same numbers."""
    entry, _ = corpus_entry("LE07-016035-2000-raleigh")
    meta = entry["metadata"]

    def radiance(band: str, dn: float) -> float:
        return meta[f"RADIANCE_MULT_BAND_{band}"] * dn + meta[f"RADIANCE_ADD_BAND_{band}"]

    assert radiance("3", 21) == pytest.approx(7.43307, abs=1e-3)
    assert radiance("2", 32) == pytest.approx(18.36339, abs=1e-3)
    assert radiance("4", 219) == pytest.approx(206.2055, abs=1e-2)
    assert radiance("6_VCID_1", 94) == pytest.approx(6.23906, abs=1e-3)
    assert radiance("6_VCID_1", 167) == pytest.approx(11.13638, abs=1e-3)


def test_a_thermal_band_on_twice_the_reflective_pixel_is_repeated_onto_the_reflective_grid(added_scenes):
    from osgeo import gdal

    from engine.landsat import brightness_temperature_kelvin
    from tests.conftest import REPO

    entry, _ = corpus_entry("LE07-016035-2000-raleigh")
    dn = gdal.Open(
        str(REPO / SATELLITE_DATA / "landsat7-etm-2000-raleigh" / "lsat7_2000_61.tif")
    ).ReadAsArray()
    expected = brightness_temperature_kelvin(
        dn.astype(np.float32), {k: str(v) for k, v in entry["metadata"].items()}, "6_VCID_1"
    )
    scene = added_scenes["LE07-016035-2000-raleigh"]
    assert scene.shape == (475, 527)
    np.testing.assert_allclose(scene.lst_kelvin[:474:2, :527:2], expected[:, :264], rtol=0, atol=1e-4)
    np.testing.assert_allclose(scene.lst_kelvin[1:474:2, 1:527:2], expected[:, :263], rtol=0, atol=1e-4)
    assert np.isnan(scene.lst_kelvin[474]).all()


def test_ledaps_stack_temperature_is_celsius_hundredths_in_kelvin_and_fmask_cloud_is_masked(added_scenes):
    from osgeo import gdal

    from tests.conftest import REPO

    path = REPO / SATELLITE_DATA / "landsat7-etm-2002-chiapas" / "LE70220492002106EDC00_stack.gtif"
    stack = gdal.Open(str(path)).ReadAsArray()
    scene = added_scenes["LE07-022049-2002-chiapas"]
    clear = stack[7] == 0
    row, col = np.argwhere(clear & np.isfinite(scene.lst_kelvin))[0]
    assert scene.lst_kelvin[row, col] == pytest.approx(stack[6, row, col] * 0.01 + 273.15, abs=1e-3)
    assert scene.guidance[3, row, col] == pytest.approx(stack[3, row, col] * 1e-4, abs=1e-6)
    assert np.isnan(scene.lst_kelvin[stack[7] == 4]).all()
    assert np.isnan(scene.guidance[0][stack[0] == 16000]).all()


def test_collection2_qa_pixel_masks_fill_cloud_cirrus_and_shadow_but_keeps_clear_and_water():
    from training.level2 import qa_invalid

    clear, water, fill, dilated, cirrus, cloud, shadow = 21824, 21952, 1, 21890, 54596, 22280, 23888
    qa = np.array([[clear, water, fill, dilated, cirrus, cloud, shadow]], np.float32)
    assert qa_invalid(qa, "qa_pixel", 0).tolist() == [[False, False, True, True, True, True, True]]
    fmask = np.array([[0, 1, 2, 3, 4, 255]], np.float32)
    assert qa_invalid(fmask, "fmask", 0).tolist() == [[False, False, True, False, True, True]]
    # ESPA pixel_qa: clear 322, water 324, fill 1, cloud shadow 328, snow 336, cloud 352 (+ confidences)
    pixel_qa = np.array([[322, 324, 1, 328, 336, 352, 480]], np.float32)
    assert qa_invalid(pixel_qa, "pixel_qa", 0).tolist() == [[False, False, True, True, False, True, True]]
    with pytest.raises(ValueError, match="qa kind must be one of"):
        qa_invalid(fmask, "bqa", 0)


def test_corpus_configs_name_a_site_for_every_scene_and_list_the_same_scenes_at_every_scale():
    import json

    from tests.conftest import REPO

    lists = [json.loads((REPO / path).read_text())["data"]["scenes"] for path in CORPUS_CONFIGS]
    assert lists[0] == lists[1] == lists[2]
    assert all(entry.get("site") for entry in lists[0])
    assert len({entry["site"] for entry in lists[0]}) >= 10
    assert set(ADDED_SCENES) <= {entry["name"] for entry in lists[0]}


def test_espa_product_temperature_is_tenths_of_kelvin_and_cfmask_cloud_is_masked(added_scenes):
    from osgeo import gdal

    from tests.conftest import REPO

    folder = REPO / SATELLITE_DATA / "landsat4-tm-1987-vermont"
    stored = gdal.Open(str(folder / "LT40130301987146XXX01_toa_band6.tif")).ReadAsArray()
    cfmask = gdal.Open(str(folder / "LT40130301987146XXX01_cfmask.tif")).ReadAsArray()
    scene = added_scenes["LT04-013030-1987-vermont"]
    row, col = np.argwhere(cfmask == 0)[0]
    assert scene.lst_kelvin[row, col] == pytest.approx(stored[row, col] * 0.1, abs=1e-3)
    assert np.isnan(scene.lst_kelvin[cfmask == 4]).all() and np.isnan(scene.lst_kelvin[cfmask == 2]).all()
    assert np.isfinite(scene.lst_kelvin[cfmask == 0]).all()


def test_a_band_stacked_level1_file_reads_each_landsat_band_from_its_stack_band(added_scenes):
    from osgeo import gdal

    from engine.landsat import brightness_temperature_kelvin, read_mtl
    from tests.conftest import REPO

    folder = REPO / SATELLITE_DATA / "landsat8-oli-tirs-2021-lisbon"
    cube = gdal.Open(str(folder / "LC08_cube.tiff")).ReadAsArray().astype(np.float32)
    mtl = read_mtl(folder / "LC08_L1TP_204033_20210525_20210529_02_T1_MTL_from_tiff.txt")
    scene = added_scenes["LC08-204033-2021-lisbon"]
    np.testing.assert_allclose(scene.lst_kelvin, brightness_temperature_kelvin(cube[6], mtl, "10"), atol=1e-4)
    sun = np.sin(np.radians(float(mtl["SUN_ELEVATION"])))
    np.testing.assert_allclose(scene.guidance[2], (2e-5 * cube[2] - 0.1) / sun, atol=1e-5)


def test_the_fire_scene_keeps_its_hot_pixels_and_the_saturated_swir_as_delivered(added_scenes):
    scene = added_scenes[HOT_TARGET]
    assert scene.valid.mean() > 0.99
    assert np.nanmax(scene.lst_kelvin) > 355.0 and (scene.lst_kelvin > 320.0).sum() > 100
    assert 295.0 < np.nanmedian(scene.lst_kelvin) < 305.0
    saturated = (2e-5 * 65535 - 0.1) / np.sin(np.radians(54.7))
    assert np.isclose(scene.guidance[5], saturated, atol=1e-4).sum() > 50


def test_collection2_level2_files_become_kelvin_and_reflectance_by_the_usgs_scalings(tmp_path):
    from osgeo import gdal

    from training.level2 import Level2Options, read_level2_scene

    def write(name: str, values: np.ndarray) -> str:
        ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / name), 4, 3, 1, gdal.GDT_UInt16)
        ds.SetGeoTransform((500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0))
        ds.GetRasterBand(1).WriteArray(values.astype(np.uint16))
        ds.FlushCache()
        return name

    fill = np.zeros((3, 4), bool)
    fill[0, 0] = True
    reflective = [write(f"SR_B{band}.TIF", np.where(fill, 0, 10000 + band)) for band in range(2, 8)]
    st = np.full((3, 4), 44000)
    qa = np.full((3, 4), 21824)
    qa[2, 3] = 22280
    options = Level2Options(
        folder=str(tmp_path),
        sensor="LANDSAT_8",
        product="collection2",
        reflective=tuple(reflective),
        thermal=write("ST_B10.TIF", st),
        qa=write("QA_PIXEL.TIF", qa),
    )
    scene = read_level2_scene(options, "c2")
    assert scene.lst_kelvin[1, 1] == pytest.approx(44000 * 0.00341802 + 149.0, abs=1e-3)
    assert scene.guidance[2, 1, 1] == pytest.approx(10004 * 2.75e-5 - 0.2, abs=1e-6)
    assert np.isnan(scene.lst_kelvin[2, 3]) and np.isfinite(scene.lst_kelvin[2, 2])
    assert np.isnan(scene.guidance[:6, 0, 0]).all() and not scene.valid[0, 0]
    assert scene.native_pixel_m == 100.0 and scene.sensor == "LANDSAT_8"

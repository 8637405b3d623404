"""Masks: LST nodata, cloud/QA masks and guidance nodata become output nodata, and masked
values never leak into the pixels around them."""

from __future__ import annotations

import numpy as np
import pytest

from engine import pipeline
from engine.errors import InputError
from engine.masks import expand, grow_mask
from engine.pipeline import OUTPUT_NODATA

from .conftest import read, run_downscale

SCALE = 4
BLOCK = (slice(12, 18), slice(8, 14))  # coarse pixels masked in the small scene
RING_PX = 2 * SCALE
LEAK_TOLERANCE_K = 1.0


def fine_block(block=BLOCK, scale=SCALE):
    return tuple(slice(s.start * scale, s.stop * scale) for s in block)


def ring_mask(shape, block=BLOCK):
    rows, cols = fine_block(block)
    ring = np.zeros(shape, bool)
    ring[rows.start - RING_PX : rows.stop + RING_PX, cols.start - RING_PX : cols.stop + RING_PX] = True
    ring[rows, cols] = False
    return ring


def run_methods(small_scene, tiny_package_x4, tmp_path, **overrides):
    outputs = {}
    for method in ("bicubic", "mocolsk"):
        model = str(tiny_package_x4.card_path) if method == "mocolsk" else None
        result, _ = run_downscale(
            small_scene,
            tmp_path / f"{method}_{len(list(tmp_path.iterdir()))}.tif",
            method=method,
            model=model,
            **overrides,
        )
        outputs[method] = read(result.output_path)
    return outputs


@pytest.fixture(scope="module")
def unmasked(small_scene, tiny_package_x4, tmp_path_factory):
    return run_methods(small_scene, tiny_package_x4, tmp_path_factory.mktemp("unmasked"))


def assert_block_is_nodata_and_ring_is_clean(outputs, unmasked):
    """Masked coarse pixels are nodata, all others valid, and the ring around the block
    stays within 1 K of the run without a mask. Next to the block the fill replaces the
    true neighbours (the LST under the block spans about 1 K), so some change is expected;
    a leak of the masked values (-9999 or 350 K) would be tens of Kelvin."""
    rows, cols = fine_block()
    for method, values in outputs.items():
        assert (values[rows, cols] == OUTPUT_NODATA).all(), method
        outside = np.ones(values.shape, bool)
        outside[rows, cols] = False
        assert (values[outside] != OUTPUT_NODATA).all(), method
        ring = ring_mask(values.shape)
        assert np.abs(values[ring] - unmasked[method][ring]).max() < LEAK_TOLERANCE_K, method


def test_lst_nodata_is_output_nodata_and_does_not_leak(small_scene, tiny_package_x4, unmasked, tmp_path):
    lst = small_scene.lst_kelvin.copy()
    lst[BLOCK] = -9999.0
    path = small_scene.write_lst("lst_nodata.tif", lst, nodata=-9999.0, unit="K")
    outputs = run_methods(small_scene, tiny_package_x4, tmp_path, lst_path=path)
    assert_block_is_nodata_and_ring_is_clean(outputs, unmasked)


def test_a_cloud_mask_hides_even_extreme_values_under_it(small_scene, tiny_package_x4, unmasked, tmp_path):
    lst = small_scene.lst_kelvin.copy()
    lst[BLOCK] = 350.0  # a hot artefact the mask must keep out
    qa = np.zeros(lst.shape, np.uint8)
    qa[BLOCK] = 1
    lst_path = small_scene.write_lst("lst_hot.tif", lst, unit="K")
    qa_path = small_scene.write_lst("cloud.tif", qa)
    outputs = run_methods(small_scene, tiny_package_x4, tmp_path, lst_path=lst_path, qa_mask_path=qa_path)
    assert_block_is_nodata_and_ring_is_clean(outputs, unmasked)


def test_landsat_qa_pixel_bits_mask_clouds_but_not_clear_pixels(small_scene, tmp_path):
    qa = np.full(small_scene.lst_kelvin.shape, 1 << 6, np.uint16)  # bit 6: clear
    qa[BLOCK] = (1 << 3) | (1 << 1)  # cloud, dilated cloud
    qa_path = small_scene.write_lst("LC08_QA_PIXEL.TIF", qa)
    result, lines = run_downscale(small_scene, tmp_path / "out.tif", qa_mask_path=qa_path)
    assert "QA mask read as landsat_qa_pixel (the name says QA_PIXEL)" in lines
    values = read(result.output_path)
    assert (values == OUTPUT_NODATA).sum() == 24 * 24
    assert (values[fine_block()] == OUTPUT_NODATA).all()


def test_guidance_nodata_is_output_nodata_and_does_not_leak(small_scene, tiny_package_x4, unmasked, tmp_path):
    guidance = small_scene.guidance.copy()
    water = (slice(50, 70), slice(30, 47))  # fine pixels, not aligned to coarse pixels
    guidance[:, water[0], water[1]] = -1.0
    path = small_scene.write_guidance(
        "guidance_water.tif",
        guidance,
        nodata=-1.0,
        descriptions=["blue", "green", "red", "nir", "swir1", "swir2"],
    )
    outputs = run_methods(small_scene, tiny_package_x4, tmp_path, guidance_paths=[path])
    for method, values in outputs.items():
        masked = values == OUTPUT_NODATA
        assert masked[water].all() and masked.sum() == 20 * 17, method
        ring = np.zeros(values.shape, bool)
        ring[42:78, 22:55] = True
        ring[water] = False
        assert np.abs(values[ring] - unmasked[method][ring]).max() < LEAK_TOLERANCE_K, method


def test_a_qa_mask_off_the_lst_grid_is_an_error(small_scene, tmp_path):
    qa_path = small_scene.write_guidance("qa_fine.tif", np.zeros((128, 96), np.uint8))
    with pytest.raises(
        InputError, match=r"QA mask .*qa_fine\.tif is not on the LST's grid \(96x128 vs 24x32 px"
    ):
        run_downscale(small_scene, tmp_path / "out.tif", qa_mask_path=qa_path)


@pytest.mark.parametrize("pixels", [0, 1, 3])
def test_growing_a_mask_turns_one_pixel_into_a_square_clipped_at_the_edges(pixels):
    mask = np.zeros((9, 10), bool)
    mask[4, 5] = mask[0, 9] = True
    expected = np.zeros_like(mask)
    expected[4 - pixels : 5 + pixels, 5 - pixels : 6 + pixels] = True
    expected[0 : 1 + pixels, 9 - pixels : 10] = True
    assert np.array_equal(grow_mask(mask, pixels), expected)


def test_a_grown_qa_mask_masks_the_fine_pixels_under_it_whatever_the_tiles_and_blocks(
    small_scene, tmp_path, monkeypatch
):
    """One cloud pixel next to a corner of 8 px conversion blocks and one at the scene's edge, grown by 2 px:
    the output is nodata exactly under the grown coarse mask with one tile or many, and the LST converted
    in several blocks gives the very same output as in one (the growth crosses the block borders)."""
    qa = np.zeros(small_scene.lst_kelvin.shape, np.uint8)
    qa[9, 7] = qa[0, 23] = 1
    qa_path = small_scene.write_lst("one_cloud.tif", qa)
    outputs = []
    for name, tile_size_px, block_px in (("one", 512, 512), ("tiles", 16, 512), ("blocks", 16, 8)):
        monkeypatch.setattr(pipeline, "CONVERSION_BLOCK_PX", block_px)
        result, lines = run_downscale(
            small_scene,
            tmp_path / f"{name}.tif",
            qa_mask_path=qa_path,
            qa_mask_grow_px=2,
            tile_size_px=tile_size_px,
        )
        assert "QA mask grown by 2 px: 32 more LST pixels masked" in lines
        outputs.append(read(result.output_path))
    expected = expand(grow_mask(qa != 0, 2), SCALE)
    assert all(np.array_equal(values == OUTPUT_NODATA, expected) for values in outputs)
    assert np.array_equal(outputs[1], outputs[2])


@pytest.mark.parametrize("pixels", [-1, 51])
def test_a_qa_mask_growth_outside_0_to_50_px_is_an_error(small_scene, tmp_path, pixels):
    qa_path = small_scene.write_lst("no_cloud.tif", np.zeros(small_scene.lst_kelvin.shape, np.uint8))
    with pytest.raises(
        InputError, match=rf"QA mask growth {pixels} px is out of range; use 0 to 50 LST pixels"
    ):
        run_downscale(small_scene, tmp_path / "out.tif", qa_mask_path=qa_path, qa_mask_grow_px=pixels)


def test_growing_the_qa_mask_without_a_qa_mask_is_an_error(small_scene, tmp_path):
    with pytest.raises(
        InputError, match="QA mask growth of 3 px needs a QA mask; give a QA mask or set the growth to 0"
    ):
        run_downscale(small_scene, tmp_path / "out.tif", qa_mask_grow_px=3)

"""Guidance bands: matched to what the method needs by description, by the names given or
by order; indices derived from red and NIR; a missing band is an error naming it."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError

from .conftest import GUIDANCE_BANDS, read, run_downscale


@pytest.fixture(scope="module")
def single_band_files(small_scene):
    """The guidance as one file per band, without band descriptions."""
    return [
        small_scene.write_guidance(f"band_{name}.tif", small_scene.guidance[i], nodata=-1.0)
        for i, name in enumerate(GUIDANCE_BANDS)
    ]


@pytest.fixture(scope="module")
def by_description(small_scene, tiny_package_x4, tmp_path_factory):
    result, _ = run_downscale(
        small_scene,
        tmp_path_factory.mktemp("desc") / "out.tif",
        method="mocolsk",
        model=str(tiny_package_x4.card_path),
    )
    return result


def test_bands_are_matched_by_their_descriptions(by_description):
    assert by_description.guidance_mapping == "by band name: blue, green, red, nir, swir1, swir2"


def test_single_band_files_named_in_order_give_the_same_result(
    small_scene, tiny_package_x4, single_band_files, by_description, tmp_path
):
    result, _ = run_downscale(
        small_scene,
        tmp_path / "out.tif",
        method="mocolsk",
        model=str(tiny_package_x4.card_path),
        guidance_paths=single_band_files,
        guidance_band_names=list(GUIDANCE_BANDS),
    )
    np.testing.assert_array_equal(read(result.output_path), read(by_description.output_path))


def test_names_given_in_another_order_are_reordered_for_the_model(
    small_scene, tiny_package_x4, single_band_files, by_description, tmp_path
):
    order = [3, 0, 5, 1, 4, 2]
    names = [list(GUIDANCE_BANDS)[i] for i in order]
    result, _ = run_downscale(
        small_scene,
        tmp_path / "out.tif",
        method="mocolsk",
        model=str(tiny_package_x4.card_path),
        guidance_paths=[single_band_files[i] for i in order],
        guidance_band_names=names,
    )
    np.testing.assert_array_equal(read(result.output_path), read(by_description.output_path))


def test_unnamed_bands_are_refused_with_the_names_to_give_never_taken_in_some_order(
    small_scene, tiny_package_x4, single_band_files, tmp_path
):
    # Red, green, blue order: taken in the model's order, red would be read as blue.
    swapped = [single_band_files[i] for i in (2, 1, 0, 3, 4, 5)]
    with pytest.raises(
        InputError,
        match=r"the 6 guidance band\(s\) have no names, and their order cannot be guessed safely; give one "
        r"name per band .*'Guidance band names' \(--bands\), e\.g\. blue,green,red,nir,swir1,swir2 if that",
    ):
        run_downscale(
            small_scene,
            tmp_path / "out.tif",
            method="mocolsk",
            model=str(tiny_package_x4.card_path),
            guidance_paths=swapped,
        )
    assert not (tmp_path / "out.tif").exists()


def test_a_missing_band_is_an_error_naming_it(small_scene, tiny_package_x4, single_band_files, tmp_path):
    with pytest.raises(
        InputError,
        match=r"guidance band 'swir2' needed by model 'tiny_x4' is missing; the guidance bands are \[blue, "
        r"green, red, nir, swir1\]",
    ):
        run_downscale(
            small_scene,
            tmp_path / "out.tif",
            method="mocolsk",
            model=str(tiny_package_x4.card_path),
            guidance_paths=single_band_files[:5],
            guidance_band_names=list(GUIDANCE_BANDS)[:5],
        )


def test_one_name_per_band_is_required(small_scene, tmp_path):
    with pytest.raises(
        InputError, match=r"2 guidance band name\(s\) given \(red, nir\) for 6 guidance band\(s\)"
    ):
        run_downscale(small_scene, tmp_path / "out.tif", method="tsharp", guidance_band_names=["red", "nir"])


def test_tsharp_derives_ndvi_from_red_and_nir(small_scene, single_band_files, tmp_path):
    red, nir = single_band_files[2], single_band_files[3]
    result, lines = run_downscale(
        small_scene,
        tmp_path / "out.tif",
        method="tsharp",
        guidance_paths=[red, nir],
        guidance_band_names=["red", "nir"],
    )
    assert result.guidance_mapping == "by band name: ndvi"
    assert any(line.startswith("TsHARP fit on") for line in lines)


def test_tsharp_without_red_is_an_error_saying_how_to_derive_ndvi(small_scene, single_band_files, tmp_path):
    with pytest.raises(
        InputError, match=r"guidance band 'ndvi' \(or nir and red to derive it\) needed by TsHARP is missing"
    ):
        run_downscale(
            small_scene,
            tmp_path / "out.tif",
            method="tsharp",
            guidance_paths=single_band_files[:2],
            guidance_band_names=["blue", "green"],
        )


def test_guidance_in_reflectance_range_but_unlike_the_training_data_is_flagged_in_the_log(
    small_scene, tiny_package_x4, tmp_path
):
    brightened = small_scene.write_guidance(
        "guidance_bright.tif", small_scene.guidance + 0.9, nodata=-400.0, descriptions=list(GUIDANCE_BANDS)
    )
    _, lines = run_downscale(
        small_scene,
        tmp_path / "out.tif",
        method="mocolsk",
        model=str(tiny_package_x4.card_path),
        guidance_paths=[brightened],
    )
    warnings = [line for line in lines if line.startswith("Warning: guidance band")]
    assert len(warnings) == 6
    assert "'blue' has a median of" in warnings[0] and "check that it is in reflectance" in warnings[0]
    _, lines = run_downscale(
        small_scene, tmp_path / "again.tif", method="mocolsk", model=str(tiny_package_x4.card_path)
    )
    assert not any(line.startswith("Warning") for line in lines)


def test_guidance_in_digital_numbers_is_refused_naming_the_band_and_the_fix(
    small_scene, tiny_package_x4, tmp_path
):
    digital_numbers = small_scene.write_guidance(
        "guidance_dn.tif", small_scene.guidance / 0.0025, nodata=-400.0, descriptions=list(GUIDANCE_BANDS)
    )
    with pytest.raises(
        InputError,
        match=r"Guidance .*guidance_dn\.tif: guidance band 'blue' has values .* outside the -0\.5 to 2 .*"
        r"Convert the band to reflectance",
    ):
        run_downscale(
            small_scene,
            tmp_path / "out.tif",
            method="mocolsk",
            model=str(tiny_package_x4.card_path),
            guidance_paths=[digital_numbers],
        )
    assert list(tmp_path.iterdir()) == []

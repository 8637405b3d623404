"""Model "auto" decided from grids alone (``engine.auto_model``): the bundled package(s) and scale(s) for a
pixel ratio, the sensor's native pixel for an LST on the guidance grid, cascades beyond x8, and the words
the dialog shows. The pipeline runs on the same decision (test_pipeline_model_choice, test_pipeline_grids)."""

import pytest

from engine.auto_model import AUTO_MODEL, auto_model, auto_packages
from engine.errors import InputError
from engine.grids import Grid
from engine.package import bundled_scales
from engine.raster import epsg_wkt

UTM = epsg_wkt(32722)  # zone 22 south: 9,000,000 m north is 9 degrees south
GUIDANCE = Grid(UTM, (500000.0, 30.0, 0.0, 9000000.0, 0.0, -30.0), 64, 64)
X2, X4, X8 = (f"mocolsk-x{scale}-landsat-light" for scale in (2, 4, 8))


def lst_grid(pixel: float, crs_wkt: str = UTM, height: float | None = None) -> Grid:
    """An LST grid over the guidance with pixels of ``pixel`` (by ``height``) in ``crs_wkt``'s units."""
    origin = (500000.0, 9000000.0) if crs_wkt == UTM else (-51.0, -9.6)
    return Grid(crs_wkt, (origin[0], pixel, 0.0, origin[1], 0.0, -(height or pixel)), 8, 8)


def test_the_bundled_packages_are_auto_s_choice_one_per_scale():
    assert auto_packages(bundled_scales()) == {2: X2, 4: X4, 8: X8}
    assert auto_packages({"b-x4": 4, "a-x4": 4}) == {4: "a-x4"}
    assert AUTO_MODEL == "auto"


@pytest.mark.parametrize(
    ("pixel_m", "steps", "label"),
    [
        (120.0, ((X4, 4),), f"auto runs {X4}: LST 120 m / guidance 30 m = x4"),
        (60.0, ((X2, 2),), f"auto runs {X2}: LST 60 m / guidance 30 m = x2"),
        (100.0, ((X4, 4),), f"auto runs {X4}: LST 100 m / guidance 30 m, averaged onto 120 m = x4"),
        (960.0, ((X4, 4), (X8, 8)), f"auto runs {X4} then {X8}: LST 960 m / guidance 30 m = x4 then x8"),
        (1920.0, ((X8, 8), (X8, 8)), f"auto runs {X8} then {X8}: LST 1920 m / guidance 30 m = x8 then x8"),
    ],
)
def test_an_lst_coarser_than_the_guidance_runs_the_packages_whose_scales_fit_its_pixel_ratio(
    pixel_m, steps, label
):
    auto = auto_model(lst_grid(pixel_m), GUIDANCE, bundled_scales())
    assert auto.steps == steps
    assert auto.label == label


def test_a_ratio_beyond_every_cascade_fits_nothing_and_says_which_ratios_the_packages_reach():
    auto = auto_model(lst_grid(20000.0), GUIDANCE, bundled_scales())
    assert auto.steps == () and auto.total_scale == 0
    assert (
        auto.label == "auto: no bundled package for LST 20000 m / guidance 30 m = x667; choose a package file"
    )
    with pytest.raises(InputError, match=r"LST x.tif: its pixel is 667 times .* \(up to x512 in 3 steps\)"):
        auto.required_steps("LST x.tif")


def test_an_lst_on_the_guidance_grid_runs_from_its_sensor_s_native_pixel_when_known():
    unknown = auto_model(lst_grid(30.0), GUIDANCE, bundled_scales())
    assert unknown.steps == ()
    assert unknown.label == (
        "auto: LST on the guidance grid (30 m); set Native LST pixel (m) to the pixel its sensor saw"
    )
    tm = auto_model(lst_grid(30.0), GUIDANCE, bundled_scales(), (120.0, "TM senses 120 m"))
    assert tm.steps == ((X4, 4),)
    assert (
        tm.label == f"auto: LST on the guidance grid: averaged to its native 120 m pixel, then x4 with {X4}"
    )
    tirs = auto_model(lst_grid(30.0), GUIDANCE, bundled_scales(), (100.0, "TIRS senses 100 m"))
    assert tirs.pixels.native_reason == "its pixel is 30 m but TIRS senses 100 m"
    assert tirs.label == (
        f"auto: LST on the guidance grid, native pixel 100 m: averaged onto 120 m, then x4 with {X4}"
    )
    far = auto_model(lst_grid(30.0), GUIDANCE, bundled_scales(), (20000.0, "given"))
    assert far.label == (
        "auto: LST on the guidance grid, native pixel 20000 m: no bundled package fits; choose a package file"
    )


def test_a_native_pixel_finer_than_the_lst_pixel_changes_nothing():
    auto = auto_model(lst_grid(120.0), GUIDANCE, bundled_scales(), (60.0, "ETM+ senses 60 m"))
    assert auto.steps == ((X4, 4),) and auto.pixels.native_pixel_m is None


def test_an_lst_sensed_coarser_than_delivered_is_labelled_with_both_pixels():
    auto = auto_model(lst_grid(60.0), GUIDANCE, bundled_scales(), (100.0, "TIRS senses 100 m"))
    assert auto.steps == ((X4, 4),)
    assert (
        auto.label == f"auto runs {X4}: LST 60 m, sensed at 100 m / guidance 30 m, averaged onto 120 m = x4"
    )


def test_lst_pixels_in_degrees_count_by_their_area_in_the_guidance_crs():
    """0.0011 degree near the equator is about 122 m by 122 m in UTM: x4, the one scale that fits."""
    auto = auto_model(lst_grid(0.0011, epsg_wkt(4326)), GUIDANCE, bundled_scales())
    assert 4.0 < auto.pixels.ratio < 4.2
    assert auto.steps == ((X4, 4),)


def test_a_native_pixel_is_not_used_over_a_guidance_whose_crs_is_not_in_metres():
    guidance = Grid(epsg_wkt(4326), (-51.0, 0.0003, 0.0, -9.6, 0.0, -0.0003), 64, 64)
    auto = auto_model(
        lst_grid(0.0003, epsg_wkt(4326)), guidance, bundled_scales(), (100.0, "TIRS senses 100 m")
    )
    assert auto.steps == () and "the guidance CRS is not in metres" in auto.pixels.native_note

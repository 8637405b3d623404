"""Does fine-tuning help on whole real scenes? Run it as a user would and score at 30 m.

    python -m training.studies.finetune_study [--data ../shared/data] [--out /tmp/finetune-study] [--steps 200]

For each scene the real thermal band (at-sensor brightness temperature on the ~30 m grid)
is area-averaged x4 into a coarse LST; the bundled x4 package is fine-tuned on that coarse
LST and the scene's TOA guidance (``python -m training finetune``, with the margin turned
off so that the fine-tuned model can be scored even when the default margin would refuse
it); then the parent, the fine-tuned package and bicubic downscale it
(``python -m engine downscale``, coarse-mean conservation on for all) and each is scored
against the real thermal band.

Scenes (see their SOURCE.md):
- Landsat 8, NW Florida (100 m TIRS band 10 delivered at 30 m): cloudy. The coarse LST leaves
  out the pixels its quality band gives medium or high cloud confidence, as a user would
  (its strict clear-sky mask leaves too little for x4 fine-tuning); scores count only the
  strict clear-sky pixels, over the scene and in the mostly clear bottom strip (rows 480-599).
- Landsat 7, Raleigh (60 m ETM+ band 6 delivered at 57 m, reflective bands at 28.5 m, no
  MTL): the thermal band is replicated onto the 28.5 m grid; scored there and, the honest
  figure, at its own 57 m after averaging the predictions 2 x 2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import metrics
from engine.grids import Grid
from engine.guidance import normalized_difference
from engine.landsat import brightness_temperature_kelvin, read_mtl, toa_reflectance
from engine.raster import read_band_values, write_stack

from ..finetune import MIN_GAIN
from ..scenes import area_average

PARENT = "mocolsk-x4-landsat-light"
SCALE = 4
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2", "ndvi", "ndwi")
FLORIDA = "landsat8-oli-tirs-p020r039-florida"
RALEIGH = "landsat7-etm-2000-raleigh"
# ETM+ band 6 low gain and bands 1-5, 7 (Chander, Markham & Helder 2009, Tables 1 and 2):
# (LMIN, LMAX) W m-2 sr-1 um-1 for QCAL 1..255; high gain except band 4, which matches the
# radiance ranges i.landsat.toar reported for this raster with the scene's MTL.
ETM_RADIANCE = {
    "1": (-6.2, 191.6),
    "2": (-6.4, 196.5),
    "3": (-5.0, 152.9),
    "4": (-5.1, 241.1),
    "5": (-1.0, 31.06),
    "7": (-0.35, 10.80),
}
ETM_ESUN = {"1": 1997.0, "2": 1812.0, "3": 1533.0, "4": 1039.0, "5": 230.8, "7": 84.90}
ETM_B6_LOW_GAIN = (0.067087, -0.06709, 666.09, 1282.71)
# 2000-03-31 near 10:00 local solar time at 35.8 N: solar declination +4.1 deg, hour angle -30 deg.
RALEIGH_SUN_ELEVATION = math.degrees(
    math.asin(
        math.sin(math.radians(35.8)) * math.sin(math.radians(4.1))
        + math.cos(math.radians(35.8)) * math.cos(math.radians(4.1)) * math.cos(math.radians(30.0))
    )
)
RALEIGH_EARTH_SUN_AU = 0.9992


@dataclass(frozen=True)
class StudyScene:
    """A scene ready for the user's steps: fine thermal truth, coarse LST, guidance, and
    the regions (name -> (grid factor, boolean mask on that grid, truth on that grid)) to score."""

    name: str
    thermal_fine: Path
    lst_coarse: Path
    guidance: Path
    regions: dict[str, tuple[int, np.ndarray, np.ndarray]]


def write_raster(
    path: Path, bands: np.ndarray, geotransform: tuple, projection: str, names: tuple[str, ...] = ()
) -> Path:
    bands = bands if bands.ndim == 3 else bands[None]
    grid = Grid(projection, tuple(geotransform), bands.shape[2], bands.shape[1])
    return write_stack(path, grid, bands, names, nodata=float("nan"))


def read_raster(path: Path) -> tuple[np.ndarray, tuple, str]:
    values, grid = read_band_values(path)
    return values, grid.geotransform, grid.crs_wkt


def write_inputs(
    folder: Path,
    thermal: np.ndarray,
    user_mask: np.ndarray,
    reflectance: list[np.ndarray],
    geotransform: tuple,
    projection: str,
) -> tuple[Path, Path, Path]:
    """The fine thermal truth, the x4 area average of its pixels in ``user_mask`` (the coarse LST
    a user has) and the eight-band guidance, as GeoTIFFs."""
    folder.mkdir(parents=True, exist_ok=True)
    blue, green, red, nir, swir1, swir2 = reflectance
    guidance = np.stack([*reflectance, normalized_difference(nir, red), normalized_difference(green, nir)])
    coarse_transform = (
        geotransform[0],
        geotransform[1] * SCALE,
        0.0,
        geotransform[3],
        0.0,
        geotransform[5] * SCALE,
    )
    return (
        write_raster(folder / "thermal_fine.tif", thermal, geotransform, projection),
        write_raster(
            folder / "lst_coarse.tif",
            area_average(np.where(user_mask, thermal, np.nan), SCALE),
            coarse_transform,
            projection,
        ),
        write_raster(folder / "guidance.tif", guidance, geotransform, projection, BANDS),
    )


def florida(data: Path, folder: Path) -> StudyScene:
    """Landsat 8 NW Florida, cropped to 600 x 624 px. The coarse LST leaves out what a user would mask with the
    quality band (cloud confidence medium or high); scores count only the strict clear-sky pixels of its SOURCE.md."""
    root = data / FLORIDA
    mtl = read_mtl(root / "test_MTL.txt")
    rows, cols = 600, 624

    def band(name: str) -> np.ndarray:
        values, _, _ = read_raster(root / f"test_{name}.tif")
        return values[:rows, :cols]

    _, geotransform, projection = read_raster(root / "test_B10.tif")
    thermal = brightness_temperature_kelvin(band("B10"), mtl, "10")
    reflectance = [toa_reflectance(band(f"B{b}"), mtl, str(b)) for b in range(2, 8)]
    qa = band("BQA").astype(np.int64)
    cloud_confidence, cirrus_confidence = (qa >> 14) & 3, (qa >> 12) & 3
    clear = (
        (cloud_confidence <= 1)
        & (cirrus_confidence <= 1)
        & (toa_reflectance(band("B9"), mtl, "9") < 0.005)
        & (reflectance[0] < 0.12)
    )
    truth, coarse, guidance = write_inputs(
        folder / "florida", thermal, cloud_confidence <= 1, reflectance, geotransform, projection
    )
    strip = np.zeros(clear.shape, bool)
    strip[480:] = True
    return StudyScene(
        "Landsat 8 NW Florida",
        truth,
        coarse,
        guidance,
        {
            "30 m, strict clear-sky pixels": (1, clear, thermal),
            "30 m, strict clear-sky pixels of rows 480-599": (1, clear & strip, thermal),
        },
    )


def etm_toa_reflectance(dn: np.ndarray, band: str) -> np.ndarray:
    low, high = ETM_RADIANCE[band]
    radiance = low + (high - low) / 254.0 * (dn - 1.0)
    sin_elevation = math.sin(math.radians(RALEIGH_SUN_ELEVATION))
    return (math.pi * radiance * RALEIGH_EARTH_SUN_AU**2 / (ETM_ESUN[band] * sin_elevation)).astype(
        np.float32
    )


def raleigh(data: Path, folder: Path) -> StudyScene:
    """Landsat 7 Raleigh: 28.5 m reflective bands cropped to 472 x 524 px, the 57 m thermal band
    replicated 2 x 2 onto that grid. Without an MTL the reflectances use standard ETM+ gains."""
    root = data / RALEIGH
    rows, cols = 472, 524
    thermal_dn, _, _ = read_raster(root / "lsat7_2000_61.tif")
    gain, offset, k1, k2 = ETM_B6_LOW_GAIN
    with np.errstate(invalid="ignore", divide="ignore"):
        thermal_57m = (k2 / np.log(k1 / (thermal_dn * gain + offset) + 1.0)).astype(np.float32)
    thermal_57m = thermal_57m[: rows // 2, : cols // 2]
    thermal = np.repeat(np.repeat(thermal_57m, 2, axis=0), 2, axis=1)
    reflectance = []
    for band in ("1", "2", "3", "4", "5", "7"):
        dn, geotransform, projection = read_raster(root / f"lsat7_2000_{band}0.tif")
        reflectance.append(etm_toa_reflectance(dn[:rows, :cols], band))
    truth, coarse, guidance = write_inputs(
        folder / "raleigh", thermal, np.isfinite(thermal), reflectance, geotransform, projection
    )
    return StudyScene(
        "Landsat 7 Raleigh (57 m thermal)",
        truth,
        coarse,
        guidance,
        {
            "28.5 m (thermal replicated 2 x 2)": (1, np.isfinite(thermal), thermal),
            "57 m (the thermal band's own grid)": (2, np.isfinite(thermal_57m), thermal_57m),
        },
    )


def quietly(function, argv: list[str]) -> tuple[int, str]:
    """Run a command-line ``main`` and return its exit code and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = function(argv)
    return code, printed.getvalue()


def run_scene(scene: StudyScene, folder: Path, steps: int, threads: int) -> dict:
    from engine.cli import main as engine_main
    from engine.package import load_package

    from ..__main__ import main as training_main

    tuned = folder / "tuned-x4.json"
    code, printed = quietly(
        training_main,
        [
            "finetune",
            PARENT,
            str(scene.lst_coarse),
            str(scene.guidance),
            str(tuned),
            "--steps",
            str(steps),
            "--threads",
            str(threads),
            "--min-gain=-inf",
            "--overwrite",
        ],
    )
    if code:
        raise RuntimeError(f"fine-tuning {scene.name} failed:\n{printed}")
    validation = load_package(tuned).card.metrics["fine_tune_validation"]
    outputs = {}
    for label, method in (
        ("parent", ["--model", PARENT]),
        ("fine-tuned", ["--model", str(tuned)]),
        ("bicubic", ["--method", "bicubic"]),
    ):
        outputs[label] = folder / f"lst_fine_{label}.tif"
        code, printed = quietly(
            engine_main,
            [
                "downscale",
                "--lst",
                str(scene.lst_coarse),
                "--lst-units",
                "kelvin",
                "--guidance",
                str(scene.guidance),
                *method,
                "--threads",
                str(threads),
                "--out",
                str(outputs[label]),
                "--overwrite",
                "--quiet",
            ],
        )
        if code:
            raise RuntimeError(f"downscaling {scene.name} with {label} failed:\n{printed}")
    predictions = {label: read_raster(path)[0] for label, path in outputs.items()}
    scores = {}
    for region, (factor, mask, truth) in scene.regions.items():
        on_grid = {label: area_average(p, factor) if factor > 1 else p for label, p in predictions.items()}
        valid = mask & np.isfinite(truth) & np.logical_and.reduce([np.isfinite(p) for p in on_grid.values()])
        scores[region] = {
            label: {
                "rmse_k": metrics.rmse(p, truth, valid),
                "bias_k": metrics.bias(p, truth, valid),
                "cc": metrics.cc(p, truth, valid),
                "pixels": int(valid.sum()),
            }
            for label, p in on_grid.items()
        }
    return {
        "scene": scene.name,
        "validation": validation,
        "default_decision": "written" if validation["gain_over_parent"] >= MIN_GAIN else "refused",
        "scores": scores,
    }


def report(result: dict) -> str:
    v = result["validation"]
    lines = [
        f"### {result['scene']}",
        f"Fine-tune validation ({v['what']}), {len(v['blocks'])} blocks: fine-tuned "
        f"{v['fine_tuned']['rmse_k']:.3f} K "
        f"(best step {v['best_step']} of {v['steps_run']} run), parent {v['parent']['rmse_k']:.3f} K, "
        "bicubic "
        f"{v['bicubic']['rmse_k']:.3f} K; gain over the parent {v['gain_over_parent']:+.1%}: with the "
        "default "
        f"{MIN_GAIN:.0%} margin the package would be {result['default_decision']}.",
        "",
        "| scored against the real thermal band | pixels | parent RMSE (K) | fine-tuned RMSE (K) | bicubic "
        "RMSE (K) "
        "| fine-tuned / bicubic | fine-tuned / parent |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for region, s in result["scores"].items():
        parent, tuned, bicubic = (s[k]["rmse_k"] for k in ("parent", "fine-tuned", "bicubic"))
        lines.append(
            f"| {region} | {s['parent']['pixels']} | {parent:.3f} | {tuned:.3f} | {bicubic:.3f} | "
            f"{tuned / bicubic:.2f} | {tuned / parent:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.studies.finetune_study", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data"), help="folder holding the two scenes"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/finetune-study"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    results = []
    for prepare in (florida, raleigh):
        scene = prepare(args.data, args.out)
        results.append(run_scene(scene, args.out / scene.lst_coarse.parent.name, args.steps, args.threads))
        print(report(results[-1]) + "\n", flush=True)
    (args.out / "finetune_study.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

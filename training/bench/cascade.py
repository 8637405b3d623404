"""A cascade measured honestly: real held-out Landsat scenes' thermal band averaged to 960 m (x32 of the
30 m guidance), downscaled to 30 m by the pipeline as a user runs it, and scored at the thermal band's
native pixel.

MoCoLSK and the blend on *auto* cascade the bundled packages (960 m -> 240 m with x4 onto the guidance
averaged to 240 m, then 240 m -> 30 m with x8); bicubic, TsHARP and DMS run x32 in one step. Every method conserves
the 960 m means. Truth is the scene's brightness temperature (clouds masked as the accuracy benchmark
masks them); it is scored on cells of the thermal band's native pixel (TIRS 100 m -> 90 m cells, ETM+
60 m cells, as the native protocol of ``training.bench.accuracy``) and on the delivered 30 m grid, over
cells whose truth is wholly valid. The interval is a bootstrap over blocks of 3 x 3 coarse pixels.

    python -m training.bench.cascade [--threads 2] [--out docs/benchmark/cascade.md]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "training" / "configs" / "landsat-x2-light.json"
# Held-out test scenes of the accuracy benchmark large enough for a few 960 m pixels; never a training scene.
SCENES = ("LC08-020039-florida", "LE07-015032-200207-pennsylvania")
COARSE_SCALE = 32
METHODS = ("mocolsk", "blend", "bicubic", "tsharp", "dms")
# A 960 m pixel is kept when this share of its 30 m truth is valid (the pipeline's own rule for warps).
MIN_VALID_SHARE = 0.5
BOOTSTRAP_BLOCK_COARSE_PX = 3
BOOTSTRAP_DRAWS = 2000


@dataclass
class SceneScore:
    name: str
    native_m: float
    cell_px: int
    coarse_px: tuple[int, int]
    rmse: dict[str, dict[str, float]]  # protocol -> method -> RMSE (K)
    difference: dict[str, tuple[float, float, float]]  # protocol -> MoCoLSK - bicubic (value, low, high)
    scale_steps: tuple[int, ...]


def block_mean(values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the finite values of each ``size`` x ``size`` block, and the share of them that is finite."""
    rows, cols = values.shape[0] // size, values.shape[1] // size
    blocks = values[: rows * size, : cols * size].reshape(rows, size, cols, size)
    valid = np.isfinite(blocks)
    total = np.where(valid, blocks, 0.0).sum(axis=(1, 3))
    count = valid.sum(axis=(1, 3))
    with np.errstate(invalid="ignore"):
        return (total / np.maximum(count, 1)).astype(np.float32), count / size**2


def cell_errors(prediction: np.ndarray, truth: np.ndarray, cell_px: int) -> np.ndarray:
    """Prediction minus truth on cells of ``cell_px`` fine pixels, NaN where either is not wholly valid."""
    predicted, predicted_share = block_mean(prediction, cell_px)
    true, true_share = block_mean(truth, cell_px)
    return np.where((predicted_share == 1) & (true_share == 1), predicted - true, np.nan)


def block_sums(errors: np.ndarray, block_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Per bootstrap block: sum of squared errors and count of valid cells."""
    rows, cols = errors.shape[0] // block_px, errors.shape[1] // block_px
    blocks = errors[: rows * block_px, : cols * block_px].reshape(rows, block_px, cols, block_px)
    valid = np.isfinite(blocks)
    return np.where(valid, blocks**2, 0.0).sum(axis=(1, 3)).ravel(), valid.sum(axis=(1, 3)).ravel()


def bootstrap_difference(ours: np.ndarray, theirs: np.ndarray, block_px: int, seed: int = 0):
    """RMSE(ours) - RMSE(theirs) with a 95 % interval from resampling blocks."""
    sse_a, n = block_sums(ours, block_px)
    sse_b, _ = block_sums(theirs, block_px)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(n), (BOOTSTRAP_DRAWS, len(n)))
    counts = np.maximum(n[draws].sum(axis=1), 1)
    spread = np.sqrt(sse_a[draws].sum(axis=1) / counts) - np.sqrt(sse_b[draws].sum(axis=1) / counts)
    value = np.sqrt(sse_a.sum() / n.sum()) - np.sqrt(sse_b.sum() / n.sum())
    low, high = np.percentile(spread, [2.5, 97.5])
    return float(value), float(low), float(high)


def score_scene(scene, folder: Path, threads: int | None, log=print) -> SceneScore:
    from engine.grids import Grid
    from engine.pipeline import DownscaleRequest, downscale_scene
    from engine.raster import gdal_session, read_band_values, write_stack

    side = COARSE_SCALE * BOOTSTRAP_BLOCK_COARSE_PX
    rows = scene.shape[0] // side * side
    cols = scene.shape[1] // side * side
    # The bottom rows: Florida's clear strip lies there (its SOURCE.md).
    truth = scene.lst_kelvin[scene.shape[0] - rows :, :cols]
    guidance = scene.guidance[:, scene.shape[0] - rows :, :cols]
    x0, dx, _, y0, _, dy = scene.grid.geotransform
    fine = Grid(scene.grid.crs_wkt, (x0, dx, 0.0, y0 + dy * (scene.shape[0] - rows), 0.0, dy), cols, rows)
    coarse_values, share = block_mean(truth, COARSE_SCALE)
    coarse_values[share < MIN_VALID_SHARE] = np.nan
    coarse = Grid(
        fine.crs_wkt,
        (fine.origin_x, dx * COARSE_SCALE, 0.0, fine.origin_y, 0.0, dy * COARSE_SCALE),
        cols // COARSE_SCALE,
        rows // COARSE_SCALE,
    )
    with gdal_session():
        lst_path = write_stack(folder / "lst_960m.tif", coarse, coarse_values, nodata=float("nan"))
        guidance_path = write_stack(
            folder / "guidance_30m.tif", fine, guidance, scene.band_names, nodata=float("nan")
        )
    cell_px = round(scene.native_pixel_m / scene.pixel_size_m)  # TIRS 100 m: 90 m cells
    errors, steps = {"native": {}, "in-grid": {}}, ()
    for method in METHODS:
        out = folder / f"{method}.tif"
        result = downscale_scene(
            DownscaleRequest(
                str(lst_path),
                [str(guidance_path)],
                str(out),
                method=method,
                threads=threads,
                lst_units="kelvin",
            ),
            log=lambda line, method=method: log(f"  [{method}] {line}"),
        )
        if method == "mocolsk":
            steps = result.scale_steps
        with gdal_session():
            prediction, _ = read_band_values(out)
        errors["native"][method] = cell_errors(prediction, truth, cell_px)
        errors["in-grid"][method] = cell_errors(prediction, truth, 1)
    rmse = {
        protocol: {m: float(np.sqrt(np.nanmean(e**2))) for m, e in by_method.items()}
        for protocol, by_method in errors.items()
    }
    difference = {
        protocol: bootstrap_difference(
            by_method["mocolsk"], by_method["bicubic"], side // (cell_px if protocol == "native" else 1)
        )
        for protocol, by_method in errors.items()
    }
    return SceneScore(scene.name, scene.native_pixel_m, cell_px, coarse_values.shape, rmse, difference, steps)


def format_markdown(scores: list[SceneScore], command: str) -> str:
    lines = [
        "| scene | 960 m pixels | protocol | MoCoLSK (x4 then x8) | blend (x4 then x8) | bicubic | TsHARP "
        "| DMS-style | MoCoLSK - bicubic (95 % interval) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for score in scores:
        for protocol in ("native", "in-grid"):
            rmse = score.rmse[protocol]
            value, low, high = score.difference[protocol]
            cell = f"{score.cell_px * 30} m cells" if protocol == "native" else "30 m"
            lines.append(
                f"| {score.name} | {score.coarse_px[0]}x{score.coarse_px[1]} | {protocol} ({cell}) | "
                + " | ".join(f"{rmse[m]:.3f}" for m in METHODS)
                + f" | {value:+.3f} K ({low:+.3f} to {high:+.3f}) |"
            )
    lines.append("")
    lines.append(f"RMSE in K. Reproduce: `{command}`")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args(argv)
    from training.config import TrainConfig
    from training.sources import declared_bands, read_scene

    config = TrainConfig.load(CONFIG)
    entries = [e for e in config.data["scenes"] if e.get("name") in SCENES]
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for entry in entries:
            scene = read_scene(entry, config, declared_bands(config.data))
            print(f"{scene.name}: {scene.shape[1]}x{scene.shape[0]} px, native {scene.native_pixel_m:g} m")
            folder = Path(tmp) / scene.name
            folder.mkdir()
            scores.append(score_scene(scene, folder, args.threads))
    table = format_markdown(
        scores, "python -m training.bench.cascade" + (f" --threads {args.threads}" if args.threads else "")
    )
    print(table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Whole-scene figures for `make bench`: the pipeline against gdalwarp on the same grid, a
full-size Landsat scene end to end, and the paper-sized network's expected time.

- ``gdalwarp_ratio``: bicubic through the engine pipeline (``python -m engine downscale
  --method bicubic``) against ``gdalwarp -r cubic -co COMPRESS=DEFLATE -co PREDICTOR=3``
  writing the same 30 m grid, per scene size, repetitions interleaved, medians and spread;
- ``model_scene_rate``: the bundled x4 model through ``python -m engine downscale --method
  mocolsk`` on a 2048 px proxy: wall time, Mpx/s, fraction of the matmul peak (the best of every
  multiply timed in the process, sampled between the runs) and the full-size scene's time;
- ``full_scene`` (``make bench FULL=1``): a ~7,900 x 7,900 px scene with 8 guidance bands,
  mirrored out of the real Landsat 5 TM sample, for bicubic and the bundled x4 model: wall
  time, Mpx/s, peak RSS (limit ``MAX_PEAK_RSS_MIB``), fraction of the float32 matmul peak;
- ``paper_estimate``: the paper-sized network timed on one pipeline tile, times the scene's tiles.

    python -m training.bench.full [--ratio-px 1024 2048 4000] [--model-px 2048] [--full-px 7904] [--full]
                                  [--no-model] [--repeats 3] [--tile-rate]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUNDLED_X4 = "mocolsk-x4-landsat-light"
FULL_SCENE_PX = 7904
MAX_PEAK_RSS_MIB = 2.5 * 1024
REPO = Path(__file__).resolve().parents[2]


def gdalwarp_command(lst: Path, guidance: Path, out: Path) -> list[str]:
    """gdalwarp writing the guidance's grid with cubic resampling and the pipeline's compression."""
    from engine.raster import dataset_grid, open_raster

    grid = dataset_grid(open_raster(guidance, f"Guidance {guidance}"))
    x0, dx, _, y0, _, dy = grid.geotransform
    width, height = grid.width, grid.height
    extent = [x0, y0 + dy * height, x0 + dx * width, y0]
    return [
        "gdalwarp", "-q", "-overwrite", "-r", "cubic", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=3",
        "-co", "TILED=YES", "-te", *map(str, extent), "-ts", str(width), str(height), str(lst), str(out),
    ]  # fmt: skip


def pipeline_command(
    lst: Path, guidance: Path, out: Path, method: str, extra: tuple[str, ...] = ()
) -> list[str]:
    return [
        sys.executable, "-m", "engine", "downscale", "--lst", str(lst), "--guidance", str(guidance),
        "--lst-units", "kelvin", "--method", method, "--out", str(out), "--overwrite", "--quiet", *extra,
    ]  # fmt: skip


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's peak RSS in MiB (GNU time's %M where present, else NaN)."""
    wrapped = ["/usr/bin/time", "-f", "%M", *command] if Path("/usr/bin/time").exists() else command
    start = time.perf_counter()
    done = subprocess.run(wrapped, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed: {done.stderr.strip()[-400:]}")
    last = done.stderr.strip().splitlines()[-1] if wrapped is not command and done.stderr.strip() else ""
    return seconds, int(last) / 1024 if last.isdigit() else float("nan")


def gdalwarp_ratio(sizes: tuple[int, ...] = (1024, 2048, 4000), repeats: int = 3, log=print) -> list[dict]:
    """The bicubic pipeline's wall time over gdalwarp's per scene size: runs interleaved (gdalwarp,
    pipeline, gdalwarp, ...), medians compared, with each round's ratio for the spread."""
    from .measure import spread
    from .scene import write_scene

    rows = []
    for size_px in sizes:
        with tempfile.TemporaryDirectory(prefix="mocolsk-bench-warp-") as scratch:
            folder = Path(scratch)
            lst, guidance, bands = write_scene(folder, size_px, 4)
            warp, pipe = [], []
            for _ in range(repeats):
                warp.append(timed(gdalwarp_command(lst, guidance, folder / "warp.tif"))[0])
                pipe.append(timed(pipeline_command(lst, guidance, folder / "pipe.tif", "bicubic"))[0])
        rows.append(
            {
                "size_px": size_px,
                "bands": len(bands),
                "gdalwarp_s": warp,
                "pipeline_s": pipe,
                "ratio": statistics.median(pipe) / statistics.median(warp),
                "round_ratios": [p / w for p, w in zip(pipe, warp)],
            }
        )
    log(
        f"\n## bicubic pipeline vs gdalwarp -r cubic, same grid, median (min-max) of {repeats} interleaved runs\n"
    )
    log("| scene px | bands | gdalwarp s | pipeline s | ratio of medians | ratio per round |")
    log("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        log(
            f"| {row['size_px']} | {row['bands']} | {spread(row['gdalwarp_s'])} | {spread(row['pipeline_s'])} | "
            f"{row['ratio']:.2f}x | {min(row['round_ratios']):.2f}-{max(row['round_ratios']):.2f}x |"
        )
    return rows


def bundled_macs(package: str = BUNDLED_X4) -> float:
    from engine.model import MoCoLSKConfig, multiply_adds_per_output_pixel
    from engine.package import resolve_package

    return multiply_adds_per_output_pixel(
        MoCoLSKConfig.from_dict(resolve_package(package).card.hyperparameters)
    )


def bundled_tile_rate(package: str = BUNDLED_X4, tile_px: int = 704, repeats: int = 5, log=print) -> dict:
    """The bundled model on one pipeline-sized tile (512 px core + 96 px halo each side) through
    the engine's ONNX Runtime CPU backend, with the matmul peak sampled between the repeats."""
    import numpy as np

    from engine.inference import Downscaler

    from .measure import PEAK, spread

    downscaler = Downscaler(package, backend="onnxruntime", device="cpu")
    rng = np.random.default_rng(0)
    lst = (295 + rng.normal(0, 2, (tile_px // 4, tile_px // 4))).astype(np.float32)
    guidance = np.stack(
        [b.mean + b.std * rng.normal(size=(tile_px, tile_px)) for b in downscaler.card.guidance_bands]
    ).astype(np.float32)
    downscaler.predict_kelvin(lst, guidance)
    timings = []
    for _ in range(repeats):
        PEAK.sample()
        start = time.perf_counter()
        downscaler.predict_kelvin(lst, guidance)
        timings.append(time.perf_counter() - start)
    PEAK.sample()
    seconds = statistics.median(timings)
    mpx = tile_px * tile_px / seconds / 1e6
    fraction = peak_fraction(bundled_macs(package), mpx, PEAK.best_gflops)
    log(
        f"\n{package} on a {tile_px}x{tile_px} px tile, {downscaler.device_description}: "
        f"{spread(timings)} s, median {mpx:.4f} Mpx/s, {100 * fraction:.0f} % of the matmul peak "
        f"{PEAK.describe()} (median (min-max) of {repeats})"
    )
    return {
        "seconds": timings,
        "mpx_per_s": mpx,
        "peak_gflops": PEAK.best_gflops,
        "fraction_of_peak": fraction,
    }


def peak_fraction(macs_per_px: float, mpx_per_s: float, peak_gflops: float) -> float:
    """The share of the matmul peak a network of ``macs_per_px`` multiply-adds per output pixel uses
    at ``mpx_per_s``."""
    return 2 * macs_per_px * mpx_per_s * 1e6 / (peak_gflops * 1e9)


def scene_tiles(size_px: int, scale: int = 4) -> tuple[int, int]:
    """The pipeline's tiles for a size_px x size_px scene and the fine pixels they read, halos
    included (every read window has one size)."""
    from engine.core import DEFAULT_TILE_SIZE_PX
    from engine.grids import Grid
    from engine.scene.tiles import plan_scene_tiles

    coarse = size_px // scale
    grid = Grid("", (0.0, 30.0 * scale, 0.0, 0.0, 0.0, -30.0 * scale), coarse, coarse)
    tiles = plan_scene_tiles(grid, scale, DEFAULT_TILE_SIZE_PX).tiles
    window = (tiles[0].rows.read_stop - tiles[0].rows.read_start) * (
        tiles[0].cols.read_stop - tiles[0].cols.read_start
    )
    return len(tiles), len(tiles) * window * scale * scale


def model_scene_rate(
    size_px: int = 2048, package: str = BUNDLED_X4, repeats: int = 3, full_px: int = FULL_SCENE_PX, log=print
) -> dict:
    """The bundled model through ``python -m engine downscale --method mocolsk`` on a mirrored real
    scene of size_px: wall time (median and spread), output Mpx/s, the fraction of the matmul peak
    sampled between the runs, and the full-size scene's time at the same time per tile."""
    from .measure import PEAK, spread
    from .scene import write_scene

    with tempfile.TemporaryDirectory(prefix="mocolsk-bench-model-") as scratch:
        folder = Path(scratch)
        lst, guidance, bands = write_scene(folder, size_px, 4)
        size_px -= size_px % 4
        command = pipeline_command(
            lst, guidance, folder / "model.tif", "mocolsk", ("--model", package, "--device", "cpu")
        )
        runs = []
        for _ in range(repeats):
            PEAK.sample()
            runs.append(timed(command))
        PEAK.sample()
    seconds = [s for s, _ in runs]
    mpx = size_px**2 / statistics.median(seconds) / 1e6
    fraction = peak_fraction(bundled_macs(package), mpx, PEAK.best_gflops)
    (tiles, read_px), (full_tiles, _) = scene_tiles(size_px), scene_tiles(full_px)
    halo = read_px / size_px**2
    full_s = statistics.median(seconds) * full_tiles / tiles
    log(
        f"\n## {package} through `python -m engine downscale --method mocolsk`, {size_px}x{size_px} px "
        f"({len(bands)} bands, {tiles} tiles reading {halo:.2f}x the output pixels), median (min-max) of {repeats}\n"
    )
    log(
        f"wall {spread(seconds, 1)} s, {mpx:.3f} Mpx/s, peak RSS {max(r for _, r in runs):.0f} MiB; "
        f"{100 * fraction:.0f} % of the matmul peak {PEAK.describe()} per output pixel, "
        f"{100 * fraction * halo:.0f} % counting the halos' work; a full {full_px}x{full_px} px scene "
        f"({full_tiles} tiles) at this time per tile: {full_s / 60:.1f} min"
    )
    return {
        "size_px": size_px,
        "seconds": seconds,
        "mpx_per_s": mpx,
        "peak_gflops": PEAK.best_gflops,
        "fraction_of_peak": fraction,
        "read_px_per_output_px": halo,
        "full_scene_s": full_s,
    }


def full_scene(
    size_px: int = FULL_SCENE_PX, package: str = BUNDLED_X4, model: bool = True, log=print
) -> list[dict]:
    """Bicubic (with gdalwarp beside it) and the bundled model on a full-size mirrored scene."""
    from .measure import PEAK
    from .scene import write_scene

    rows = []
    with tempfile.TemporaryDirectory(prefix="mocolsk-bench-full-") as scratch:
        folder = Path(scratch)
        lst, guidance, bands = write_scene(folder, size_px, 4)
        size_px -= size_px % 4
        runs = [("gdalwarp", gdalwarp_command(lst, guidance, folder / "warp.tif"))]
        runs.append(("bicubic", pipeline_command(lst, guidance, folder / "bicubic.tif", "bicubic")))
        if model:
            extra = ("--model", package, "--device", "cpu")
            runs.append((package, pipeline_command(lst, guidance, folder / "model.tif", "mocolsk", extra)))
        for name, command in runs:
            PEAK.sample()
            seconds, rss = timed(command)
            rows.append(
                {
                    "run": name,
                    "seconds": seconds,
                    "peak_rss_mib": rss,
                    "mpx_per_s": size_px**2 / seconds / 1e6,
                }
            )
            log(f"{name}: {seconds:.1f} s, peak RSS {rss:.0f} MiB")
    peak = PEAK.sample()
    macs = bundled_macs(package)
    log(
        f"\n## full scene {size_px}x{size_px} px, {len(bands)} guidance bands (mirrored Landsat 5 TM sample), x4\n"
    )
    log(f"float32 matmul peak {PEAK.describe()}; bundled model {macs / 1e6:.3f} M multiply-adds/px\n")
    log("| run | wall s | Mpx/s | peak RSS MiB | under 2.5 GB | % of peak |\n|---|---:|---:|---:|---|---:|")
    for row in rows:
        fraction = peak_fraction(macs, row["mpx_per_s"], peak) if row["run"] == package else None
        row["fraction_of_peak"] = fraction
        log(
            f"| {row['run']} | {row['seconds']:.1f} | {row['mpx_per_s']:.3f} | {row['peak_rss_mib']:.0f} | "
            f"{'yes' if row['peak_rss_mib'] < MAX_PEAK_RSS_MIB else 'NO'} | "
            f"{'–' if fraction is None else f'{100 * fraction:.1f}'} |"
        )
    return rows


def paper_estimate(size_px: int = FULL_SCENE_PX, repeats: int = 1, log=print) -> dict:
    """Seconds per pipeline tile of the paper-sized x4 network (8 guidance bands), and that
    rate times the tiles of a size_px scene."""
    import numpy as np

    from engine.grids import Grid
    from engine.inference import Downscaler
    from engine.scene.tiles import plan_scene_tiles

    from .scene import paper_package

    bands = ("blue", "green", "red", "nir", "swir1", "swir2", "ndvi", "ndwi")
    grid = Grid("", (0.0, 120.0, 0.0, 0.0, 0.0, -120.0), size_px // 4, size_px // 4)
    plan = plan_scene_tiles(grid, 4, 512)
    read_px = (plan.tiles[0].rows.read_stop - plan.tiles[0].rows.read_start) * 4
    with tempfile.TemporaryDirectory() as scratch:
        downscaler = Downscaler(paper_package(Path(scratch), 4, bands).card_path, device="cpu")
        lst = np.full((read_px // 4,) * 2, 295.0, np.float32)
        guidance = np.full((len(bands), read_px, read_px), 0.2, np.float32)
        downscaler.predict_kelvin(lst[:16, :16], guidance[:, :64, :64])
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            downscaler.predict_kelvin(lst, guidance)
            timings.append(time.perf_counter() - start)
    per_tile = statistics.median(timings)
    result = {"tile_px": read_px, "seconds_per_tile": per_tile, "tiles": len(plan.tiles)}
    result["expected_s"] = per_tile * len(plan.tiles)
    log(
        f"\npaper-sized x4 network: {per_tile:.1f} s per {read_px}x{read_px} px tile (median of {repeats}); "
        f"a {size_px}x{size_px} px scene has {len(plan.tiles)} tiles: expected "
        f"{result['expected_s'] / 3600:.1f} h of inference on this machine"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.bench.full", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--ratio-px",
        type=int,
        nargs="+",
        default=[1024, 2048, 4000],
        help="scene edges for the gdalwarp ratio",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-px", type=int, default=2048, help="scene edge for the bundled model's rate")
    parser.add_argument("--full", action="store_true", help="also the full-size scene with the bundled model")
    parser.add_argument("--full-px", type=int, default=FULL_SCENE_PX)
    parser.add_argument("--no-model", action="store_true", help="bicubic and gdalwarp only")
    parser.add_argument("--tile-rate", action="store_true", help="only the bundled model's rate on one tile")
    args = parser.parse_args(argv)
    if args.tile_rate:
        print(json.dumps(bundled_tile_rate(repeats=args.repeats)))
        return 0
    results = {"gdalwarp_ratio": gdalwarp_ratio(tuple(args.ratio_px), args.repeats)}
    if not args.no_model:
        results["model_scene"] = model_scene_rate(args.model_px, repeats=args.repeats, full_px=args.full_px)
    if args.full:
        results["full_scene"] = full_scene(args.full_px, model=not args.no_model)
        results["paper_estimate"] = paper_estimate(args.full_px)
    print("\n" + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

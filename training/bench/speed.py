"""`make bench`: speed and memory of MoCoLSK inference and of the whole scene pipeline.

Three tables, each measurement in its own process so that its peak resident memory is its own:

1. the network alone on one output tile per scale and backend: output megapixels per second
   (median of the repeats), peak RSS, multiply-adds per output pixel and the fraction of the
   machine's peak arithmetic rate reached (peak measured in the same run with a large
   float32 matrix multiply);
2. the whole pipeline on a realistic scene for MoCoLSK per backend and each classic method,
   with each time's ratio to bicubic's (`training.bench.scene`);
3. peak memory of the pipeline on a scene and on one four times larger (bounded memory);
4. the bicubic pipeline against gdalwarp on the same grid at 1024, 2048 and 4000 px, the bundled
   x4 model on one pipeline tile and through ``python -m engine downscale`` on a proxy scene with
   the full-size scene's time, and with ``--full`` a full-size scene end to end plus the
   paper-sized network's expected time (`training.bench.full`). Fractions of peak are of the
   best matmul timed in the process (`training.bench.measure.PEAK`), sampled between the runs.

GPU rows appear wherever PyTorch or ONNX Runtime sees a CUDA device. ``--quick`` (what
`make bench` runs) is the bundled x4 model on smaller scenes, tens of minutes on two busy cores.

    python -m training.bench [--tile 1024] [--repeats 3] [--scales 2 4 8] [--backends onnxruntime torch]
                             [--scene-px 4000] [--memory-px 1024] [--skip tiles scene memory gdalwarp model-scene]
                             [--quick] [--full]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .measure import PEAK, available_backends, benchmark_package, peak_rss_mib
from .scene import scene_speed


def paper_package(scale: int, out_dir: Path):
    """The paper configuration at ``scale`` with GrokLST's ten bands, exported as a package."""
    from engine.card import BandSpec

    bands = [BandSpec(f"band{i}", "reflectance", 0.15, 0.05) for i in range(10)]
    return benchmark_package(out_dir, f"paper_x{scale}", scale, bands, 282.51, 14.59)


def run_one(
    card_path: str, backend: str, device: str, tile_px: int, repeats: int, threads: int | None
) -> dict:
    """Time ``repeats`` inferences of one tile_px x tile_px output tile (in this process)."""
    from engine.inference import Downscaler

    downscaler = Downscaler(card_path, backend=backend, device=device, threads=threads)
    scale = downscaler.scale
    rng = np.random.default_rng(0)
    channels = len(downscaler.guidance_band_names)
    warmup = 64
    downscaler.predict_kelvin(
        np.full((warmup // scale,) * 2, 290, np.float32),
        np.full((channels, warmup, warmup), 0.15, np.float32),
    )
    lst = (290 + rng.normal(0, 3, (tile_px // scale,) * 2)).astype(np.float32)
    guidance = (0.15 + 0.05 * rng.normal(size=(channels, tile_px, tile_px))).astype(np.float32)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        downscaler.predict_kelvin(lst, guidance)
        timings.append(time.perf_counter() - start)
    seconds = statistics.median(timings)
    return {
        "device": downscaler.device_description,
        "seconds": seconds,
        "mpx_per_s": tile_px * tile_px / seconds / 1e6,
        "peak_rss_mib": peak_rss_mib(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=1024, help="output tile edge in fine pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--backends", nargs="+", default=None, help="subset of onnxruntime, torch")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--scene-px", type=int, default=4000, help="scene edge for the pipeline table")
    parser.add_argument(
        "--scene-package",
        default=None,
        help="MoCoLSK package for the scene tables (default: paper configuration)",
    )
    parser.add_argument("--memory-px", type=int, default=1024, help="smaller scene edge for the memory table")
    parser.add_argument(
        "--skip", nargs="+", default=[], choices=["tiles", "scene", "memory", "gdalwarp", "model-scene"]
    )
    parser.add_argument("--quick", action="store_true", help="x4 only, bundled model, 2048 px scene")
    parser.add_argument(
        "--full", action="store_true", help="also the full-size scene (long: tens of minutes)"
    )
    parser.add_argument("--one", nargs=3, metavar=("CARD", "BACKEND", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(
            json.dumps(run_one(args.one[0], args.one[1], args.one[2], args.tile, args.repeats, args.threads))
        )
        return

    if args.quick:
        args.scales, args.tile, args.scene_px = [4], 512, 2048
        args.scene_package = args.scene_package or "mocolsk-x4-landsat-light"
    pairs = [p for p in available_backends() if args.backends is None or p[0] in args.backends]
    if "tiles" not in args.skip:
        tile_table(args, pairs)
    if "scene" not in args.skip:
        print()
        scene_speed(args.scene_px, package=args.scene_package, backends=pairs, threads=args.threads)
    if "memory" not in args.skip:
        memory_table(args.memory_px, args.scene_package, args.threads)
    whole_scene_tables(args)


def whole_scene_tables(args: argparse.Namespace) -> None:
    from . import full as bench_full

    if "gdalwarp" not in args.skip:
        bench_full.gdalwarp_ratio((1024, 2048, 4000), args.repeats)
    if "tiles" not in args.skip:
        bench_full.bundled_tile_rate(repeats=max(args.repeats, 5))
    if "model-scene" not in args.skip:
        bench_full.model_scene_rate(2048 if args.quick else 4000, repeats=args.repeats)
    if args.full:
        bench_full.full_scene()
        bench_full.paper_estimate()


def tile_table(args: argparse.Namespace, pairs: list[tuple[str, str]]) -> None:
    import torch

    from engine.model import MoCoLSKConfig, multiply_adds_per_output_pixel

    peak_gflops = PEAK.sample(20)
    print(f"# MoCoLSK inference benchmark, {time.strftime('%Y-%m-%d')}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; "
        f"measured peak {PEAK.describe()}"
    )
    print(f"paper configuration, output tile {args.tile}x{args.tile} px, median of {args.repeats}\n")
    print("| scale | backend | device | MMAC/px | s/tile | Mpx/s | peak RSS MiB | % of peak |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for scale in args.scales:
            macs = multiply_adds_per_output_pixel(MoCoLSKConfig(scale=scale))
            package = paper_package(scale, Path(scratch))
            for backend, device in pairs:
                command = [
                    sys.executable,
                    "-m",
                    "training.bench.speed",
                    "--tile",
                    str(args.tile),
                    "--repeats",
                    str(args.repeats),
                    "--one",
                    str(package.card_path),
                    backend,
                    device,
                ]
                if args.threads:
                    command += ["--threads", str(args.threads)]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    print(
                        f"| x{scale} | {backend} | {device} | failed: "
                        f"{done.stderr.strip().splitlines()[-1]} |"
                    )
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                fraction = 2 * macs * r["mpx_per_s"] * 1e6 / (peak_gflops * 1e9)
                print(
                    f"| x{scale} | {backend} | {r['device']} | {macs / 1e6:.2f} | {r['seconds']:.2f} | "
                    f"{r['mpx_per_s']:.4f} | {r['peak_rss_mib']:.0f} | {100 * fraction:.1f} |",
                    flush=True,
                )


def memory_table(size_px: int, package: str | None, threads: int | None) -> None:
    """Peak RSS of the pipeline on a size_px scene and on a 2*size_px one (four times the
    pixels): tiled streaming should keep the two within 1.2x."""
    runs = {}
    for size in (size_px, 2 * size_px):
        print(f"\n## pipeline memory, {size}x{size} px scene")
        runs[size] = scene_speed(
            size,
            package=package,
            methods=("bicubic", "mocolsk"),
            backends=[("onnxruntime", "cpu")],
            threads=threads,
        )
    print("\n| method | peak RSS small MiB | peak RSS 4x pixels MiB | ratio |")
    print("|---|---|---|---|")
    for small, large in zip(runs[size_px], runs[2 * size_px]):
        if "peak_rss_mib" in small and "peak_rss_mib" in large:
            print(
                f"| {small['method']} | {small['peak_rss_mib']:.0f} | {large['peak_rss_mib']:.0f} | "
                f"{large['peak_rss_mib'] / small['peak_rss_mib']:.2f}x |"
            )


if __name__ == "__main__":
    main()

"""Scenes per hour of the command line's batch mode: serial (``--folder``) against Dask
(``--dask-local N``) on this machine.

Each run is a whole ``python -m engine downscale`` process, so start-up, the local cluster's start
and each worker's model load count. The two modes alternate within each repeat (and which goes
first alternates too), so that a busy machine's drift hits both alike; the median and the spread
of the repeats are reported with the load average before and after.

    python -m training.bench.batch [--scenes 6] [--size 512] [--workers 2] [--repeats 3] [--method mocolsk]

The scenes are copies of the Landsat 5 TM sample mirrored out to ``size`` x ``size`` px at 30 m
(``training.bench.scene.write_scene``), with the coarse LST at 120 m.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .scene import write_scene

REPO = Path(__file__).resolve().parents[2]
SCALE = 4


def write_scenes(folder: Path, count: int, size_px: int) -> None:
    """``count`` copies of one mirrored sample scene, named for --lst-pattern/--guidance-pattern."""
    lst, guidance, _ = write_scene(folder, size_px, SCALE)
    for i in range(count):
        shutil.copy(lst, folder / f"scene{i}_lst.tif")
        shutil.copy(guidance, folder / f"scene{i}_refl.tif")
    lst.unlink()
    guidance.unlink()


def run_batch(folder: Path, out_dir: Path, method: str, workers: int | None) -> tuple[float, float | None]:
    """Wall seconds of one batch command, and the Dask batch's own seconds (cluster start excluded)."""
    command = [
        sys.executable, "-m", "engine", "downscale", "--folder", str(folder),
        "--lst-pattern", "*_lst.tif", "--guidance-pattern", "*_refl.tif", "--method", method,
        "--out-dir", str(out_dir), "--quiet", *(["--dask-local", str(workers)] if workers else []),
    ]  # fmt: skip
    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"batch failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    inside = re.search(r"scenes written in ([\d.]+) s", done.stdout)
    return seconds, float(inside.group(1)) if inside else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--size", type=int, default=512, help="fine pixels a side of each scene")
    parser.add_argument("--workers", type=int, default=2, help="--dask-local N")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="mocolsk")
    args = parser.parse_args(argv)
    modes = {"serial": None, f"dask-local {args.workers}": args.workers}
    walls: dict[str, list[float]] = {mode: [] for mode in modes}
    inside: list[float] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mocolsk-batch-bench-") as scratch:
        folder = Path(scratch) / "scenes"
        folder.mkdir()
        write_scenes(folder, args.scenes, args.size)
        for repeat in range(args.repeats):
            order = list(modes) if repeat % 2 == 0 else list(reversed(modes))
            for mode in order:
                seconds, batch_s = run_batch(folder, Path(scratch) / "out", args.method, modes[mode])
                walls[mode].append(seconds)
                if batch_s is not None:
                    inside.append(batch_s)
                print(f"repeat {repeat + 1} {mode}: {seconds:.1f} s", flush=True)
    print(
        f"{args.scenes} scenes of {args.size}x{args.size} px, {args.method} x{SCALE}, {os.cpu_count()} CPUs, "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; median of {args.repeats}:"
    )
    for mode, seconds in walls.items():
        median = statistics.median(seconds)
        print(
            f"  {mode:14s} {median:6.1f} s ({min(seconds):.1f}-{max(seconds):.1f}), "
            f"{args.scenes * 3600 / median:6.0f} scenes/h"
        )
    if inside:
        median = statistics.median(inside)
        print(
            f"  dask batch alone (cluster start excluded) {median:.1f} s ({min(inside):.1f}-{max(inside):.1f}), "
            f"{args.scenes * 3600 / median:.0f} scenes/h"
        )


if __name__ == "__main__":
    main()

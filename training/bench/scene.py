"""Scene-level speed and memory: the whole engine pipeline (read, warp checks, masks, tiles,
inference, blending, conservation, write) on a realistic scene, for MoCoLSK per backend
and for each classic method, with the ratio of each wall time to bicubic's in the same run.

The scene is the real Landsat 5 TM sample mirrored out to ``size_px`` x ``size_px`` fine
pixels at 30 m (so its texture is real), with the coarse LST its area average by the
scale. Each measurement runs in its own process, so its peak resident memory (and, on a
GPU, its peak allocated GPU memory) is its own.

    python -m training.bench.scene [--size 4000] [--scale 4] [--package NAME.json] [--methods ...]

The default MoCoLSK is the paper configuration (randomly initialised: speed does not
depend on the weights). At 4000 x 4000 px that is ~10^14 multiply-adds, about half an
hour on two CPU cores: pass ``--size`` smaller for a quick look.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .measure import PEAK, available_backends, benchmark_package, peak_rss_mib

REPO = Path(__file__).resolve().parents[2]
SAMPLE_MTL = REPO / "resources" / "sample" / "landsat5-tm-1988" / "LT52240631988227CUB02_MTL.txt"
CLASSIC = ("bicubic", "tsharp", "dms")


def mirrored(values: np.ndarray, size_px: int) -> np.ndarray:
    """``values`` (..., H, W) extended to (..., size_px, size_px) by mirror tiling."""
    rows, cols = values.shape[-2:]
    reps_r, reps_c = -(-size_px // rows), -(-size_px // cols)
    tiled = values
    for axis, reps in ((-2, reps_r), (-1, reps_c)):
        tiled = np.concatenate(
            [tiled if i % 2 == 0 else np.flip(tiled, axis) for i in range(reps)], axis=axis
        )
    return np.ascontiguousarray(tiled[..., :size_px, :size_px])


def write_scene(
    folder: Path, size_px: int, scale: int, mtl: Path = SAMPLE_MTL
) -> tuple[Path, Path, tuple[str, ...]]:
    """Coarse LST (Kelvin, 30*scale m) and named guidance (30 m) GeoTIFFs of a mirrored real scene."""
    from engine.grids import Grid
    from engine.raster import epsg_wkt, gdal_session, write_stack

    from ..landsat_scenes import read_landsat_scene
    from ..scenes import area_average

    scene = read_landsat_scene(mtl)
    size_px -= size_px % scale
    lst = mirrored(
        np.where(np.isfinite(scene.lst_kelvin), scene.lst_kelvin, np.nanmean(scene.lst_kelvin)), size_px
    )
    guidance = mirrored(
        np.stack([np.where(np.isfinite(b), b, np.nanmean(b)) for b in scene.guidance]), size_px
    )

    def write(path: Path, bands: np.ndarray, pixel_m: float, names: tuple[str, ...] = ()) -> Path:
        grid = Grid(
            epsg_wkt(32622),
            (500000.0, pixel_m, 0.0, 9000000.0, 0.0, -pixel_m),
            bands.shape[2],
            bands.shape[1],
        )
        return write_stack(path, grid, bands, names, options=("TILED=YES", "BIGTIFF=IF_SAFER"))

    with gdal_session():
        lst_path = write(folder / "lst_coarse.tif", area_average(lst, scale)[None], 30.0 * scale)
        guidance_path = write(folder / "guidance.tif", guidance, 30.0, scene.band_names)
    return lst_path, guidance_path, scene.band_names


def paper_package(folder: Path, scale: int, band_names: tuple[str, ...], model: dict | None = None):
    """MoCoLSK-Net (paper configuration unless ``model`` overrides it) for these bands, as a package."""
    from engine.card import BandSpec

    bands = [BandSpec(n, "unitless", 0.2, 0.1) for n in band_names]
    return benchmark_package(folder, f"bench_x{scale}", scale, bands, 295.0, 5.0, model)


def run_one(
    lst: str,
    guidance: str,
    method: str,
    card: str | None,
    backend: str,
    device: str,
    threads: int | None,
    tile_px: int,
) -> dict:
    """Downscale the scene once through the engine pipeline (in this process) and time it."""
    from engine.pipeline import DownscaleRequest, downscale_scene

    with tempfile.TemporaryDirectory(dir=Path(lst).parent) as out:
        request = DownscaleRequest(
            lst_path=lst,
            guidance_paths=[guidance],
            output_path=str(Path(out) / "out.tif"),
            lst_units="kelvin",
            method=method,
            model=card,
            backend=backend,
            device=device,
            threads=threads,
            tile_size_px=tile_px,
        )
        start = time.perf_counter()
        result = downscale_scene(request)
        seconds = time.perf_counter() - start
    gpu_mib = None
    if device == "cuda" and backend == "torch":
        import torch

        gpu_mib = torch.cuda.max_memory_allocated() / 2**20
    return {
        "seconds": seconds,
        "device": result.device,
        "tiles": result.tiles,
        "peak_rss_mib": peak_rss_mib(),
        "peak_gpu_mib": gpu_mib,
    }


def scene_speed(
    size_px: int = 4000,
    scale: int = 4,
    package: str | None = None,
    model: dict | None = None,
    methods: tuple[str, ...] = ("mocolsk", *CLASSIC),
    backends: list[tuple[str, str]] | None = None,
    threads: int | None = None,
    tile_px: int = 512,
    log=print,
) -> list[dict]:
    """Wall time, output Mpx/s and peak memory per method (MoCoLSK once per backend/device),
    each in its own process, with the ratio of each time to bicubic's; for MoCoLSK also the
    fraction of the machine's measured peak float32 rate reached. Returns one dict per row
    and prints a Markdown table through ``log``."""
    from engine.model import MoCoLSKConfig, multiply_adds_per_output_pixel
    from engine.package import load_package, resolve_package

    pairs = backends or available_backends()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mocolsk-bench-scene-") as scratch:
        folder = Path(scratch)
        lst, guidance, band_names = write_scene(folder, size_px, scale)
        size_px -= size_px % scale
        card = (
            resolve_package(package).card_path
            if package
            else paper_package(folder, scale, band_names, model).card_path
        )
        hyper = load_package(card).card.hyperparameters
        macs = multiply_adds_per_output_pixel(MoCoLSKConfig.from_dict(hyper)) if hyper else float("nan")
        runs = [(m, "numpy", "cpu") for m in methods if m != "mocolsk"]
        runs += [("mocolsk", b, d) for b, d in pairs] if "mocolsk" in methods else []
        for method, backend, device in runs:
            command = [
                sys.executable,
                "-m",
                "training.bench.scene",
                "--one",
                str(lst),
                str(guidance),
                method,
                str(card),
                backend if method == "mocolsk" else "onnxruntime",
                device,
                "--tile",
                str(tile_px),
            ]
            if threads:
                command += ["--threads", str(threads)]
            done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
            if done.returncode != 0:
                rows.append(
                    {
                        "method": method,
                        "backend": backend,
                        "device": device,
                        "requested": device,
                        "error": (done.stderr.strip().splitlines() or ["failed"])[-1],
                    }
                )
                continue
            rows.append(
                {
                    "method": method,
                    "backend": backend,
                    "requested": device,
                    **json.loads(done.stdout.strip().splitlines()[-1]),
                }
            )
    peak_gflops = PEAK.sample(20)
    bicubic = next((r["seconds"] for r in rows if r["method"] == "bicubic" and "seconds" in r), None)
    for row in rows:
        if "seconds" not in row:
            continue
        row["mpx_per_s"] = size_px * size_px / row["seconds"] / 1e6
        row["x_bicubic"] = row["seconds"] / bicubic if bicubic else None
        if row["method"] == "mocolsk" and row["requested"] == "cpu" and np.isfinite(macs):
            row["fraction_of_peak"] = 2 * macs * row["mpx_per_s"] * 1e6 / (peak_gflops * 1e9)
    log(format_table(rows, size_px, scale, macs, peak_gflops, threads))
    return rows


def format_table(
    rows: list[dict], size_px: int, scale: int, macs: float, peak_gflops: float, threads: int | None
) -> str:
    import torch

    lines = [
        f"# Scene benchmark, {time.strftime('%Y-%m-%d')}",
        f"machine: {platform.processor() or platform.machine()}, {threads or torch.get_num_threads()} "
        "threads; measured CPU "
        f"peak {peak_gflops:.1f} GFLOP/s (the best float32 2048^3 matmul timed in this process)"
        + (f"; GPU: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
        f"scene: {size_px}x{size_px} output px at 30 m (x{scale}, mirrored Landsat 5 TM sample); "
        f"MoCoLSK {macs / 1e6:.2f} M multiply-adds per output px; whole pipeline, one run each",
        "",
        "| method | backend | device | s | Mpx/s | x bicubic time | peak RSS MiB | peak GPU MiB | % of CPU "
        "peak |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "seconds" not in r:
            lines.append(f"| {r['method']} | {r['backend']} | {r['device']} | failed: {r['error']} |")
            continue
        gpu = f"{r['peak_gpu_mib']:.0f}" if r.get("peak_gpu_mib") is not None else "–"
        fraction = f"{100 * r['fraction_of_peak']:.1f}" if "fraction_of_peak" in r else "–"
        ratio = f"{r['x_bicubic']:.1f}" if r.get("x_bicubic") else "–"
        lines.append(
            f"| {r['method']} | {r['backend'] if r['method'] == 'mocolsk' else 'numpy'} | {r['device']} | "
            f"{r['seconds']:.2f} | {r['mpx_per_s']:.3f} | {ratio} | {r['peak_rss_mib']:.0f} | {gpu} | "
            f"{fraction} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.bench.scene", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--size", type=int, default=4000, help="output edge in fine pixels (default 4000)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--package", help="MoCoLSK package to time (default: the paper configuration)")
    parser.add_argument(
        "--model", type=json.loads, help="MoCoLSKConfig overrides as JSON, e.g. '{\"num_feats\": 16}'"
    )
    parser.add_argument("--methods", nargs="+", default=["mocolsk", *CLASSIC])
    parser.add_argument("--threads", type=int)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        lst, guidance, method, card, backend, device = args.one
        print(
            json.dumps(
                run_one(
                    lst,
                    guidance,
                    method,
                    card if method == "mocolsk" else None,
                    backend,
                    device,
                    args.threads,
                    args.tile,
                )
            )
        )
        return 0
    scene_speed(
        args.size,
        args.scale,
        args.package,
        args.model,
        tuple(args.methods),
        threads=args.threads,
        tile_px=args.tile,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory and time of whole-scene runs: a scene and one four times larger.

The pipeline reads and writes in windows, so its peak resident memory should not grow
with the scene; this measures it. Scenes are the real Landsat 5 sample mirrored to the
requested size (guidance as DN * 0.0025, LST the band-6 brightness temperature averaged
to 120 m). Each run is a separate process so that its peak (VmHWM) is its own.

    python -m engine.bench_pipeline [--sizes 1024 2048] [--methods bicubic mocolsk]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO.parent / "shared" / "data" / "landsat5-tm-1988" / "LT52240631988227CUB02"
GUIDANCE_BANDS = {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir1": 5, "swir2": 7}
SCALE = 4


def mirrored(values: np.ndarray, size_px: int) -> np.ndarray:
    """Tile an image with mirror copies until it is size_px x size_px (seamless)."""
    block = np.block([[values, values[:, ::-1]], [values[::-1], values[::-1, ::-1]]])
    reps = (size_px // block.shape[0] + 1, size_px // block.shape[1] + 1)
    return np.tile(block, reps)[:size_px, :size_px]


def write_scene(folder: Path, size_px: int) -> tuple[str, str]:
    """A size_px x size_px guidance GeoTIFF and its x4 coarse LST GeoTIFF; returns their paths."""
    from osgeo import gdal

    from .units import lst_units

    gdal.UseExceptions()
    b6 = gdal.Open(f"{SAMPLE}_B6.TIF")
    x0, dx, _, y0, _, dy = b6.GetGeoTransform()
    kelvin = mirrored(lst_units("landsat5_tm_b6_dn").to_kelvin(b6.ReadAsArray()), size_px)
    coarse = kelvin.reshape(size_px // SCALE, SCALE, size_px // SCALE, SCALE).mean(axis=(1, 3))
    driver = gdal.GetDriverByName("GTiff")
    options = ["TILED=YES", "COMPRESS=DEFLATE"]
    lst_path, guidance_path = str(folder / f"lst_{size_px}.tif"), str(folder / f"guidance_{size_px}.tif")
    lst = driver.Create(lst_path, coarse.shape[1], coarse.shape[0], 1, gdal.GDT_Float32, options)
    lst.SetGeoTransform((x0, dx * SCALE, 0.0, y0, 0.0, dy * SCALE))
    lst.SetProjection(b6.GetProjection())
    lst.GetRasterBand(1).SetUnitType("K")
    lst.GetRasterBand(1).WriteArray(coarse.astype(np.float32))
    guidance = driver.Create(guidance_path, size_px, size_px, len(GUIDANCE_BANDS), gdal.GDT_Float32, options)
    guidance.SetGeoTransform(b6.GetGeoTransform())
    guidance.SetProjection(b6.GetProjection())
    for i, (name, band) in enumerate(GUIDANCE_BANDS.items(), 1):
        dn = gdal.Open(f"{SAMPLE}_B{band}.TIF").ReadAsArray().astype(np.float32)
        out = guidance.GetRasterBand(i)
        out.SetDescription(name)
        out.WriteArray(mirrored(dn, size_px) * np.float32(0.0025))
    lst, guidance = None, None
    return lst_path, guidance_path


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(lst_path: str, guidance_path: str, out_path: str, method: str, model: str | None, threads: int) -> dict:
    """One pipeline run in this process; returns its figures."""
    from .pipeline import DownscaleRequest, downscale_scene

    start = time.perf_counter()
    result = downscale_scene(DownscaleRequest(
        lst_path=lst_path, guidance_paths=[guidance_path], output_path=out_path, method=method, model=model,
        threads=threads, overwrite=True,
    ))
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(), "tiles": result.tiles,
            "device": result.device}


def default_model() -> str | None:
    from .package import bundled_packages

    x4 = [name for name, path in bundled_packages().items() if "x4" in name]
    return x4[0] if x4 else None


def run_pipeline_bench(sizes_px: tuple[int, ...] = (1024, 2048), methods: tuple[str, ...] = ("bicubic", "mocolsk"),
                       threads: int = 2) -> list[dict]:
    """Run each method on each scene size in its own process, print a table, return the rows."""
    model = default_model()
    rows = []
    print("| method | scene px | tiles | seconds | Mpx/s | peak RSS MiB | vs smallest |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        scenes = {size: write_scene(folder, size) for size in sizes_px}
        for method in methods:
            if method == "mocolsk" and model is None:
                print("| mocolsk | - | - | - | - | no x4 model in resources/models | - |")
                continue
            first = None
            for size, (lst_path, guidance_path) in scenes.items():
                command = [sys.executable, "-m", "engine.bench_pipeline", "--child", lst_path, guidance_path,
                           str(folder / f"out_{method}_{size}.tif"), method, model or "", str(threads)]
                done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
                if done.returncode != 0:
                    print(f"| {method} | {size} | failed: {done.stderr.strip().splitlines()[-1]} |")
                    continue
                row = {"method": method, "size_px": size, **json.loads(done.stdout.strip().splitlines()[-1])}
                first = first or row["peak_rss_mib"]
                row["rss_ratio"] = row["peak_rss_mib"] / first
                rows.append(row)
                print(f"| {method} | {size}x{size} | {row['tiles']} | {row['seconds']:.1f} | "
                      f"{size * size / row['seconds'] / 1e6:.3f} | {row['peak_rss_mib']:.0f} | {row['rss_ratio']:.2f}x |",
                      flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048], help="scene edges in fine pixels")
    parser.add_argument("--methods", nargs="+", default=["bicubic", "mocolsk"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        lst_path, guidance_path, out_path, method, model, threads = args.child
        print(json.dumps(run_child(lst_path, guidance_path, out_path, method, model or None, int(threads))))
        return
    run_pipeline_bench(tuple(args.sizes), tuple(args.methods), args.threads)


if __name__ == "__main__":
    main()

"""This project's DMS-style sharpener beside pyDMS (github.com/radosuav/pyDMS, the public
implementation of Gao et al. 2012) and bicubic, on the whole held-out test scenes of a data
config, in the native-resolution (Wald) view, with the same coarse input and the same
coarse-mean conservation for every method (``training.protocol``).

pyDMS runs twice: with the benchmark's settings (global trees only, as ``training.bench.accuracy``
runs it) and with moving windows of ``--window`` coarse pixels (its ``run_pyDMS.py`` template), both
with per-leaf linear regression, homogeneity weighting and residual correction. pyDMS is not a
dependency of this project: install it (and scikit-learn, numba, pyproj) in a scratch environment
or put it on PYTHONPATH; without it this prints how to and exits.

With ``--unseen`` the scenes are those of ``make benchmark``: every corpus scene the bundled package
at the scale never saw (a scene where a method cannot run, e.g. too few clear coarse pixels, is left
out and named).

    python -m training.bench.pydms_compare [--scales 4 8] [--config training/configs/landsat-x4-light.json]
                                           [--unseen] [--window 15] [--out table.md]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.errors import EngineError

from ..config import TrainConfig
from ..datasets import Sample, filled
from ..pipeline_runs import PipelineMethod
from ..protocol import Method, Predictor, evaluate_scene, protocol_view
from ..scenes import Scene
from ..sources import declared_bands, read_scene

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "training" / "configs" / "landsat-x4-light.json"
# A real projected CRS for pyDMS's GeoTIFFs: its pyproj step refuses an engineering (local) CRS.
PYDMS_EPSG = 32618
PROTOCOL = "native"


def test_scenes(config: TrainConfig) -> list[Scene]:
    """The config's scenes with ``"role": "test"``."""
    bands = declared_bands(config.data)
    return [read_scene(e, config, bands) for e in config.data["scenes"] if e.get("role") == "test"]


def pydms_predictor(sharpener_class, scale: int, window_coarse_px: int) -> Predictor:
    """pyDMS's decision-tree sharpener with its residual correction, through GeoTIFFs as its
    template script runs it (its progress output silenced)."""
    from engine.grids import Grid
    from engine.raster import epsg_wkt, write_stack

    crs = epsg_wkt(PYDMS_EPSG)

    def write(path: Path, bands: np.ndarray, pixel_m: float) -> str:
        grid = Grid(crs, (500000.0, pixel_m, 0.0, 4000000.0, 0.0, -pixel_m), bands.shape[2], bands.shape[1])
        return str(write_stack(path, grid, bands, nodata=float("nan")))

    def predict(sample: Sample) -> np.ndarray:
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
            guidance = np.stack([filled(b, float(np.nanmean(b))) for b in sample.guidance])
            fine = write(Path(folder) / "fine.tif", guidance, 30.0)
            coarse = write(Path(folder) / "coarse.tif", sample.coarse_kelvin[None], 30.0 * scale)
            sharpener = sharpener_class(
                [fine],
                [coarse],
                movingWindowSize=window_coarse_px,
                disaggregatingTemperature=True,
                perLeafLinearRegression=True,
                baggingRegressorOpt={"random_state": 0},
            )
            sharpener.trainSharpener()
            sharpened = sharpener.applySharpener(fine, coarse)
            _, corrected = sharpener.residualAnalysis(sharpened, coarse, doCorrection=True)
            result = corrected if corrected is not None else sharpened
            return result.GetRasterBand(1).ReadAsArray().astype(np.float32)

    return predict


def compare(scenes: list[Scene], scale: int, sharpener_class, window_coarse_px: int) -> dict:
    """Per-scene and pooled RMSE (K) of each method at ``scale``, and seconds per output Mpx
    (GeoTIFF writing and reading included for every method)."""
    methods: dict[str, Method] = {
        "bicubic": PipelineMethod("bicubic"),
        "dms": PipelineMethod("dms"),
        "pydms": pydms_predictor(sharpener_class, scale, 0),
        f"pydms{window_coarse_px}": pydms_predictor(sharpener_class, scale, window_coarse_px),
    }
    per_scene, left_out = {}, {}
    sse, seconds, count, pixels = dict.fromkeys(methods, 0.0), dict.fromkeys(methods, 0.0), 0, 0
    for scene in scenes:
        scored, spent = {}, {}
        try:
            for name, method in methods.items():
                start = time.perf_counter()
                scored[name] = evaluate_scene(scene, PROTOCOL, scale, {name: method})
                spent[name] = time.perf_counter() - start
        except (EngineError, ValueError) as error:
            left_out[scene.name] = str(error).splitlines()[0]
            continue
        if not all(np.isfinite(errors.rmse(name)) for name, errors in scored.items()):
            left_out[scene.name] = "a method left scored pixels without a value"
            continue
        per_scene[scene.name] = {name: errors.rmse(name) for name, errors in scored.items()}
        for name, errors in scored.items():
            sse[name] += float(errors.sse[name].sum())
            seconds[name] += spent[name]
        count += int(scored["dms"].count.sum())
        pixels += int(np.prod(protocol_view(scene, PROTOCOL).shape))
    return {
        "per_scene": per_scene,
        "left_out": left_out,
        "mean": {m: float(np.mean([r[m] for r in per_scene.values()])) for m in methods},
        "pooled": {m: float(np.sqrt(sse[m] / max(count, 1))) for m in methods},
        "s_per_mpx": {m: seconds[m] / max(pixels, 1) * 1e6 for m in methods},
    }


def format_table(results: dict[int, dict], scenes: dict[int, list[Scene]], window_coarse_px: int) -> str:
    titles = {
        "bicubic": "bicubic",
        "dms": "DMS-style (engine.classic)",
        "pydms": "pyDMS, global trees",
        f"pydms{window_coarse_px}": f"pyDMS, {window_coarse_px}-px windows",
    }
    unique = {s.name: s for listed in scenes.values() for s in listed}.values()
    sizes = ", ".join(
        f"{s.name} {protocol_view(s, PROTOCOL).shape[1]}x{protocol_view(s, PROTOCOL).shape[0]}"
        for s in unique
    )
    lines = [
        f"RMSE (K), native-resolution view of the held-out test scenes ({sizes} px at the native "
        "thermal pixel); every method conserved alike.",
        "",
    ]
    for scale, result in results.items():
        methods = list(result["mean"])
        names = list(result["per_scene"])
        lines += [
            f"**x{scale}**",
            "",
            "| method | " + " | ".join(names) + " | mean | pooled | s/Mpx |",
            "|---|" + "---:|" * (len(names) + 3),
        ]
        for m in methods:
            row = " | ".join(f"{result['per_scene'][n][m]:.3f}" for n in names)
            lines.append(
                f"| {titles[m]} | {row} | {result['mean'][m]:.3f} | {result['pooled'][m]:.3f} | "
                f"{result['s_per_mpx'][m]:.1f} |"
            )
        best_peer = min((m for m in methods if m.startswith("pydms")), key=result["mean"].__getitem__)
        lines += [
            "",
            f"DMS-style / best pyDMS ({titles[best_peer]}): mean {result['mean']['dms'] / result['mean'][best_peer]:.3f}, "
            f"pooled {result['pooled']['dms'] / result['pooled'][best_peer]:.3f}; DMS-style / bicubic: mean "
            f"{result['mean']['dms'] / result['mean']['bicubic']:.3f}",
            "",
        ]
        lines += [f"Left out at x{scale}: {name} ({why})" for name, why in result["left_out"].items()]
        if result["left_out"]:
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.bench.pydms_compare", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument(
        "--unseen",
        action="store_true",
        help="every corpus scene the bundled package never saw (make benchmark's)",
    )
    parser.add_argument("--window", type=int, default=15, help="pyDMS moving window, coarse pixels")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    try:
        from pyDMS.pyDMS import DecisionTreeSharpener
    except ImportError as error:
        print(
            f"pyDMS is not importable ({error}); nothing to compare. Install github.com/radosuav/pyDMS with "
            "scikit-learn, numba and pyproj in a scratch environment, or put them on PYTHONPATH."
        )
        return 0
    if args.unseen:
        from .unseen import unseen_scenes

        scenes = {s: unseen_scenes(s)[0] for s in args.scales}
    else:
        config_scenes = test_scenes(TrainConfig.load(args.config))
        scenes = dict.fromkeys(args.scales, config_scenes)
    results = {s: compare(scenes[s], s, DecisionTreeSharpener, args.window) for s in args.scales}
    table = format_table(results, scenes, args.window)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

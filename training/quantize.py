"""Static int8 quantisation of a model package, calibrated on training tiles, and the check
that decides whether it may be the default CPU variant.

Calibration uses tiles of the config's training scenes only (role ``train``/``split``,
never ``test``); the check runs the float32 and the int8 model through the engine on the
whole held-out test scenes (``training.protocol``, both protocols) and times both on the
same tiles, interleaved. The int8 variant qualifies only if it is at least
``MIN_SPEEDUP`` times faster and changes the pooled RMSE by at most ``MAX_RMSE_CHANGE_K``.

    python -m training.quantize training/configs/landsat-x4-light.json \\
        resources/models/mocolsk-x4-landsat-light.json --out /tmp/int8
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

MIN_SPEEDUP = 1.5
MAX_RMSE_CHANGE_K = 0.01
CALIBRATION_TILE_PX = 128
CALIBRATION_TILES = 40


def calibration_feeds(downscaler, scenes, tile_px: int, count: int, seed: int = 0) -> list[dict]:
    """Normalised network inputs of ``count`` random filled tiles of ``scenes`` (training scenes)."""
    from .datasets import filled
    from .scenes import area_average

    scale = downscaler.scale
    rng = np.random.default_rng(seed)
    feeds = []
    for i in range(count):
        scene = scenes[i % len(scenes)]
        rows, cols = (min(tile_px, n - n % scale) for n in scene.shape)
        top = int(rng.integers(0, (scene.shape[0] - rows) // scale + 1)) * scale
        left = int(rng.integers(0, (scene.shape[1] - cols) // scale + 1)) * scale
        window = (slice(top, top + rows), slice(left, left + cols))
        lst = scene.lst_kelvin[window]
        guidance = scene.guidance[(slice(None), *window)]
        coarse = area_average(lst, scale)
        coarse = filled(coarse, float(np.nanmean(coarse)) if np.isfinite(coarse).any() else 290.0)
        guidance = np.stack(
            [filled(b, float(np.nanmean(b)) if np.isfinite(b).any() else 0.0) for b in guidance]
        )
        lst_norm, guidance_norm, _ = downscaler.normalised(coarse[None], guidance[None])
        feeds.append({"lst": lst_norm, "guidance": guidance_norm})
    return feeds


def quantize_package(onnx_path: Path, out_path: Path, feeds: list[dict]) -> Path:
    """Static QDQ int8 (per-channel weights, uint8 activations) of ``onnx_path``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(feeds)

        def get_next(self):
            return next(self.items, None)

    quantize_static(
        str(onnx_path),
        str(out_path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.quantize", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="training config whose train scenes calibrate and test scenes check")
    parser.add_argument("package", help="model card (.json) of the float32 package")
    parser.add_argument("--out", required=True, help="folder for the int8 .onnx and the report")
    parser.add_argument("--tile", type=int, default=704, help="timing tile edge in fine px (pipeline tile)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)

    from engine.inference import Downscaler
    from engine.package import resolve_package

    from .config import TrainConfig
    from .evaluate import protocol_report
    from .sources import load_scenes

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = TrainConfig.load(args.config)
    scenes, roles = load_scenes(config)
    train = [s for s in scenes if roles[s.name] != "test"]
    test = [s for s in scenes if roles[s.name] == "test"]
    package = resolve_package(args.package)
    fp32 = Downscaler(package, backend="onnxruntime", device="cpu", threads=args.threads)
    feeds = calibration_feeds(fp32, train, CALIBRATION_TILE_PX, CALIBRATION_TILES)
    int8_path = quantize_package(package.onnx_path, out / f"{package.name}.int8.onnx", feeds)
    int8 = Downscaler(package, backend="onnxruntime", device="cpu", threads=args.threads, onnx_path=int8_path)

    rng = np.random.default_rng(1)
    channels = len(fp32.guidance_band_names)
    lst = (295 + rng.normal(0, 2, (1, args.tile // fp32.scale, args.tile // fp32.scale))).astype(np.float32)
    guidance = np.stack(
        [np.full((args.tile, args.tile), b.mean, np.float32) for b in fp32.card.guidance_bands]
    )
    guidance = (guidance + 0.5 * rng.normal(size=(channels, args.tile, args.tile)).astype(np.float32))[None]
    timings = {"float32": [], "int8": []}
    for model in (fp32, int8):
        model.predict_batch_kelvin(lst, guidance)
    for _ in range(args.repeats):
        for name, model in (("float32", fp32), ("int8", int8)):
            start = time.perf_counter()
            model.predict_batch_kelvin(lst, guidance)
            timings[name].append(time.perf_counter() - start)
    seconds = {k: statistics.median(v) for k, v in timings.items()}

    def predictor(model):
        def predict(sample):
            from engine.masks import fill_invalid

            coarse = fill_invalid(sample.coarse_kelvin, np.isfinite(sample.coarse_kelvin))
            guidance_valid = np.isfinite(sample.guidance).all(axis=0)
            guide = np.stack([fill_invalid(band, guidance_valid) for band in sample.guidance])
            return model.predict_kelvin(coarse, guide)

        return predict

    report = protocol_report(
        test, fp32.scale, {"float32": predictor(fp32), "int8": predictor(int8)}, log=print
    )
    result = {
        "package": package.name,
        "calibration": f"{CALIBRATION_TILES} tiles of {CALIBRATION_TILE_PX} px from {', '.join(s.name for s in train)}",
        "test_scenes": [s.name for s in test],
        "tile_px": args.tile,
        "seconds_per_tile": seconds,
        "speedup": seconds["float32"] / seconds["int8"],
        "rmse_k": {p: {m: report[p]["methods"][m]["rmse_k"] for m in ("float32", "int8")} for p in report},
    }
    result["max_rmse_change_k"] = max(abs(r["int8"] - r["float32"]) for r in result["rmse_k"].values())
    result["qualifies"] = bool(
        result["speedup"] >= MIN_SPEEDUP and result["max_rmse_change_k"] <= MAX_RMSE_CHANGE_K
    )
    (out / "quantize-report.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`make benchmark`: accuracy of MoCoLSK against the classic sharpeners, the deep baselines
of the zoo and (when installed) pyDMS, on the held-out real split, at x2, x4 and x8.

For each scale the held-out test blocks are those of the bundled MoCoLSK package's
training run at that scale (its recorded config; the split is recomputed and checked
against the blocks its card lists), or of ``training/configs/landsat-x{s}-light.json``
when no package exists. Every method sees the same coarse input (the fine LST area-
averaged by the scale) and the same guidance, and is scored on the same pixels, in
Kelvin: RMSE, MAE, bias, CC, RSD pooled over all held-out pixels, SSIM averaged over the
blocks, PSNR with the reference's range (``engine.metrics``, as the training evaluation). Zoo networks are evaluated from
``runs/zoo/<name>-x<scale>/last.pt`` when such a checkpoint exists and are listed as not
trained otherwise.

Writes ``accuracy_x{s}.md`` (one table per scale, best value in bold) and
``figure5_x{s}.png`` (each method's reconstruction of one test area and its difference
to the reference on a shared colour bar) under ``--out`` (default ``docs/benchmark``).

    python -m training.benchmark [--scales 2 4 8] [--zoo-runs runs/zoo] [--out docs/benchmark]
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import metrics

from .config import TrainConfig
from .datasets import Normalizer, Sample
from .evaluate import predict_classic, predict_package, predict_samples, score_predictions
from .sources import build_training_data

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "training" / "configs"
# (table key, heading, better: "low" | "high" | "zero", format)
COLUMNS = (
    ("rmse_k", "RMSE (K)", "low", "{:.3f}"),
    ("mae_k", "MAE (K)", "low", "{:.3f}"),
    ("bias_k", "bias (K)", "zero", "{:+.4f}"),
    ("cc", "CC", "high", "{:.4f}"),
    ("rsd_k", "RSD (K)", "low", "{:.3f}"),
    ("ssim", "SSIM", "high", "{:.4f}"),
    ("psnr_db", "PSNR (dB)", "high", "{:.2f}"),
)
CLASSIC_TITLES = {"bicubic": "Bicubic", "tsharp": "TsHARP", "dms": "DMS-style (ours, engine.classic)"}


@dataclass
class Row:
    """One method's line of a table: its predictions (None when it could not run) and a note."""

    name: str
    kind: str
    predictions: list[np.ndarray] | None = None
    note: str = ""
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class ScaleResult:
    scale: int
    config: TrainConfig
    samples: list[Sample]
    rows: list[Row]
    split_note: str


def pooled_scores(samples: list[Sample], predictions: list[np.ndarray]) -> dict[str, float]:
    """The training evaluation's scores (``score_predictions``: RMSE, MAE, bias, CC, RSD
    pooled over all scored pixels, SSIM averaged over blocks) plus PSNR over the pooled
    pixels with the reference's range."""
    scores = score_predictions(samples, predictions)
    predicted = np.concatenate([p[s.mask] for p, s in zip(predictions, samples)]).astype(np.float64)
    truth = np.concatenate([s.fine_kelvin[s.mask] for s in samples]).astype(np.float64)
    return {**scores, "psnr_db": metrics.psnr(predicted, truth)}


def held_out_config(scale: int, package) -> tuple[TrainConfig, list[str] | None]:
    """The data config whose test split the table uses, and the held-out block names the
    package's card lists (None without a package)."""
    if package is None:
        return TrainConfig.load(CONFIGS / f"landsat-x{scale}-light.json"), None
    values = dict(package.card.training["config"])
    split = dict(values["split"])
    if split.get("file") and not Path(split["file"]).is_file():
        split.pop("file")
    values["split"] = split
    return TrainConfig.from_dict(values, CONFIGS), list(package.card.training.get("held_out") or [])


def bundled_package_for(scale: int, log):
    """The bundled MoCoLSK package at ``scale`` (the first by name), or None."""
    from engine.package import bundled_packages, load_package

    for name, path in bundled_packages().items():
        package = load_package(path)
        if package.card.scale == scale:
            return package
    log(f"x{scale}: no bundled MoCoLSK package at this scale (resources/models); MoCoLSK is left out of the table")
    return None


def zoo_rows(scale: int, samples: list[Sample], bands: tuple[str, ...], zoo_runs: Path, test_names: list[str],
             log) -> list[Row]:
    """A row per zoo network: scored from ``zoo_runs/<name>-x<scale>/last.pt`` when it exists."""
    from .loop import load_checkpoint
    from .splits import read_split
    from .zoo import ZOO, from_config

    rows = []
    for name, entry in ZOO.items():
        kind = "deep, guided" if entry.guided else "deep, single-image"
        checkpoint = zoo_runs / f"{name}-x{scale}" / "last.pt"
        if not checkpoint.is_file():
            rows.append(Row(entry.title, kind, note=f"not trained (no {checkpoint.relative_to(REPO) if checkpoint.is_relative_to(REPO) else checkpoint})"))
            continue
        state = load_checkpoint(checkpoint)
        trained_bands = tuple(b["name"] for b in state["bands"])
        if state["model_config"].get("architecture") != name or trained_bands != bands:
            rows.append(Row(entry.title, kind, note=f"skipped: {checkpoint} is not a {entry.title} trained on bands {bands}"))
            continue
        model = from_config(state["model_config"])
        model.load_state_dict(state["model"])
        note = f"{state['step']} iterations" + (f", `{state['command']}`" if state.get("command") else "")
        split_file = checkpoint.parent / "split.json"
        if split_file.is_file():
            blocks, _ = read_split(split_file)
            trained_test = sorted(f"{b.scene}[{b.row}:{b.row + b.rows},{b.col}:{b.col + b.cols}]" for b in blocks if b.role == "test")
            if trained_test != sorted(test_names):
                note += "; WARNING: trained with a different split, may have seen test pixels"
        log(f"x{scale}: {entry.title} from {checkpoint} ({note})")
        rows.append(Row(entry.title, kind, predict_samples(model, samples, Normalizer.from_dict(state["normalizer"])), note))
    return rows


def pydms_row(scale: int, samples: list[Sample], log) -> Row:
    """pyDMS (Guzinski's public DMS implementation) as a peer, when it is importable."""
    try:
        from pyDMS.pyDMS import DecisionTreeSharpener
    except ImportError:
        log("pyDMS is not installed: its row is skipped (pip install it from github.com/radosuav/pyDMS to compare)")
        return Row("pyDMS (peer)", "peer", note="skipped: pyDMS not installed")
    return Row("pyDMS (peer)", "peer", pydms_predictions(DecisionTreeSharpener, scale, samples),
               "DecisionTreeSharpener, global trees, residual correction")


def pydms_predictions(sharpener_class, scale: int, samples: list[Sample]) -> list[np.ndarray]:
    """Fit one pyDMS decision-tree sharpener on all held-out coarse/fine file pairs, then
    sharpen and residual-correct each, as pyDMS's own script does."""
    from osgeo import gdal

    from .datasets import filled

    def write(path: Path, bands: np.ndarray, pixel_m: float) -> str:
        ds = gdal.GetDriverByName("GTiff").Create(str(path), bands.shape[2], bands.shape[1], bands.shape[0], gdal.GDT_Float32)
        ds.SetGeoTransform((500000.0, pixel_m, 0.0, 9000000.0, 0.0, -pixel_m))
        ds.SetProjection('LOCAL_CS["metres",UNIT["metre",1]]')
        for i, band in enumerate(bands):
            ds.GetRasterBand(i + 1).WriteArray(band.astype(np.float32))
            ds.GetRasterBand(i + 1).SetNoDataValue(float("nan"))
        ds.FlushCache()
        return str(path)

    with tempfile.TemporaryDirectory() as folder:
        pairs = []
        for i, sample in enumerate(samples):
            guidance = np.stack([filled(b, float(np.nanmean(b))) for b in sample.guidance])
            pairs.append((write(Path(folder) / f"fine{i}.tif", guidance, 30.0),
                          write(Path(folder) / f"coarse{i}.tif", sample.coarse_kelvin[None], 30.0 * scale)))
        sharpener = sharpener_class([p[0] for p in pairs], [p[1] for p in pairs], disaggregatingTemperature=True,
                                    movingWindowSize=0, perLeafLinearRegression=True)
        sharpener.trainSharpener()
        out = []
        for fine, coarse in pairs:
            sharpened = sharpener.applySharpener(fine, coarse)
            _, corrected = sharpener.residualAnalysis(sharpened, coarse, doCorrection=True)
            result = corrected if corrected is not None else sharpened
            out.append(result.GetRasterBand(1).ReadAsArray().astype(np.float32))
    return out


def benchmark_scale(scale: int, zoo_runs: Path, threads: int | None = None, log=print) -> ScaleResult:
    """The table at ``scale``: on the bundled package's held-out split, or the default config's."""
    package = bundled_package_for(scale, log)
    config, card_blocks = held_out_config(scale, package)
    return run_benchmark(config, package, zoo_runs, threads, log, card_blocks)


def run_benchmark(config: TrainConfig, package, zoo_runs: Path, threads: int | None = None, log=print,
                  expected_blocks: list[str] | None = None) -> ScaleResult:
    """Every method's predictions and scores on the test blocks of ``config``; ``package``
    (a MoCoLSK model package or None) must have been trained on that config's split."""
    scale = config.scale
    with tempfile.TemporaryDirectory() as work:
        data = build_training_data(config, Path(work))
    samples = data.test
    if not samples:
        raise ValueError(f"x{scale}: config {config.name} has no held-out test blocks")
    bands = tuple(b.name for b in data.bands)
    names = [s.name for s in samples]
    split_note = f"{len(samples)} held-out test block(s) of config `{config.name}`: " + ", ".join(names)
    rows: list[Row] = []
    if package is not None:
        if expected_blocks is not None and sorted(expected_blocks) != sorted(names):
            raise ValueError(f"x{scale}: the recomputed test split {names} differs from the blocks {expected_blocks} "
                             f"listed in {package.card_path.name}; the package's held-out area cannot be reproduced")
        if tuple(b.name for b in package.card.guidance_bands) != bands:
            rows.append(Row(f"MoCoLSK ({package.name})", "ours", note="skipped: its guidance bands differ from the data's"))
        else:
            log(f"x{scale}: MoCoLSK package {package.name} through ONNX Runtime")
            rows.append(Row(f"MoCoLSK ({package.name})", "ours", predict_package(package, samples, threads),
                            f"model package, {package.card.hyperparameters.get('num_feats', '?')} features, "
                            f"{package.card.training.get('iterations', '?')} iterations"))
    for method in ("bicubic", "tsharp", "dms"):
        if method == "tsharp" and "ndvi" not in bands:
            rows.append(Row(CLASSIC_TITLES[method], "classic", note="skipped: no 'ndvi' guidance band"))
            continue
        rows.append(Row(CLASSIC_TITLES[method], "classic", predict_classic(method, samples, bands, scale)))
    rows.append(pydms_row(scale, samples, log))
    rows.extend(zoo_rows(scale, samples, bands, zoo_runs, names, log))
    for row in rows:
        if row.predictions is not None:
            row.scores = pooled_scores(samples, row.predictions)
    return ScaleResult(scale, config, samples, rows, split_note)


def best_values(rows: list[Row]) -> dict[str, float]:
    scored = [r.scores for r in rows if r.scores]
    best = {}
    for key, _, better, _ in COLUMNS:
        values = [s[key] for s in scored if np.isfinite(s[key])]
        if values:
            best[key] = min(values) if better == "low" else max(values) if better == "high" else min(values, key=abs)
    return best


def format_markdown(result: ScaleResult, command: str) -> str:
    """The table of one scale with its provenance; the best value of each column in bold."""
    best = best_values(result.rows)
    pixels = next((r.scores["pixels"] for r in result.rows if r.scores), 0)
    lines = [
        f"# Accuracy at x{result.scale} on the held-out real split",
        "",
        f"{time.strftime('%Y-%m-%d')}, {platform.node() or 'unknown host'} ({platform.machine()}), "
        f"Python {platform.python_version()}; command: `{command}`",
        "",
        f"Data: {result.split_note}; {pixels} scored pixels. Coarse input = fine LST area-averaged x{result.scale}; "
        f"reference = the fine LST (Kelvin). RMSE, MAE, bias (prediction - reference), CC and RSD (std of the "
        f"error) pooled over all pixels; SSIM averaged over the blocks; PSNR with the reference's range. "
        f"Best value per column in **bold** (bias: closest to 0).",
        "",
        "| method | type | " + " | ".join(c[1] for c in COLUMNS) + " | note |",
        "|---|---|" + "---:|" * len(COLUMNS) + "---|",
    ]
    for row in result.rows:
        cells = []
        for key, _, _, fmt in COLUMNS:
            if not row.scores:
                cells.append("–")
                continue
            text = fmt.format(row.scores[key])
            cells.append(f"**{text}**" if key in best and row.scores[key] == best[key] else text)
        lines.append(f"| {row.name} | {row.kind} | " + " | ".join(cells) + f" | {row.note} |")
    return "\n".join(lines) + "\n"


def figure_sample(samples: list[Sample]) -> int:
    """The test block with the most temperature structure (largest standard deviation)."""
    return int(np.argmax([np.nanstd(np.where(s.mask, s.fine_kelvin, np.nan)) for s in samples]))


def write_figure(result: ScaleResult, path: Path) -> None:
    """Figure-5-style panel: reference and coarse input, then for each method its
    reconstruction (top, shared temperature scale) and its difference to the reference
    (bottom, shared diverging scale centred at 0: red warmer, blue colder, white equal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    index = figure_sample(result.samples)
    sample = result.samples[index]
    mask = sample.mask
    truth = np.where(mask, sample.fine_kelvin, np.nan)
    shown = [r for r in result.rows if r.predictions is not None]
    recon = {r.name: np.where(mask, r.predictions[index], np.nan) for r in shown}
    diffs = {name: image - truth for name, image in recon.items()}
    low, high = np.nanpercentile(truth, [1, 99])
    limit = max(float(np.nanpercentile(np.abs(np.stack(list(diffs.values()))), 99)), 1e-3)
    coarse = np.repeat(np.repeat(sample.coarse_kelvin, result.scale, 0), result.scale, 1)

    columns = len(shown) + 1
    fig, axes = plt.subplots(2, columns, figsize=(2.2 * columns + 1.2, 5.0), squeeze=False, constrained_layout=True)
    temperature = dict(cmap="inferno", vmin=low, vmax=high, interpolation="nearest")
    difference = dict(cmap="bwr", norm=TwoSlopeNorm(0.0, -limit, limit), interpolation="nearest")
    t_image = axes[0, 0].imshow(truth, **temperature)
    axes[0, 0].set_title("reference (30 m)", fontsize=9)
    axes[1, 0].imshow(np.where(mask, coarse, np.nan), **temperature)
    axes[1, 0].set_title(f"coarse input (x{result.scale})", fontsize=9)
    d_image = None
    for col, row in enumerate(shown, start=1):
        axes[0, col].imshow(recon[row.name], **temperature)
        axes[0, col].set_title(row.name.replace(" (", "\n("), fontsize=8)
        d_image = axes[1, col].imshow(diffs[row.name], **difference)
        axes[1, col].set_title(f"RMSE {metrics.rmse(recon[row.name], truth):.3f} K here", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(t_image, ax=axes[0, :], shrink=0.9, label="LST (K)")
    if d_image is not None:
        fig.colorbar(d_image, ax=axes[1, :], shrink=0.9, label="method - reference (K)")
    fig.suptitle(f"x{result.scale}, held-out block {sample.name}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--zoo-runs", default=str(REPO / "runs" / "zoo"), help="folder of <name>-x<scale>/last.pt zoo checkpoints")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmark"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m training.benchmark " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    for scale in args.scales:
        result = benchmark_scale(scale, Path(args.zoo_runs), args.threads)
        text = format_markdown(result, command.strip())
        (out / f"accuracy_x{scale}.md").write_text(text, encoding="utf-8")
        (out / f"accuracy_x{scale}.json").write_text(
            json.dumps({r.name: {"kind": r.kind, "note": r.note, **r.scores} for r in result.rows}, indent=1) + "\n",
            encoding="utf-8")
        write_figure(result, out / f"figure5_x{scale}.png")
        print(text)
        print(f"written: {out / f'accuracy_x{scale}.md'}, {out / f'figure5_x{scale}.png'}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

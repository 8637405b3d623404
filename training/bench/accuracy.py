"""`make benchmark`: MoCoLSK against the classic sharpeners, pyDMS (when installed) and the
deep baselines of the zoo, on whole real scenes never seen in training, at x2, x4 and x8,
under both protocols of ``training.protocol`` (in-grid and native resolution), with 95 %
bootstrap intervals for every RMSE and for MoCoLSK's difference to the best classic method.

For each scale the test scenes are those of the bundled MoCoLSK package's training config
(recorded in its card), or of ``training/configs/landsat-x{s}-light.json`` when no package
exists. Every method gets the same coarse input and coarse-mean conservation. Zoo networks
are scored from ``runs/zoo/<name>-x<scale>/last.pt`` when such a checkpoint exists and
listed as not trained otherwise.

Writes ``accuracy_x{s}.md`` and ``accuracy_x{s}.json`` and ``figure5_x{s}.png`` (each
method's reconstruction of one held-out scene and its difference to the truth) under
``--out`` (default ``docs/benchmark``).

    python -m training.bench.accuracy [--scales 2 4 8] [--zoo-runs runs/zoo] [--out docs/benchmark]
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

from ..config import TrainConfig
from ..datasets import Normalizer, Sample, filled, sample_from_fine
from ..evaluate import (
    classic_predictors,
    format_report,
    is_network,
    model_predictor,
    package_predictor,
    protocol_report,
)
from ..protocol import Method, Predictor, protocol_view, truth_description, view_prediction
from ..release import recommended_method
from ..scenes import Scene
from ..sources import build_training_data

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "training" / "configs"
TITLES = {
    "mocolsk": "MoCoLSK (bundled)",
    "bicubic": "Bicubic",
    "tsharp": "TsHARP",
    "dms": "DMS-style (engine.classic)",
    "pydms": "pyDMS (peer)",
}


@dataclass
class ScaleResult:
    scale: int
    config: TrainConfig
    scenes: list[Scene]
    predictors: dict[str, Method]
    report: dict[str, dict]
    notes: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)

    def title(self, method: str) -> str:
        return self.titles.get(method, TITLES.get(method, method))


def held_out_config(scale: int, package) -> TrainConfig:
    """The data config whose test scenes the table uses: the package's recorded one, else the default."""
    if package is None:
        return TrainConfig.load(CONFIGS / f"landsat-x{scale}-light.json")
    values = dict(package.card.training["config"])
    values["split"] = {k: v for k, v in values["split"].items() if k != "file"}
    return TrainConfig.from_dict(values, CONFIGS)


def bundled_package_for(scale: int, log):
    """The bundled MoCoLSK package at ``scale`` (the first by name), or None."""
    from engine.package import bundled_packages, load_package

    for _, path in bundled_packages().items():
        package = load_package(path)
        if package.card.scale == scale:
            return package
    log(
        f"x{scale}: no bundled MoCoLSK package at this scale (resources/models); MoCoLSK is left out of the "
        "table"
    )
    return None


def zoo_predictors(
    scale: int, bands: tuple[str, ...], zoo_runs: Path, log
) -> tuple[dict[str, Predictor], dict[str, str]]:
    """A predictor per zoo network trained at ``scale`` (``zoo_runs/<name>-x<scale>/last.pt``), and a note for every one."""
    from ..loop import load_checkpoint
    from ..zoo import ZOO, from_config

    predictors, notes = {}, {}
    for name, entry in ZOO.items():
        checkpoint = zoo_runs / f"{name}-x{scale}" / "last.pt"
        if not checkpoint.is_file():
            notes[name] = f"not trained (no {checkpoint.name} in {checkpoint.parent})"
            continue
        state = load_checkpoint(checkpoint)
        if (
            state["model_config"].get("architecture") != name
            or tuple(b["name"] for b in state["bands"]) != bands
        ):
            notes[name] = f"skipped: {checkpoint} is not a {entry.title} trained on bands {bands}"
            continue
        model = from_config(state["model_config"])
        model.load_state_dict(state["model"])
        predictors[name] = model_predictor(model.eval(), Normalizer.from_dict(state["normalizer"]))
        notes[name] = f"{state['step']} iterations" + (
            f", `{state['command']}`" if state.get("command") else ""
        )
        log(f"x{scale}: {entry.title} from {checkpoint} ({notes[name]})")
    return predictors, notes


def pydms_predictor(scale: int, log) -> Predictor | None:
    """pyDMS (Guzinski's public DMS implementation) as a peer, when it is importable."""
    try:
        from pyDMS.pyDMS import DecisionTreeSharpener
    except ImportError:
        log(
            "pyDMS is not installed: its row is skipped (pip install it from github.com/radosuav/pyDMS to "
            "compare)"
        )
        return None
    return lambda sample: pydms_prediction(DecisionTreeSharpener, scale, sample)


def pydms_prediction(sharpener_class, scale: int, sample: Sample) -> np.ndarray:
    """pyDMS's decision-tree sharpener with its residual correction, through GeoTIFF files as its script runs it."""
    from engine.raster import write_stack

    from ..pipeline_runs import view_grid

    def write(path: Path, bands: np.ndarray, pixel_m: float) -> str:
        return str(write_stack(path, view_grid(bands.shape[1:], pixel_m), bands, nodata=float("nan")))

    with tempfile.TemporaryDirectory() as folder:
        guidance = np.stack([filled(b, float(np.nanmean(b))) for b in sample.guidance])
        fine = write(Path(folder) / "fine.tif", guidance, 30.0)
        coarse = write(Path(folder) / "coarse.tif", sample.coarse_kelvin[None], 30.0 * scale)
        sharpener = sharpener_class(
            [fine], [coarse], disaggregatingTemperature=True, movingWindowSize=0, perLeafLinearRegression=True
        )
        sharpener.trainSharpener()
        sharpened = sharpener.applySharpener(fine, coarse)
        _, corrected = sharpener.residualAnalysis(sharpened, coarse, doCorrection=True)
        result = corrected if corrected is not None else sharpened
        return result.GetRasterBand(1).ReadAsArray().astype(np.float32)


def benchmark_scale(scale: int, zoo_runs: Path, threads: int | None = None, log=print) -> ScaleResult:
    """The tables at ``scale`` on the bundled package's test scenes, or the default config's."""
    package = bundled_package_for(scale, log)
    return run_benchmark(held_out_config(scale, package), package, zoo_runs, threads, log)


def run_benchmark(
    config: TrainConfig, package, zoo_runs: Path, threads: int | None = None, log=print
) -> ScaleResult:
    """Every method on the whole test scenes of ``config`` under both protocols."""
    scale = config.scale
    with tempfile.TemporaryDirectory() as work:
        data = build_training_data(config, Path(work))
    if not data.test_scenes:
        raise ValueError(f"x{scale}: config {config.name} holds out no whole test scene")
    bands = tuple(b.name for b in data.bands)
    predictors: dict[str, Method] = {}
    notes: dict[str, str] = {}
    if package is not None:
        if package.card.guidance_band_names != bands:
            notes["mocolsk"] = f"skipped: {package.name}'s guidance bands differ from the data's"
        else:
            predictors["mocolsk"] = package_predictor(package, threads)
            notes["mocolsk"] = (
                f"model package through ONNX Runtime, {package.card.hyperparameters.get('num_feats', '?')} "
                f"features, {package.card.training.get('iterations', '?')} iterations"
            )
    predictors.update(classic_predictors(bands, scale))
    pydms = pydms_predictor(scale, log)
    if pydms is None:
        notes["pydms"] = "skipped: pyDMS not installed"
    else:
        predictors["pydms"] = pydms
    zoo, zoo_notes = zoo_predictors(scale, bands, zoo_runs, log)
    predictors.update(zoo)
    notes.update(zoo_notes)
    report = protocol_report(data.test_scenes, scale, predictors, log=log)
    from ..zoo import ZOO

    titles = {name: f"{entry.title} (zoo)" for name, entry in ZOO.items()}
    if package is not None:
        titles["mocolsk"] = f"MoCoLSK ({package.name})"
    return ScaleResult(scale, config, data.test_scenes, predictors, report, notes, titles)


def format_markdown(result: ScaleResult, command: str) -> str:
    """Both protocols' tables with their provenance and what each scene's truth is."""
    scenes = "\n".join(
        f"- {s.name}: {s.landscape or 'landscape not recorded'}; in-grid truth "
        f"{truth_description(s, 'ingrid')}; "
        f"native truth {truth_description(s, 'native')}"
        for s in result.scenes
    )
    skipped = "\n".join(
        f"- {result.title(m)}: {note}" for m, note in result.notes.items() if m not in result.predictors
    )
    recommended = recommended_method(result.report)
    return (
        f"# Accuracy at x{result.scale} on whole held-out scenes\n\n"
        f"{time.strftime('%Y-%m-%d')}, {platform.node() or 'unknown host'} ({platform.machine()}), Python "
        f"{platform.python_version()}; command: `{command}`; data config `{result.config.name}`.\n\n"
        "Scenes never seen in training (none from compgeolab/xlandsat, which is reserved for independent "
        "checks):\n"
        f"{scenes}\n\n"
        "RMSE in Kelvin pooled over each protocol's valid pixels; 95 % intervals from a bootstrap over "
        "scenes, then "
        "blocks of 4x4 coarse pixels. Every method gets the same coarse input and coarse-mean "
        "conservation.\n\n"
        f"{format_report(result.report, {m: result.title(m) for m in result.predictors})}\n"
        f"Recommended at x{result.scale} (lowest geometric-mean RMSE relative to bicubic over both "
        "protocols): "
        f"**{result.title(recommended)}**.\n\n" + (f"Not scored:\n{skipped}\n" if skipped else "")
    )


def write_figure(result: ScaleResult, path: Path, protocol: str = "native") -> None:
    """Figure-5-style panel on the first held-out scene: truth and coarse input, then each
    method's reconstruction (top, shared temperature scale) and its difference to the truth
    (bottom, shared diverging scale centred at 0: red warmer, blue colder)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    scene = result.scenes[0]
    view = protocol_view(scene, protocol)
    sample = sample_from_fine(view.name, view.lst_kelvin, view.guidance, result.scale)
    mask = sample.mask
    truth = np.where(mask, sample.fine_kelvin, np.nan)
    recon = {
        m: np.where(
            mask, view_prediction(p, sample, view, result.scale, is_network(m), protocol != "native"), np.nan
        )
        for m, p in result.predictors.items()
    }
    diffs = {m: image - truth for m, image in recon.items()}
    low, high = np.nanpercentile(truth, [1, 99])
    limit = max(float(np.nanpercentile(np.abs(np.stack(list(diffs.values()))), 99)), 1e-3)
    coarse = np.repeat(np.repeat(sample.coarse_kelvin, result.scale, 0), result.scale, 1)

    columns = len(recon) + 1
    fig, axes = plt.subplots(
        2, columns, figsize=(2.2 * columns + 1.2, 5.0), squeeze=False, constrained_layout=True
    )
    temperature = dict(cmap="inferno", vmin=low, vmax=high, interpolation="nearest")
    difference = dict(cmap="bwr", norm=TwoSlopeNorm(0.0, -limit, limit), interpolation="nearest")
    t_image = axes[0, 0].imshow(truth, **temperature)
    axes[0, 0].set_title(f"truth ({view.pixel_size_m:g} m)", fontsize=9)
    axes[1, 0].imshow(np.where(mask, coarse, np.nan), **temperature)
    axes[1, 0].set_title(f"coarse input (x{result.scale})", fontsize=9)
    d_image = None
    for col, method in enumerate(recon, start=1):
        rmse = float(np.sqrt(np.nanmean(diffs[method] ** 2)))
        axes[0, col].imshow(recon[method], **temperature)
        axes[0, col].set_title(result.title(method).replace(" (", "\n("), fontsize=8)
        d_image = axes[1, col].imshow(diffs[method], **difference)
        axes[1, col].set_title(f"RMSE {rmse:.3f} K", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(t_image, ax=axes[0, :], shrink=0.9, label="LST (K)")
    if d_image is not None:
        fig.colorbar(d_image, ax=axes[1, :], shrink=0.9, label="method - truth (K)")
    fig.suptitle(f"x{result.scale}, {protocol} protocol, held-out scene {scene.name}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.bench.accuracy", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument(
        "--zoo-runs",
        default=str(REPO / "runs" / "zoo"),
        help="folder of <name>-x<scale>/last.pt zoo checkpoints",
    )
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmark"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m training.bench.accuracy " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    for scale in args.scales:
        result = benchmark_scale(scale, Path(args.zoo_runs), args.threads)
        text = format_markdown(result, command.strip())
        (out / f"accuracy_x{scale}.md").write_text(text, encoding="utf-8")
        payload = {
            "report": result.report,
            "recommended_method": recommended_method(result.report),
            "notes": result.notes,
        }
        (out / f"accuracy_x{scale}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        write_figure(result, out / f"figure5_x{scale}.png")
        print(text)
        print(f"written: {out / f'accuracy_x{scale}.md'}, {out / f'figure5_x{scale}.png'}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Held-out evaluation: a model (checkpoint or package) beside bicubic and the classic
sharpeners, on exactly the same held-out pixels, in Kelvin.

Metrics are pooled over all held-out pixels (not averaged per block). The plugin's
methods (bundled packages, the classic sharpeners) run through its pipeline on what a user
has (the coarse LST and the fine guidance of the held-out area). On arrays (fine-tuning's
validation, the uncertainty calibration, a network being trained) methods run through the
engine's array core (``engine.core``), the same code the pipeline runs per tile.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from engine import metrics
from engine.classic import CLASSIC_METHODS, create_sharpener
from engine.core import ArrayMethod, ArrayResult, NetworkSharpener, WindowMethod, downscale_arrays

from .datasets import Normalizer, Sample, model_inputs
from .pipeline_runs import PipelineMethod
from .protocol import PROTOCOLS, Method, Predictor, evaluate_scene, summarise
from .scenes import Scene

PEER_METHODS = ("pydms",)


def score_predictions(samples: list[Sample], predictions: list[np.ndarray]) -> dict[str, float]:
    """RMSE, MAE, bias, CC and RSD (engine.metrics) pooled over the scored pixels of all
    samples, and SSIM averaged over the samples that have any (a block may be all cloud)."""
    masks = [s.mask for s in samples]
    predicted = np.concatenate([p[m] for p, m in zip(predictions, masks)]).astype(np.float64)
    truth = np.concatenate([s.fine_kelvin[m] for s, m in zip(samples, masks)]).astype(np.float64)
    return {
        "rmse_k": metrics.rmse(predicted, truth),
        "mae_k": metrics.mae(predicted, truth),
        "bias_k": metrics.bias(predicted, truth),
        "cc": metrics.cc(predicted, truth),
        "rsd_k": metrics.rsd(predicted, truth),
        "ssim": float(
            np.mean(
                [metrics.ssim(p, s.fine_kelvin, m) for p, s, m in zip(predictions, samples, masks) if m.any()]
            )
        ),
        "pixels": int(truth.size),
    }


@torch.no_grad()
def predict_samples(
    model: torch.nn.Module, samples: list[Sample], normalizer: Normalizer, device: torch.device | str = "cpu"
) -> list[np.ndarray]:
    """The network's fine LST in Kelvin for each sample, one sample at a time."""
    was_training = model.training
    model.eval()
    out = []
    for sample in samples:
        lst, guidance, _, _ = model_inputs(sample, normalizer)
        prediction = model(
            torch.from_numpy(lst[None]).to(device), torch.from_numpy(guidance[None]).to(device)
        )
        out.append(
            normalizer.lst_kelvin(
                prediction[0, 0].float().cpu().numpy(), normalizer.lst_centre(sample.coarse_kelvin)
            )
        )
    model.train(was_training)
    return out


class TorchDownscaler:
    """A PyTorch MoCoLSK-Net with the engine Downscaler's ``predict_kelvin``, normalised as the
    engine normalises, so that the array core (``engine.core``) can run it like a package."""

    def __init__(self, model: torch.nn.Module, normalizer: Normalizer, scale: int, device="cpu"):
        self.model, self.normalizer, self.scale, self.device = model, normalizer, scale, device

    @torch.no_grad()
    def predict_kelvin(self, lst_kelvin: np.ndarray, guidance: np.ndarray) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        centre = self.normalizer.lst_centre(lst_kelvin)
        lst = torch.from_numpy(self.normalizer.lst(lst_kelvin, centre)[None, None]).to(self.device)
        guidance = torch.from_numpy(self.normalizer.guidance(guidance)[None]).to(self.device)
        fine = self.model(lst, guidance)[0, 0].float().cpu().numpy()
        self.model.train(was_training)
        return self.normalizer.lst_kelvin(fine, centre)


def as_run(method: WindowMethod, sample: Sample, uncertainty: bool = False) -> ArrayResult:
    """``method`` on a sample as the plugin runs it (``engine.core.downscale_arrays``: tiles, fills,
    detail bound for networks, coarse-mean conservation, blend); NaN where the plugin writes nodata."""
    return downscale_arrays(method, sample.coarse_kelvin, sample.guidance, uncertainty=uncertainty)


def classic_method(method: str, band_names: tuple[str, ...], scale: int) -> tuple[ArrayMethod, list[int]]:
    """A fresh classic sharpener and the guidance channels it reads (TsHARP: NDVI; DMS: all)."""
    if method == "tsharp":
        if "ndvi" not in band_names:
            raise ValueError("TsHARP needs an 'ndvi' guidance band")
        channels = [band_names.index("ndvi")]
    else:
        channels = list(range(len(band_names)))
    return ArrayMethod(create_sharpener(method, scale, len(channels))), channels


def predict_classic(
    method: str, samples: list[Sample], band_names: tuple[str, ...], scale: int
) -> list[np.ndarray]:
    """A classic sharpener on each sample as the plugin runs it on a scene: fitted on the sample's
    own coarse pixels, tiled, filled and conserved (``engine.core``)."""
    out = []
    for sample in samples:
        sharpener, channels = classic_method(method, band_names, scale)
        out.append(as_run(sharpener, replace(sample, guidance=sample.guidance[channels])).fine_kelvin)
    return out


def network_method(model: torch.nn.Module, normalizer: Normalizer, device="cpu") -> ArrayMethod:
    """A PyTorch MoCoLSK-Net as the array core's method (detail-bounded, like a package)."""
    return ArrayMethod(NetworkSharpener(TorchDownscaler(model, normalizer, model.config.scale, device)))


def model_predictor(model: torch.nn.Module, normalizer: Normalizer) -> Predictor:
    """A PyTorch network as a protocol predictor, run as the plugin runs a package."""
    return lambda sample: as_run(network_method(model, normalizer), sample).fine_kelvin


def package_predictor(package, threads: int | None = None) -> PipelineMethod:
    """A model package as the plugin runs it: MoCoLSK through the pipeline (ONNX Runtime)."""
    return PipelineMethod("mocolsk", model=str(package.card_path), options={"threads": threads})


def is_network(method: str) -> bool:
    """Whether the plugin treats ``method`` as a network (detail-bounded): any but the classic ones and pyDMS."""
    return method not in (*CLASSIC_METHODS, *PEER_METHODS)


def protocol_report(
    scenes: list[Scene],
    scale: int,
    predictors: dict[str, Method],
    protocols: tuple[str, ...] = PROTOCOLS,
    log=None,
) -> dict[str, dict]:
    """For each protocol, every predictor on every whole held-out scene, summarised with
    bootstrap intervals (``training.protocol.summarise``); networks (any method but the
    classic ones and pyDMS) get the plugin's detail bound before conservation."""
    report = {}
    classic = [m for m in predictors if m in CLASSIC_METHODS]
    networks = frozenset(m for m in predictors if is_network(m))
    for protocol in protocols:
        errors = []
        for scene in scenes:
            errors.append(evaluate_scene(scene, protocol, scale, predictors, networks))
            if log:
                log(
                    f"x{scale} {protocol} {scene.name}: "
                    + ", ".join(f"{m} {errors[-1].rmse(m):.3f} K" for m in predictors)
                )
        report[protocol] = summarise(errors, list(predictors), classic)
    return report


def classic_predictors(band_names: tuple[str, ...], scale: int) -> dict[str, PipelineMethod]:
    """Bicubic, TsHARP (when an NDVI band exists) and DMS, as the plugin runs them."""
    methods = [m for m in CLASSIC_METHODS if m != "tsharp" or "ndvi" in band_names]
    return {m: PipelineMethod(m) for m in methods}


def format_report(report: dict[str, dict], titles: dict[str, str] | None = None) -> str:
    """Markdown: per protocol, pooled RMSE with its 95 % interval for each method, the
    difference of MoCoLSK to the best classic method, and per-scene RMSE."""
    titles = titles or {}
    rmse = metrics.METRIC_BY_KEY["rmse_k"]
    lines = []
    for protocol, summary in report.items():
        methods = list(summary["methods"])
        lines += [
            f"**{protocol}** ({summary['pixels']} px in {summary['blocks']} blocks of "
            f"{len(summary['scenes'])} "
            f"scene(s); best classic: {summary.get('best_classic', 'not scored')})",
            "",
            f"| method | {rmse.heading()} | 95 % interval | " + " | ".join(summary["per_scene"]) + " |",
            "|---|---:|---:|" + "---:|" * len(summary["per_scene"]),
        ]
        for m in methods:
            low, high = summary["methods"][m]["ci95_k"]
            per_scene = " | ".join(f"{s['methods'][m]['rmse_k']:.3f}" for s in summary["per_scene"].values())
            lines.append(
                f"| {titles.get(m, m)} | {summary['methods'][m]['rmse_k']:.3f} | {low:.3f}-{high:.3f} | "
                f"{per_scene} |"
            )
        if "difference_to_best_classic_k" in summary:
            d = summary["difference_to_best_classic_k"]
            lines += [
                "",
                f"MoCoLSK - {summary['best_classic']}: {d['value']:+.3f} K (95 % interval "
                f"{d['ci95_k'][0]:+.3f} to "
                f"{d['ci95_k'][1]:+.3f} K); ratio {summary['ratio_to_best_classic']:.3f}, to bicubic "
                f"{summary['ratio_to_bicubic']:.3f}",
            ]
        lines.append("")
    return "\n".join(lines)

"""The evaluation protocol: what the truth is, which pixels are scored, and how sure we are.

Two protocols, both on whole scenes never seen in training:

- ``ingrid`` (GrokLST-style): the truth is the thermal band as delivered on the 30 m grid
  and the coarse input its area mean by the scale. Landsat senses thermal at 60-120 m and
  resamples it to 30 m, so this truth is smooth below the native pixel.
- ``native`` (Wald): the truth is the thermal band aggregated to its sensor's native pixel
  (``native_factor``: 4 for TM's 120 m, 3 for TIRS's 100 m, 2 for ETM+'s 60 m on a 30 m
  grid), the guidance aggregated alike, and the coarse input that truth aggregated by the
  scale. Only here can guidance show that it adds information the thermal sensor resolved.

Every method the plugin offers runs through the plugin's own pipeline
(``training.pipeline_runs``: the same tiles, fill, detail bound and conservation as
``python -m engine downscale``); peers the plugin does not ship (pyDMS, zoo networks, a network
being trained) get the engine's conservation on the same coarse input. Errors are
summed per block of ``EVAL_BLOCK_COARSE_PX`` coarse pixels; 95 % intervals come from a
bootstrap that resamples scenes, then blocks within each scene.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from engine.classic import Sharpener
from engine.core import ArrayMethod, predict_window

from .datasets import Sample, sample_from_fine
from .pipeline_runs import PipelineMethod, run_pipeline
from .scenes import Scene, area_average

PROTOCOLS = ("ingrid", "native")
# Also scored, never trained on: the in-grid run with output and truth averaged to the native pixel.
INGRID_AT_NATIVE = "ingrid_native"
SCORED_VIEWS = ("native", INGRID_AT_NATIVE, "ingrid")
EVAL_BLOCK_COARSE_PX = 4
BOOTSTRAP_REPLICATES = 2000
CONFIDENCE = 0.95

Predictor = Callable[[Sample], np.ndarray]
# A method of the plugin (run through its pipeline) or a peer's array predictor.
Method = PipelineMethod | Predictor


def native_factor(scene: Scene) -> int:
    """How many grid pixels make one native thermal pixel (at least 1)."""
    if not scene.native_pixel_m or not scene.pixel_size_m:
        raise ValueError(
            f"scene {scene.name}: its native thermal pixel and grid pixel must be known for the native "
            "protocol"
        )
    return max(1, int(round(scene.native_pixel_m / scene.pixel_size_m)))


def protocol_view(scene: Scene, protocol: str) -> Scene:
    """The scene as the protocol's truth grid: unchanged for ``ingrid``; for ``native`` the LST
    and guidance area-averaged to the native thermal pixel (a cell with any invalid pixel is
    invalid)."""
    if protocol in ("ingrid", INGRID_AT_NATIVE):
        return scene
    if protocol != "native":
        raise ValueError(f"protocol must be one of {SCORED_VIEWS}, got {protocol!r}")
    factor = native_factor(scene)
    if factor == 1:
        return replace(scene, name=f"{scene.name}@native")
    return replace(
        scene,
        name=f"{scene.name}@native",
        lst_kelvin=area_average(scene.lst_kelvin, factor),
        guidance=area_average(scene.guidance, factor),
        pixel_size_m=scene.pixel_size_m * factor,
        notes=f"{scene.notes}; aggregated x{factor} to the native thermal pixel",
    )


def truth_description(scene: Scene, protocol: str) -> str:
    """What the reference of ``scene`` is under ``protocol``, for tables and cards."""
    view = protocol_view(scene, protocol)
    quantum = f"{scene.quantisation_k:.3f} K per DN" if scene.quantisation_k else "unknown quantisation"
    if protocol == INGRID_AT_NATIVE:
        native = scene.pixel_size_m * native_factor(scene)
        return (
            f"{scene.sensor or 'thermal'} band as delivered, run on the {scene.pixel_size_m:g} m grid, output "
            f"and truth averaged to {native:g} m (sensed at {scene.native_pixel_m:g} m, {quantum})"
        )
    return (
        f"{scene.sensor or 'thermal'} band at {view.pixel_size_m:g} m "
        f"({'as delivered' if protocol == 'ingrid' else 'native-pixel mean'}; "
        f"sensed at {scene.native_pixel_m:g} m, {quantum})"
    )


class GivenPrediction(Sharpener):
    """A peer's whole-view prediction handed to the core as its window's prediction."""

    name = "peer"

    def __init__(self, scale: int, prediction: np.ndarray):
        super().__init__(scale)
        self.prediction = prediction

    def predict(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        return self.prediction


def conserved(prediction: np.ndarray, sample: Sample, scale: int, bound_detail: bool = False) -> np.ndarray:
    """A peer's prediction finished as the plugin finishes its own methods' (``engine.core``): masked
    coarse cells filled from their neighbours, with ``bound_detail`` clipped to the local coarse range
    as networks are, and conserved to the coarse input; NaN off the valid guidance and coarse cells."""
    method = ArrayMethod(GivenPrediction(scale, prediction.astype(np.float32)), bounded=bound_detail)
    coarse_valid = np.isfinite(sample.coarse_kelvin)
    guidance_valid = np.isfinite(sample.guidance).all(axis=0)
    guidance = np.where(np.isfinite(sample.guidance), sample.guidance, 0.0).astype(np.float32)
    return predict_window(method, sample.coarse_kelvin, coarse_valid, guidance, guidance_valid).fine_kelvin


@dataclass
class SceneErrors:
    """Per-block squared-error sums and pixel counts of each method on one scene view."""

    scene: str
    protocol: str
    truth: str
    scale: int
    sse: dict[str, np.ndarray]
    count: np.ndarray

    @property
    def blocks(self) -> int:
        return int(self.count.size)

    def rmse(self, method: str) -> float:
        return float(np.sqrt(self.sse[method].sum() / max(self.count.sum(), 1)))


def block_errors(
    prediction: np.ndarray, sample: Sample, scale: int, block_coarse_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """Squared-error sums and scored-pixel counts per block (blocks with no scored pixel dropped
    later); the blocks tile the scene in ``block_coarse_px`` coarse cells."""
    return block_sums(prediction, sample.fine_kelvin, sample.mask, block_coarse_px * scale)


def averaged_errors(
    prediction: np.ndarray, sample: Sample, scale: int, block_coarse_px: int, factor: int
) -> tuple[np.ndarray, np.ndarray]:
    """``block_errors`` after averaging prediction and truth by ``factor`` (a cell with any
    unscored pixel is not scored): the in-grid run judged at the sensor's native pixel."""
    truth = area_average(np.where(sample.mask, sample.fine_kelvin, np.nan), factor)
    averaged = area_average(prediction, factor)
    mask = np.isfinite(truth) & np.isfinite(averaged)
    return block_sums(averaged, truth, mask, max(1, round(block_coarse_px * scale / factor)))


def block_sums(
    prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Squared-error sums and counts of the ``mask``ed pixels in blocks of ``side`` pixels."""
    error = np.where(mask, (prediction.astype(np.float64) - np.nan_to_num(truth)) ** 2, 0.0)
    rows, cols = error.shape
    n_rows, n_cols = -(-rows // side), -(-cols // side)
    pad = ((0, n_rows * side - rows), (0, n_cols * side - cols))
    sse = np.pad(error, pad).reshape(n_rows, side, n_cols, side).sum(axis=(1, 3)).ravel()
    count = np.pad(mask, pad).reshape(n_rows, side, n_cols, side).sum(axis=(1, 3)).ravel()
    return sse, count


def view_prediction(
    method: Method, sample: Sample, view: Scene, scale: int, bounded: bool = False, delivered: bool = False
) -> np.ndarray:
    """``method``'s conserved fine LST for a protocol sample of ``view``: the pipeline's output
    for a plugin method (given the band as delivered on the guidance grid when ``delivered``, as
    the in-grid views do), the engine's conservation of a peer's prediction otherwise."""
    if isinstance(method, PipelineMethod):
        prediction = run_pipeline(
            method, sample, view.band_names, view.pixel_size_m or 30.0, delivered
        ).fine_kelvin
        missing = sample.mask & ~np.isfinite(prediction)
        if missing.any():
            raise ValueError(
                f"scene {view.name}: {method.method} left {int(missing.sum())} scored pixels without a value"
            )
        return prediction
    return conserved(method(sample), sample, scale, bounded)


def evaluate_scene(
    scene: Scene,
    protocol: str,
    scale: int,
    predictors: dict[str, Method],
    bounded: frozenset[str] = frozenset(),
    block_coarse_px: int = EVAL_BLOCK_COARSE_PX,
) -> SceneErrors:
    """Every method on the whole scene view, scored per block: plugin methods through the
    pipeline, peers conserved (``bounded`` ones detail-bounded first, as the plugin treats
    networks)."""
    view = protocol_view(scene, protocol)
    sample = sample_from_fine(view.name, view.lst_kelvin, view.guidance, scale)
    sse, count = {}, None
    for name, method in predictors.items():
        prediction = view_prediction(method, sample, view, scale, name in bounded, protocol != "native")
        if protocol == INGRID_AT_NATIVE:
            factor = native_factor(scene)
            sse[name], count = averaged_errors(prediction, sample, scale, block_coarse_px, factor)
        else:
            sse[name], count = block_errors(prediction, sample, scale, block_coarse_px)
    keep = count > 0
    if not keep.any():
        raise ValueError(f"scene {view.name}: no valid pixel to score at x{scale}")
    return SceneErrors(
        scene.name,
        protocol,
        truth_description(scene, protocol),
        scale,
        {m: v[keep] for m, v in sse.items()},
        count[keep],
    )


def _resampled_totals(
    scenes: list[SceneErrors], methods: list[str], replicates: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Bootstrap totals of squared error and count: scenes drawn with replacement, then as
    many blocks as the drawn copies hold, drawn with replacement within each scene."""
    sse = {m: np.zeros(replicates) for m in methods}
    count = np.zeros(replicates)
    copies = rng.multinomial(len(scenes), np.full(len(scenes), 1.0 / len(scenes)), size=replicates)
    for index, scene in enumerate(scenes):
        uniform = np.full(scene.blocks, 1.0 / scene.blocks)
        draws = np.stack([rng.multinomial(c * scene.blocks, uniform) for c in copies[:, index]])
        count += draws @ scene.count
        for m in methods:
            sse[m] += draws @ scene.sse[m]
    return sse, count


def interval(values: np.ndarray) -> tuple[float, float]:
    tail = (1.0 - CONFIDENCE) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def summarise(
    scenes: list[SceneErrors],
    methods: list[str],
    classic: list[str],
    reference: str = "mocolsk",
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> dict:
    """Pooled RMSE with 95 % intervals for each method, the best classic method, the
    difference ``reference - best classic`` and the ratio, with intervals; per scene too."""
    rng = np.random.default_rng(seed)
    total_count = sum(s.count.sum() for s in scenes)
    point = {m: float(np.sqrt(sum(s.sse[m].sum() for s in scenes) / total_count)) for m in methods}
    sse, count = _resampled_totals(scenes, methods, replicates, rng)
    boot = {m: np.sqrt(sse[m] / np.maximum(count, 1)) for m in methods}
    result = {
        "methods": {m: {"rmse_k": point[m], "ci95_k": interval(boot[m])} for m in methods},
        "pixels": int(total_count),
        "blocks": int(sum(s.blocks for s in scenes)),
        "scenes": [s.scene for s in scenes],
    }
    if classic:
        best = min(classic, key=point.__getitem__)
        result["best_classic"] = best
    if reference in point and classic:
        difference = boot[reference] - boot[best]
        result["difference_to_best_classic_k"] = {
            "value": point[reference] - point[best],
            "ci95_k": interval(difference),
        }
        result["ratio_to_best_classic"] = point[reference] / point[best] if point[best] > 0 else None
        result["ratio_to_bicubic"] = (
            point[reference] / point["bicubic"] if point.get("bicubic", 0.0) > 0 else None
        )
    result["per_scene"] = {}
    for scene in scenes:
        sse_s, count_s = _resampled_totals([scene], methods, replicates, rng)
        result["per_scene"][scene.scene] = {
            "truth": scene.truth,
            "pixels": int(scene.count.sum()),
            "blocks": scene.blocks,
            "methods": {
                m: {"rmse_k": scene.rmse(m), "ci95_k": interval(np.sqrt(sse_s[m] / np.maximum(count_s, 1)))}
                for m in methods
            },
        }
    return result

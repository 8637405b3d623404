"""Classic LST sharpeners beside MoCoLSK: bicubic, TsHARP and a DMS-style regression-tree sharpener.

Each works tile by tile on numpy arrays like the network does, so they share the
pipeline's grids, masks, tiling, coarse-pixel conservation and output. Methods that fit a
scene-wide relation (TsHARP, DMS) first see coarse samples of every tile (`add_samples`),
then predict tile by tile.

- Bicubic: cubic-convolution interpolation of the coarse LST; uses no guidance.
- TsHARP (Agam et al. 2007): LST is linear in the fractional vegetation cover
  fc = 1 - ((NDVImax - NDVI) / (NDVImax - NDVImin))^0.625, fitted on coarse pixels and
  applied to fine NDVI.
- DMS (after Gao et al. 2012): bagged regression trees from the guidance bands to LST, one
  fitted on the whole scene and one per tile window, combined by the inverse of their
  out-of-bag errors; the pipeline's residual correction then restores the coarse means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .masks import block_mean, block_sum
from .resample import upsample_bicubic
from .trees import BaggedTrees

CLASSIC_METHODS = ("bicubic", "tsharp", "dms")
# A coarse pixel trains a regression only if this share of its fine pixels is valid.
MIN_VALID_FRACTION_FOR_FIT = 0.9
TSHARP_EXPONENT = 0.625
MAX_FIT_SAMPLES = 50_000


@dataclass(frozen=True)
class CoarseSamples:
    """Coarse pixels usable for fitting: block-mean guidance, their heterogeneity and LST."""

    features: np.ndarray  # (n, C)
    heterogeneity: np.ndarray  # (n,) mean coefficient of variation of the guidance in the block
    lst_kelvin: np.ndarray  # (n,)

    @staticmethod
    def concatenate(parts: list[CoarseSamples], channels: int) -> CoarseSamples:
        if not parts:
            return CoarseSamples(np.zeros((0, channels)), np.zeros(0), np.zeros(0))
        return CoarseSamples(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("features", "heterogeneity", "lst_kelvin")
            )
        )


def coarse_samples(
    lst_coarse: np.ndarray,
    coarse_valid: np.ndarray,
    guidance: np.ndarray,
    guidance_valid: np.ndarray,
    scale: int,
) -> CoarseSamples:
    """Aggregate guidance (C, H, W) onto the coarse grid where LST and most fine pixels are valid."""
    means, counts = zip(*(block_mean(band, guidance_valid, scale) for band in guidance))
    count = counts[0]
    mean = np.stack(means)
    square = np.stack(
        [block_sum(np.where(guidance_valid, band.astype(np.float64) ** 2, 0.0), scale) for band in guidance]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.maximum(square / np.maximum(count, 1) - mean**2, 0.0))
        cv = np.where(count > 0, std / np.maximum(np.abs(mean), 1e-6), 0.0).mean(axis=0)
    usable = coarse_valid & (count >= MIN_VALID_FRACTION_FOR_FIT * scale * scale)
    return CoarseSamples(mean[:, usable].T, cv[usable], lst_coarse[usable].astype(np.float64))


def bicubic(lst_coarse: np.ndarray, scale: int) -> np.ndarray:
    return upsample_bicubic(lst_coarse, scale).astype(np.float32)


def fractional_cover(ndvi: np.ndarray, ndvi_min: float, ndvi_max: float) -> np.ndarray:
    """Fractional vegetation cover of TsHARP, clipped to [0, 1]."""
    scaled = np.clip((ndvi_max - ndvi) / max(ndvi_max - ndvi_min, 1e-6), 0.0, 1.0)
    return 1.0 - scaled**TSHARP_EXPONENT


@dataclass(frozen=True)
class TsharpFit:
    intercept_kelvin: float
    slope_kelvin: float
    ndvi_min: float
    ndvi_max: float
    samples: int

    def predict(self, ndvi: np.ndarray) -> np.ndarray:
        cover = fractional_cover(ndvi, self.ndvi_min, self.ndvi_max)
        return (self.intercept_kelvin + self.slope_kelvin * cover).astype(np.float32)


def fit_tsharp(ndvi_coarse: np.ndarray, lst_coarse_kelvin: np.ndarray) -> TsharpFit:
    """Least-squares LST = a + b * fc over coarse pixels, NDVI bounds from their 2nd/98th percentiles."""
    ndvi_min, ndvi_max = (float(v) for v in np.percentile(ndvi_coarse, [2, 98]))
    cover = fractional_cover(ndvi_coarse, ndvi_min, ndvi_max)
    design = np.stack([np.ones_like(cover), cover], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, lst_coarse_kelvin, rcond=None)
    return TsharpFit(float(intercept), float(slope), ndvi_min, ndvi_max, int(len(cover)))


class Sharpener:
    """A tile-wise method: optional scene-wide fit from coarse samples, then per-tile prediction."""

    name = ""
    needs_fit = False

    def __init__(self, scale: int):
        self.scale = scale

    def add_samples(self, samples: CoarseSamples) -> None:
        raise NotImplementedError

    def finish_fit(self) -> str:
        """Fit the scene-wide model; returns a line for the log."""
        raise NotImplementedError

    def predict(
        self,
        lst_coarse: np.ndarray,
        coarse_valid: np.ndarray,
        guidance: np.ndarray,
        guidance_valid: np.ndarray,
    ) -> np.ndarray:
        raise NotImplementedError


class Bicubic(Sharpener):
    name = "bicubic"

    def predict(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        return bicubic(lst_coarse, self.scale)


class _Sampled(Sharpener):
    needs_fit = True

    def __init__(self, scale: int, channels: int, max_samples: int = MAX_FIT_SAMPLES, seed: int = 0):
        super().__init__(scale)
        self.channels = channels
        self.max_samples = max_samples
        self.rng = np.random.default_rng(seed)
        self.parts: list[CoarseSamples] = []
        self.keys = np.empty(0)

    def add_samples(self, samples: CoarseSamples) -> None:
        """Keep a uniform random subset of every sample seen so far, whatever the tile order:
        each sample draws a random key and the ``max_samples`` smallest keys are kept."""
        self.parts.append(samples)
        self.keys = np.concatenate([self.keys, self.rng.random(len(samples.lst_kelvin))])
        kept = CoarseSamples.concatenate(self.parts, self.channels)
        if len(kept.lst_kelvin) > self.max_samples:
            choice = np.sort(np.argpartition(self.keys, self.max_samples)[: self.max_samples])
            kept = CoarseSamples(kept.features[choice], kept.heterogeneity[choice], kept.lst_kelvin[choice])
            self.keys = self.keys[choice]
        self.parts = [kept]

    def samples(self) -> CoarseSamples:
        samples = CoarseSamples.concatenate(self.parts, self.channels)
        if len(samples.lst_kelvin) < 10:
            raise InputError(
                f"{self.name}: only {len(samples.lst_kelvin)} coarse pixels have valid LST and guidance; "
                f"at least 10 are needed to fit the regression. Check the masks and nodata values."
            )
        return samples


class Tsharp(_Sampled):
    """Guidance has one channel: NDVI."""

    name = "tsharp"

    def __init__(self, scale: int, **kwargs):
        super().__init__(scale, channels=1, **kwargs)
        self.fit: TsharpFit | None = None

    def finish_fit(self) -> str:
        samples = self.samples()
        self.fit = fit_tsharp(samples.features[:, 0], samples.lst_kelvin)
        return (
            f"TsHARP fit on {self.fit.samples} coarse pixels: LST = {self.fit.intercept_kelvin:.2f} K "
            f"{self.fit.slope_kelvin:+.2f} K * fc (NDVI {self.fit.ndvi_min:.3f}..{self.fit.ndvi_max:.3f})"
        )

    def predict(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        return self.fit.predict(guidance[0])


@dataclass
class DmsSettings:
    trees: int = 5
    max_depth: int = 8
    min_samples_leaf: int = 5
    homogeneous_share: float = 0.8
    min_local_samples: int = 100


class Dms(_Sampled):
    """Guidance has any number of channels; all of them are predictors."""

    name = "dms"

    def __init__(self, scale: int, channels: int, settings: DmsSettings | None = None, **kwargs):
        super().__init__(scale, channels=channels, **kwargs)
        self.settings = settings or DmsSettings()
        self.global_model: BaggedTrees | None = None

    def _fit(self, samples: CoarseSamples, seed: int) -> BaggedTrees:
        keep = samples.heterogeneity <= np.quantile(samples.heterogeneity, self.settings.homogeneous_share)
        s = self.settings
        return BaggedTrees(s.trees, s.max_depth, s.min_samples_leaf, seed).fit(
            samples.features[keep], samples.lst_kelvin[keep]
        )

    def finish_fit(self) -> str:
        samples = self.samples()
        self.global_model = self._fit(samples, seed=0)
        return (
            f"DMS global model: {self.settings.trees} regression trees on {len(samples.lst_kelvin)} coarse "
            f"pixels, out-of-bag RMSE {np.sqrt(self.global_model.oob_mse):.2f} K"
        )

    def predict(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        members, weights = self.predict_members(lst_coarse, coarse_valid, guidance, guidance_valid)
        return np.tensordot(weights / weights.sum(), members, axes=1).astype(np.float32)

    def predict_members(
        self, lst_coarse, coarse_valid, guidance, guidance_valid
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every tree's prediction (M, H, W) and its weight (M,) in ``predict``'s weighted mean: the
        global trees and, where the tile has enough coarse samples, the local ones, each model
        weighted by the inverse of its out-of-bag error."""
        channels, height, width = guidance.shape
        pixels = guidance.reshape(channels, -1).T
        members = [self.global_model.predict_each(pixels)]
        weights = [np.full(len(members[0]), 1.0 / max(self.global_model.oob_mse, 1e-6) / len(members[0]))]
        local = coarse_samples(lst_coarse, coarse_valid, guidance, guidance_valid, self.scale)
        if len(local.lst_kelvin) >= self.settings.min_local_samples:
            local_model = self._fit(local, seed=1)
            members.append(local_model.predict_each(pixels))
            weights.append(np.full(len(members[-1]), 1.0 / max(local_model.oob_mse, 1e-6) / len(members[-1])))
        return np.concatenate(members).reshape(-1, height, width), np.concatenate(weights)


def create_sharpener(method: str, scale: int, channels: int) -> Sharpener:
    if method == "bicubic":
        return Bicubic(scale)
    if method == "tsharp":
        return Tsharp(scale)
    if method == "dms":
        return Dms(scale, channels)
    raise ValueError(f"not a classic method: {method!r}")

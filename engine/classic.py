"""Classic LST sharpeners beside MoCoLSK: bicubic, TsHARP and a DMS-style regression-tree sharpener.

Each works tile by tile on numpy arrays like the network does, so they share the
pipeline's grids, masks, tiling, coarse-pixel conservation and output. Methods that fit a
scene-wide relation (TsHARP, DMS) first see coarse samples of every tile (`add_samples`),
then predict tile by tile.

- Bicubic: cubic-convolution interpolation of the coarse LST; uses no guidance.
- TsHARP (Agam et al. 2007): LST is linear in the fractional vegetation cover
  fc = 1 - ((NDVImax - NDVI) / (NDVImax - NDVImin))^0.625, fitted on coarse pixels and
  applied to fine NDVI.
- DMS (after Gao et al. 2012 and its public implementation pyDMS): bagged regression trees
  with linear leaves from the guidance bands to LST, fitted on coarse pixels weighted by the
  homogeneity of their guidance; one ensemble for the whole scene and one per moving window of
  a few coarse pixels, combined per coarse pixel by the inverse of their squared residuals; the
  pipeline's conservation then adds the coarse residual back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conservation import coarse_residual
from .errors import InputError
from .masks import block_mean, block_sum, expand
from .resample import upsample_bicubic, upsample_bilinear
from .trees import Forest, ForestSettings, fit_forest

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


def coarse_guidance(
    lst_coarse: np.ndarray,
    coarse_valid: np.ndarray,
    guidance: np.ndarray,
    guidance_valid: np.ndarray,
    scale: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Guidance (C, H, W) on the coarse grid: its block means (C, h, w), their heterogeneity (h, w)
    (the mean over bands of the coefficient of variation within the block) and where a coarse
    pixel can train a regression (valid LST, most fine pixels valid)."""
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
    return mean, cv, usable


def coarse_samples(
    lst_coarse: np.ndarray,
    coarse_valid: np.ndarray,
    guidance: np.ndarray,
    guidance_valid: np.ndarray,
    scale: int,
) -> CoarseSamples:
    """Aggregate guidance (C, H, W) onto the coarse grid where LST and most fine pixels are valid."""
    mean, cv, usable = coarse_guidance(lst_coarse, coarse_valid, guidance, guidance_valid, scale)
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


@dataclass(frozen=True)
class DmsSettings:
    """The data-mining sharpener's models (after Gao et al. 2012 and pyDMS's defaults); the sizes
    of windows, leaves, bins and the ridge were chosen on the native-resolution views of the
    training scenes, never on the test scenes."""

    trees: int = 10
    global_leaves: int = 30
    local_leaves: int = 5
    local_bins: int = 16
    min_samples_leaf: int = 10
    bins: int = 32
    ridge: float = 10.0
    # Local models: windows of about this many coarse pixels a side, each fitted on the coarse
    # pixels of the window grown by this share of its side on every side, and further (up to
    # ``max_margin_windows`` window sides) until it holds ``window_samples`` usable ones, so that
    # windows under clouds or at an edge still get a model; fewer than ``min_window_samples``: none.
    window_coarse_px: int = 6
    window_margin: float = 0.25
    window_samples: int = 60
    max_margin_windows: float = 2.0
    min_window_samples: int = 30
    # The bagged trees agree more than their errors warrant: members are spread about their mean
    # by this factor (the mean, the output, is unchanged), fitted so that 68 % of errors fall within
    # one sigma on the validation blocks of the training scenes (python -m training.uncertainty:
    # 2.38 at x2, 3.06 at x4).
    spread_scale: float = 2.7
    seed: int = 0


class Dms(_Sampled):
    """Guidance has any number of channels; all of them are predictors.

    A global ensemble fitted on coarse pixels of the whole scene and a local ensemble per
    moving window of each tile, combined per coarse pixel by the inverse of each one's squared
    residual there (Gao et al. 2012, 2.3). Coarse pixels whose guidance is homogeneous weigh
    more in every fit (2.2); the pipeline's conservation then adds the coarse residual back (2.4).
    """

    name = "dms"

    def __init__(self, scale: int, channels: int, settings: DmsSettings | None = None, **kwargs):
        self.settings = settings or DmsSettings()
        super().__init__(scale, channels=channels, seed=self.settings.seed, **kwargs)
        self.global_model: Forest | None = None

    def _forest(self, leaves: int, bins: int) -> ForestSettings:
        s = self.settings
        return ForestSettings(s.trees, leaves, s.min_samples_leaf, bins, s.ridge)

    def finish_fit(self) -> str:
        samples = self.samples()
        weight = homogeneity_weights(samples.heterogeneity)
        self.global_model = fit_forest(
            samples.features,
            samples.lst_kelvin,
            weight,
            np.zeros(len(weight), np.int64),
            1,
            self._forest(self.settings.global_leaves, self.settings.bins),
            np.random.default_rng(self.settings.seed),
        )
        fitted = self.global_model.predict_trees(samples.features.T.astype(np.float32)).mean(axis=0)
        return (
            f"DMS global model: {self.settings.trees} bagged regression trees with linear leaves "
            f"({self.global_model.leaves} leaves) on {len(samples.lst_kelvin)} coarse pixels, "
            f"coarse fit RMSE {np.sqrt(np.mean((fitted - samples.lst_kelvin) ** 2)):.2f} K"
        )

    def predict(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        members, weights = self.predict_members(lst_coarse, coarse_valid, guidance, guidance_valid)
        # The weighted mean exactly as the pipeline forms it from the members, so that asking for
        # the uncertainty leaves the LST bit for bit unchanged.
        return np.tensordot(weights / weights.sum(), members, axes=1).astype(np.float32)

    def predict_members(
        self, lst_coarse, coarse_valid, guidance, guidance_valid
    ) -> tuple[np.ndarray, np.ndarray]:
        """One member per bagged tree (M, H, W), equally weighted: tree t of the global ensemble
        blended with tree t of the local one by the per-pixel weights of the combination, spread
        about their mean by ``spread_scale``; their mean is ``predict``'s output and their spread
        the uncertainty."""
        channels, height, width = guidance.shape
        pixels = guidance.reshape(channels, -1)
        members = self.global_model.predict_trees(pixels).reshape(-1, height, width)
        local = self._local_members(lst_coarse, coarse_valid, guidance, guidance_valid)
        if local is not None:
            local_members, has_local = local
            weight = local_weight(
                members.mean(axis=0),
                local_members.mean(axis=0),
                has_local,
                lst_coarse,
                coarse_valid,
                guidance_valid,
                self.scale,
            )
            members += weight * (local_members - members)
        mean = members.mean(axis=0)
        members = mean + self.settings.spread_scale * (members - mean)
        return members, np.ones(len(members))

    def _local_members(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        """The local ensembles' members (M, H, W) and where a window had a model (h, w), or None
        when no window has enough coarse pixels."""
        s, scale = self.settings, self.scale
        mean, heterogeneity, usable = coarse_guidance(
            lst_coarse, coarse_valid, guidance, guidance_valid, scale
        )
        rows, cols = usable.shape
        row_edges, col_edges = window_edges(rows, s.window_coarse_px), window_edges(cols, s.window_coarse_px)
        margin = int(np.ceil(s.window_margin * s.window_coarse_px))
        flat_heterogeneity = heterogeneity.ravel()
        index, group, weight = [], [], []
        window_of = np.full((rows, cols), -1)
        for r0, r1 in zip(row_edges[:-1], row_edges[1:]):
            for c0, c1 in zip(col_edges[:-1], col_edges[1:]):
                grow = margin
                while True:
                    top, left = max(r0 - grow, 0), max(c0 - grow, 0)
                    found_rows, found_cols = np.nonzero(usable[top : r1 + grow, left : c1 + grow])
                    if (
                        len(found_rows) >= s.window_samples
                        or grow >= s.max_margin_windows * s.window_coarse_px
                    ):
                        break
                    grow += 1
                if len(found_rows) < s.min_window_samples:
                    continue
                found = (found_rows + top) * cols + found_cols + left
                window_of[r0:r1, c0:c1] = len(index)
                group.append(np.full(len(found), len(index)))
                weight.append(homogeneity_weights(flat_heterogeneity[found]))
                index.append(found)
        if not index:
            return None
        fitted = len(index)
        index, group, weight = np.concatenate(index), np.concatenate(group), np.concatenate(weight)
        features = mean.reshape(len(mean), -1).T
        model = fit_forest(
            features[index],
            lst_coarse.ravel()[index].astype(np.float64),
            weight,
            group,
            fitted,
            self._forest(s.local_leaves, s.local_bins),
            np.random.default_rng(s.seed + 1),
        )
        fine_window = expand(window_of, scale)
        has_local = window_of >= 0
        pixels = guidance.reshape(len(guidance), -1)
        members = model.predict_trees(pixels, np.maximum(fine_window, 0).ravel())
        return members.reshape(-1, *guidance.shape[1:]), has_local


def window_edges(size: int, window: int) -> np.ndarray:
    """Edges of about ``size / window`` equal windows along an axis of ``size`` coarse pixels."""
    count = max(1, int(round(size / window)))
    return np.round(np.linspace(0, size, count + 1)).astype(int)


def homogeneity_weights(heterogeneity: np.ndarray) -> np.ndarray:
    """Fit weights of coarse pixels in (0, 1], falling with the heterogeneity of their guidance:
    a pixel as heterogeneous as the median counts half as much as a uniform one."""
    if len(heterogeneity) == 0:
        return np.zeros(0)
    return 1.0 / (1.0 + heterogeneity / max(float(np.median(heterogeneity)), 1e-9))


def box_mean_3x3(values: np.ndarray) -> np.ndarray:
    """Mean over each pixel's 3 x 3 neighbourhood, edges replicated."""
    padded = np.pad(values, 1, mode="edge")
    rows, cols = values.shape
    return sum(padded[i : i + rows, j : j + cols] for i in range(3) for j in range(3)) / 9.0


def local_weight(
    global_fine: np.ndarray,
    local_fine: np.ndarray,
    has_local: np.ndarray,
    lst_coarse: np.ndarray,
    coarse_valid: np.ndarray,
    guidance_valid: np.ndarray,
    scale: int,
) -> np.ndarray:
    """Per fine pixel, the local model's share (1/r_l^2) / (1/r_l^2 + 1/r_g^2), where r^2 is each
    model's squared coarse residual averaged over 3 x 3 coarse pixels (a single pixel's residual is
    noisy), interpolated bilinearly; 0 where a window had no local model."""
    global_residual = coarse_residual(global_fine, guidance_valid, lst_coarse, coarse_valid, scale)
    local_residual = coarse_residual(local_fine, guidance_valid, lst_coarse, coarse_valid, scale)
    g2, l2 = box_mean_3x3(global_residual**2), box_mean_3x3(local_residual**2)
    share = np.where(g2 + l2 > 0, g2 / np.maximum(g2 + l2, 1e-12), 0.5)
    share = np.where(has_local, share, 0.0)
    return upsample_bilinear(share, scale, np.float32)


def create_sharpener(method: str, scale: int, channels: int) -> Sharpener:
    if method == "bicubic":
        return Bicubic(scale)
    if method == "tsharp":
        return Tsharp(scale)
    if method == "dms":
        return Dms(scale, channels)
    raise ValueError(f"not a classic method: {method!r}")

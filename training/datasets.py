"""From scenes or GrokLST patches to normalised training batches and held-out samples.

A batch is a dict of tensors: ``lst`` (B, 1, h, w) normalised coarse LST, ``guidance``
(B, C, h*s, w*s) normalised guidance, ``target`` (B, 1, h*s, w*s) normalised fine LST and
``mask`` (B, 1, h*s, w*s) where the target is valid; the loss honours the mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.card import BandSpec
from engine.inference import from_zscore, lst_centre_kelvin, per_channel, zscore

from .scenes import BandInfo, Scene, area_average
from .splits import Block, training_area

MIN_VALID_FRACTION = 0.5


@dataclass(frozen=True)
class Normalizer:
    """z-score statistics of the LST (Kelvin) and of each guidance band.

    ``anchor`` says where the LST is centred (``engine.card.LST_ANCHORS``): on the fixed
    ``lst_mean_kelvin`` ("global") or on each input's own coarse mean ("coarse_mean"), as
    ``engine.inference`` does at run time."""

    lst_mean_kelvin: float
    lst_std_kelvin: float
    guidance_mean: tuple[float, ...]
    guidance_std: tuple[float, ...]
    anchor: str = "global"

    @classmethod
    def from_scenes(cls, scenes: list[Scene], masks: list[np.ndarray], anchor: str = "global") -> Normalizer:
        """Statistics over the valid pixels of the training area only; with the coarse-mean
        anchor the LST spread is that around each scene's own mean."""
        parts = [s.lst_kelvin[m & s.valid].astype(np.float64) for s, m in zip(scenes, masks)]
        lst = np.concatenate(parts)
        guidance = np.concatenate([s.guidance[:, m & s.valid] for s, m in zip(scenes, masks)], axis=1).astype(
            np.float64
        )
        if lst.size < 2:
            raise ValueError("the training area has no valid pixels to compute normalisation statistics from")
        spread = (
            np.concatenate([p - p.mean() for p in parts if p.size])
            if anchor == "coarse_mean"
            else lst - lst.mean()
        )
        floor = 1e-6
        return cls(
            float(lst.mean()),
            float(max(spread.std(), floor)),
            tuple(float(v) for v in guidance.mean(axis=1)),
            tuple(float(max(v, floor)) for v in guidance.std(axis=1)),
            anchor,
        )

    @classmethod
    def from_card(cls, card) -> Normalizer:
        """The statistics a model package was trained with (``engine.card.ModelCard``)."""
        return cls(
            card.lst_mean_kelvin,
            card.lst_std_kelvin,
            tuple(b.mean for b in card.guidance_bands),
            tuple(b.std for b in card.guidance_bands),
            card.lst_anchor,
        )

    def lst_centre(self, coarse_kelvin: np.ndarray) -> float:
        """The value the LST of a sample with this coarse input is centred on: the engine's rule
        (``engine.inference.lst_centre_kelvin``) over its valid coarse pixels."""
        finite = coarse_kelvin[np.isfinite(coarse_kelvin)]
        if not finite.size:
            return self.lst_mean_kelvin
        return float(lst_centre_kelvin(finite[None, None], self.anchor, self.lst_mean_kelvin)[0, 0, 0])

    def lst(self, kelvin: np.ndarray, centre: float | None = None) -> np.ndarray:
        return zscore(kelvin, self.lst_mean_kelvin if centre is None else centre, self.lst_std_kelvin)

    def lst_kelvin(self, normalised: np.ndarray, centre: float | None = None) -> np.ndarray:
        return from_zscore(
            normalised, self.lst_mean_kelvin if centre is None else centre, self.lst_std_kelvin
        )

    def guidance(self, values: np.ndarray) -> np.ndarray:
        return zscore(
            values, per_channel(self.guidance_mean, values.ndim), per_channel(self.guidance_std, values.ndim)
        )

    def to_dict(self) -> dict:
        return {
            "lst_mean_kelvin": self.lst_mean_kelvin,
            "lst_std_kelvin": self.lst_std_kelvin,
            "guidance_mean": list(self.guidance_mean),
            "guidance_std": list(self.guidance_std),
            "anchor": self.anchor,
        }

    @classmethod
    def from_dict(cls, values: dict) -> Normalizer:
        return cls(
            float(values["lst_mean_kelvin"]),
            float(values["lst_std_kelvin"]),
            tuple(values["guidance_mean"]),
            tuple(values["guidance_std"]),
            values.get("anchor", "global"),
        )


@dataclass(frozen=True)
class Sample:
    """One coarse/fine pair in physical units: coarse LST (h, w) K, guidance (C, H, W),
    fine LST (H, W) K; NaN marks invalid pixels."""

    name: str
    coarse_kelvin: np.ndarray
    guidance: np.ndarray
    fine_kelvin: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """Fine pixels that can be scored: valid target under a valid coarse cell."""
        scale = self.fine_kelvin.shape[0] // self.coarse_kelvin.shape[0]
        coarse_valid = np.repeat(np.repeat(np.isfinite(self.coarse_kelvin), scale, 0), scale, 1)
        return np.isfinite(self.fine_kelvin) & coarse_valid & np.isfinite(self.guidance).all(axis=0)


def filled(values: np.ndarray, fill: float) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.float32(fill)).astype(np.float32)


def sample_from_fine(name: str, lst_kelvin: np.ndarray, guidance: np.ndarray, scale: int) -> Sample:
    """A pair whose coarse LST is the fine LST area-averaged by ``scale``."""
    rows, cols = (lst_kelvin.shape[0] // scale) * scale, (lst_kelvin.shape[1] // scale) * scale
    fine = lst_kelvin[:rows, :cols]
    return Sample(name, area_average(fine, scale), guidance[:, :rows, :cols], fine)


def model_inputs(
    sample: Sample, normalizer: Normalizer
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalised (lst, guidance, target, mask) arrays with invalid inputs filled by the
    mean (0 after normalisation), so the network always sees finite numbers."""
    mask = sample.mask
    centre = normalizer.lst_centre(sample.coarse_kelvin)
    lst = filled(normalizer.lst(sample.coarse_kelvin, centre), 0.0)
    guidance = filled(normalizer.guidance(sample.guidance), 0.0)
    target = filled(normalizer.lst(sample.fine_kelvin, centre), 0.0)
    return lst[None], guidance, target[None], mask[None].astype(np.float32)


def augment(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random flip and 90-degree rotation applied to every array's last two axes."""
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, turns, axes=(-2, -1))
        out.append(np.ascontiguousarray(a[..., ::-1] if flip else a))
    return out


def stack_batch(items: list[tuple[np.ndarray, ...]]) -> dict[str, torch.Tensor]:
    keys = ("lst", "guidance", "target", "mask")
    return {k: torch.from_numpy(np.stack([item[i] for item in items])) for i, k in enumerate(keys)}


class ScenePatches:
    """Random fine patches, aligned to the coarse grid, drawn from the training area."""

    def __init__(
        self,
        scenes: list[Scene],
        blocks: list[Block],
        scale: int,
        patch_px: int,
        normalizer: Normalizer,
        augment: bool = True,
        guard_px: dict[str, int] | None = None,
    ):
        if patch_px % scale:
            raise ValueError(f"patch_px {patch_px} must be a multiple of the scale {scale}")
        self.scenes, self.scale, self.patch_px = scenes, scale, patch_px
        self.normalizer, self.augment = normalizer, augment
        self.positions: list[np.ndarray] = []
        for scene in scenes:
            usable = training_area(blocks, scene.name, scene.shape, (guard_px or {}).get(scene.name, 0))
            self.positions.append(self._patch_positions(usable, scene.valid))
        counts = np.array([len(p) for p in self.positions], float)
        if counts.sum() == 0:
            raise ValueError(
                f"no {patch_px} px training patch fits inside the training area of any scene; "
                f"use a smaller patch_px or larger blocks"
            )
        self.weights = counts / counts.sum()

    def _patch_positions(self, usable: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Top-left corners (multiples of the scale) of patches fully inside ``usable``
        and at least half valid, via summed-area tables."""
        p = self.patch_px
        rows, cols = usable.shape
        if rows < p or cols < p:
            return np.zeros((0, 2), int)

        def window_sums(mask: np.ndarray) -> np.ndarray:
            table = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
            return table[p:, p:] - table[:-p, p:] - table[p:, :-p] + table[:-p, :-p]

        fits = (window_sums(usable) == p * p) & (window_sums(usable & valid) >= MIN_VALID_FRACTION * p * p)
        r, c = np.nonzero(fits)
        aligned = (r % self.scale == 0) & (c % self.scale == 0)
        return np.stack([r[aligned], c[aligned]], axis=1)

    def batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        items = []
        p = self.patch_px
        for index in rng.choice(len(self.scenes), size=batch_size, p=self.weights):
            scene = self.scenes[index]
            r, c = self.positions[index][rng.integers(len(self.positions[index]))]
            lst = scene.lst_kelvin[r : r + p, c : c + p]
            guidance = scene.guidance[:, r : r + p, c : c + p]
            if self.augment:
                lst, guidance = augment([lst, guidance], rng)
            items.append(
                model_inputs(sample_from_fine(scene.name, lst, guidance, self.scale), self.normalizer)
            )
        return stack_batch(items)


def held_out_samples(scenes: list[Scene], blocks: list[Block], role: str, scale: int) -> list[Sample]:
    """One sample per ``role`` block, whole, in physical units."""
    by_name = {s.name: s for s in scenes}
    samples = []
    for block in blocks:
        if block.role != role:
            continue
        scene = by_name[block.scene]
        rows, cols = block.window()
        name = f"{block.scene}[{block.row}:{block.row + block.rows},{block.col}:{block.col + block.cols}]"
        samples.append(
            sample_from_fine(name, scene.lst_kelvin[rows, cols], scene.guidance[:, rows, cols], scale)
        )
    return samples


def band_specs(bands: tuple[BandInfo, ...], normalizer: Normalizer) -> tuple[BandSpec, ...]:
    """The card's guidance band list, with the training statistics."""
    return tuple(
        BandSpec(name=b.name, units=b.units, mean=m, std=s, description=b.description)
        for b, m, s in zip(bands, normalizer.guidance_mean, normalizer.guidance_std)
    )


class SamplePatches:
    """Random crops of whole coarse/fine pairs (the GrokLST layout), with augmentation."""

    def __init__(
        self,
        samples: list[Sample],
        scale: int,
        patch_px: int | None,
        normalizer: Normalizer,
        augment: bool = True,
    ):
        if patch_px is not None and patch_px % scale:
            raise ValueError(f"patch_px {patch_px} must be a multiple of the scale {scale}")
        if not samples:
            raise ValueError("no training samples")
        self.samples, self.scale, self.patch_px = samples, scale, patch_px
        self.normalizer, self.augment = normalizer, augment

    def batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        items = []
        s = self.scale
        for index in rng.integers(len(self.samples), size=batch_size):
            sample = self.samples[index]
            coarse, guidance, fine = sample.coarse_kelvin, sample.guidance, sample.fine_kelvin
            if self.patch_px is not None and self.patch_px < fine.shape[0]:
                q = self.patch_px // s
                r = int(rng.integers(coarse.shape[0] - q + 1))
                c = int(rng.integers(coarse.shape[1] - q + 1))
                coarse = coarse[r : r + q, c : c + q]
                guidance = guidance[:, r * s : (r + q) * s, c * s : (c + q) * s]
                fine = fine[r * s : (r + q) * s, c * s : (c + q) * s]
            if self.augment:
                coarse, guidance, fine = augment([coarse, guidance, fine], rng)
            items.append(model_inputs(Sample(sample.name, coarse, guidance, fine), self.normalizer))
        return stack_batch(items)


GROKLST_BANDS: tuple[BandInfo, ...] = (
    BandInfo("dem", "m", "elevation"),
    BandInfo("deepblue", "reflectance (unitless)", "deep blue reflectance"),
    BandInfo("blue", "reflectance (unitless)", "blue reflectance"),
    BandInfo("green", "reflectance (unitless)", "green reflectance"),
    BandInfo("red", "reflectance (unitless)", "red reflectance"),
    BandInfo("vre", "reflectance (unitless)", "vegetation red edge reflectance"),
    BandInfo("nir", "reflectance (unitless)", "near-infrared reflectance"),
    BandInfo("ndmvi", "index (unitless)", "normalised difference mountain vegetation index"),
    BandInfo("ndvi", "index (unitless)", "normalised difference vegetation index"),
    BandInfo("ndwi", "index (unitless)", "normalised difference water index"),
)
# z-score statistics of the GrokLST dataset as published with its reference configs.
GROKLST_GUIDANCE_STATS = {
    "dem": (2569.38, 1254.35),
    "deepblue": (0.17, 0.05),
    "blue": (0.16, 0.04),
    "green": (0.15, 0.04),
    "red": (0.17, 0.05),
    "vre": (0.20, 0.06),
    "nir": (0.22, 0.06),
    "ndmvi": (0.19, 0.13),
    "ndvi": (0.14, 0.10),
    "ndwi": (-0.19, 0.12),
}
GROKLST_LST_STATS = {2: (282.51, 14.73), 4: (282.51, 14.68), 8: (282.51, 14.59)}


def groklst_normalizer(scale: int) -> Normalizer:
    mean, std = GROKLST_LST_STATS[scale]
    return Normalizer(
        mean,
        std,
        tuple(GROKLST_GUIDANCE_STATS[b.name][0] for b in GROKLST_BANDS),
        tuple(GROKLST_GUIDANCE_STATS[b.name][1] for b in GROKLST_BANDS),
    )


def read_groklst(root: str | Path, scale: int, split: str) -> list[Sample]:
    """GrokLST patches listed in ``split/<split>.txt`` (indices into the sorted file
    lists) from ``<30*scale>m/lst``, ``30m/lst`` and ``30m/guidance``. LST values that are
    not finite or not above 0 K are invalid."""
    from scipy.io import loadmat

    root = Path(root)
    folders = {
        "coarse": root / f"{30 * scale}m" / "lst",
        "fine": root / "30m" / "lst",
        "guidance": root / "30m" / "guidance",
    }
    split_file = root / "split" / f"{split}.txt"
    for path in (*folders.values(), split_file):
        if not path.exists():
            raise FileNotFoundError(
                f"GrokLST root {root}: {path.relative_to(root)} is missing (x{scale} needs {30 * scale}m/lst)"
            )
    files = {k: sorted(p for p in v.iterdir() if p.suffix == ".mat") for k, v in folders.items()}
    if len({len(v) for v in files.values()}) != 1:
        raise ValueError(
            f"GrokLST root {root}: the lst and guidance folders hold different numbers of .mat files"
        )
    indices = [int(line.split()[0]) for line in split_file.read_text().splitlines() if line.strip()]

    def lst(path: Path) -> np.ndarray:
        values = np.asarray(loadmat(path)["data"], np.float32)
        return np.where(np.isfinite(values) & (values > 0), values, np.nan).astype(np.float32)

    samples = []
    for i in indices:
        mat = loadmat(files["guidance"][i])
        guidance = np.stack([np.asarray(mat[b.name], np.float32) for b in GROKLST_BANDS])
        samples.append(
            Sample(files["fine"][i].stem, lst(files["coarse"][i]), guidance, lst(files["fine"][i]))
        )
    return samples

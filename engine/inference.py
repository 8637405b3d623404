"""Array-level downscaling with a model package: normalise, infer, de-normalise."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backends import create_backend
from .card import ModelCard
from .errors import InputError, PackageError
from .package import ModelPackage, resolve_package


def lst_centre_kelvin(lst_kelvin: np.ndarray, anchor: str, mean_kelvin: float) -> np.ndarray:
    """The value each (B, h, w) coarse LST is centred on before the z-score, shaped (B, 1, 1):
    the card's mean, or each tile's own mean for ``anchor == "coarse_mean"``."""
    if anchor == "coarse_mean":
        return lst_kelvin.astype(np.float64).mean(axis=(-2, -1), keepdims=True).astype(np.float32)
    return np.full((lst_kelvin.shape[0], 1, 1), mean_kelvin, np.float32)


def zscore(values: np.ndarray, mean, std) -> np.ndarray:
    """``(values - mean) / std`` as float32; ``mean`` and ``std`` broadcast (scalars, per sample or
    per channel). The one normalisation of network inputs, shared by inference and training."""
    return ((values - mean) / std).astype(np.float32)


def from_zscore(normalised: np.ndarray, mean, std) -> np.ndarray:
    """The inverse of `zscore`: ``normalised * std + mean`` as float32."""
    return (normalised * std + mean).astype(np.float32)


def per_channel(stats, ndim: int) -> np.ndarray:
    """Per-channel statistics shaped to broadcast over (C, ...) arrays of ``ndim`` dimensions."""
    return np.asarray(stats, np.float32).reshape(-1, *[1] * (ndim - 1))


class Downscaler:
    """A model package opened on a backend, working in Kelvin and physical guidance units."""

    def __init__(
        self,
        package: ModelPackage | str | Path,
        backend: str = "onnxruntime",
        device: str = "auto",
        threads: int | None = None,
        precision: str = "auto",
        onnx_path: str | Path | None = None,
    ):
        """``precision`` applies on a GPU (``auto``: float16/bfloat16 where the card allows it
        and a probe tile stays within 0.05 K of float32); ``onnx_path`` runs another ONNX
        variant of the package's network (a quantised one) with the package's card."""
        self.package = package if isinstance(package, ModelPackage) else resolve_package(package)
        self.backend = create_backend(self.package, backend, device, threads, precision, onnx_path)
        bands = self.card.guidance_bands
        self._guidance_mean = per_channel([b.mean for b in bands], 3)
        self._guidance_std = per_channel([b.std for b in bands], 3)

    @property
    def card(self) -> ModelCard:
        return self.package.card

    @property
    def scale(self) -> int:
        return self.card.scale

    @property
    def guidance_band_names(self) -> tuple[str, ...]:
        return self.card.guidance_band_names

    @property
    def device_description(self) -> str:
        return self.backend.device_description

    def predict_batch_kelvin(self, lst_kelvin: np.ndarray, guidance: np.ndarray) -> np.ndarray:
        """(B, h, w) coarse LST in K and (B, C, h*s, w*s) guidance -> (B, h*s, w*s) LST in K."""
        self._check_shapes(lst_kelvin, guidance)
        lst_norm, guidance_norm, centre = self.normalised(lst_kelvin, guidance)
        fine_norm = self.backend.run(lst_norm, guidance_norm)[:, 0]
        if not np.isfinite(fine_norm).all():
            raise PackageError(
                f"Model {self.card.name!r} ({self.package.card_path}) returned non-finite values (NaN or "
                f"infinity, {np.size(fine_norm) - int(np.isfinite(fine_norm).sum())} of {np.size(fine_norm)} "
                "pixels) for finite inputs: its weights are damaged. Download or export the package again, or "
                "use another model or method."
            )
        return from_zscore(fine_norm, centre, np.float32(self.card.lst_std_kelvin))

    def normalised(
        self, lst_kelvin: np.ndarray, guidance: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network's inputs for (B, h, w) LST in K and (B, C, H, W) guidance: the
        (B, 1, h, w) and (B, C, H, W) z-scores and the (B, 1, 1) LST centre in K."""
        centre = lst_centre_kelvin(lst_kelvin, self.card.lst_anchor, self.card.lst_mean_kelvin)
        std = np.float32(self.card.lst_std_kelvin)
        lst_norm = zscore(lst_kelvin.astype(np.float32), centre, std)
        guidance_norm = zscore(guidance.astype(np.float32), self._guidance_mean, self._guidance_std)
        return lst_norm[:, None], guidance_norm, centre

    def predict_kelvin(self, lst_kelvin: np.ndarray, guidance: np.ndarray) -> np.ndarray:
        """(h, w) coarse LST in K and (C, h*s, w*s) guidance -> (h*s, w*s) LST in K."""
        return self.predict_batch_kelvin(lst_kelvin[None], guidance[None])[0]

    def _check_shapes(self, lst_kelvin: np.ndarray, guidance: np.ndarray) -> None:
        if lst_kelvin.ndim != 3 or guidance.ndim != 4:
            raise InputError(
                f"expected LST (B, h, w) and guidance (B, C, H, W), got {lst_kelvin.shape} and "
                f"{guidance.shape}"
            )
        b, h, w = lst_kelvin.shape
        channels = len(self.card.guidance_bands)
        expected = (b, channels, h * self.scale, w * self.scale)
        if guidance.shape != expected:
            raise InputError(
                f"model {self.card.name!r} (x{self.scale}, bands {', '.join(self.guidance_band_names)}) "
                f"needs guidance of shape {expected} for LST {lst_kelvin.shape}, got {guidance.shape}"
            )
        if h < 2 or w < 2:
            raise InputError(
                f"the coarse LST tile {h}x{w} is too small; the network needs at least 2x2 coarse pixels"
            )
        if not (np.isfinite(lst_kelvin).all() and np.isfinite(guidance).all()):
            raise InputError(
                "LST and guidance must be filled (no NaN) before inference; masked pixels are filled by the "
                "pipeline"
            )

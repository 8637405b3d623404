"""Model cards: what a model package is, what it expects and how it was made."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from .blend import check_blend_weights
from .errors import PackageError

FORMAT_VERSION = 1
ARCHITECTURES = ("MoCoLSK-Net",)
# Where the LST z-score is centred: the card's fixed mean ("global"), or the mean of each
# coarse input tile ("coarse_mean"), which makes the network's output shift with the input
# and keeps it in range for temperatures far from those it was trained on.
LST_ANCHORS = ("global", "coarse_mean")


@dataclass(frozen=True)
class BandSpec:
    """One guidance band the model expects, with its z-score statistics."""

    name: str
    units: str
    mean: float
    std: float
    description: str = ""


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to run a model correctly and to judge whether to trust it."""

    name: str
    version: str
    architecture: str
    hyperparameters: dict[str, Any]
    scale: int
    guidance_bands: tuple[BandSpec, ...]
    lst_mean_kelvin: float
    lst_std_kelvin: float
    weights_file: str
    weights_sha256: str
    torch_weights_file: str = ""
    torch_weights_sha256: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    lst_anchor: str = "global"
    # How the "Uncertainty (K)" layer compares with errors on held-out data, and its fitted
    # ``sigma_scale`` (engine.uncertainty); empty when never measured.
    uncertainty_calibration: dict[str, Any] = field(default_factory=dict)
    # Method "blend": ``weights`` of MoCoLSK and the classic methods (engine.blend), how they were
    # fitted, and the blend's optional ``sigma_scale``; empty when the package has none.
    blend: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def guidance_band_names(self) -> tuple[str, ...]:
        return tuple(band.name for band in self.guidance_bands)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["guidance_bands"] = [asdict(band) for band in self.guidance_bands]
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "model card") -> ModelCard:
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in values]
        if missing:
            raise PackageError(
                f"{source} lacks the field(s) {', '.join(missing)}; re-export the package with `python -m "
                "training export`."
            )
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise PackageError(
                f"{source} has unknown field(s) {', '.join(unknown)}; it was written by a newer version of "
                "the engine, update the plugin."
            )
        try:
            bands = tuple(BandSpec(**band) for band in values["guidance_bands"])
        except TypeError as exc:
            raise PackageError(f"{source}: a guidance band entry is malformed ({exc}).") from exc
        card = cls(**{**values, "guidance_bands": bands})
        card.validate(source)
        return card

    @classmethod
    def from_json(cls, text: str, source: str = "model card") -> ModelCard:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PackageError(f"{source} is not valid JSON ({exc}).") from exc
        if not isinstance(values, dict):
            raise PackageError(f"{source} must hold a JSON object.")
        return cls.from_dict(values, source)

    def validate(self, source: str = "model card") -> None:
        """Refuse cards whose fields contradict each other or cannot be used."""
        problems = []
        if self.format_version != FORMAT_VERSION:
            problems.append(
                f"format_version {self.format_version} is not supported (expected {FORMAT_VERSION})"
            )
        if self.architecture not in ARCHITECTURES:
            problems.append(
                f"architecture {self.architecture!r} is unknown (expected one of {ARCHITECTURES})"
            )
        if self.scale not in (2, 4, 8):
            problems.append(f"scale {self.scale} is not 2, 4 or 8")
        if self.hyperparameters.get("scale", self.scale) != self.scale:
            problems.append(
                f"hyperparameters.scale {self.hyperparameters.get('scale')} differs from scale {self.scale}"
            )
        channels = self.hyperparameters.get("guidance_channels")
        if channels is not None and channels != len(self.guidance_bands):
            problems.append(
                f"hyperparameters.guidance_channels is {channels} but {len(self.guidance_bands)} guidance "
                "bands are listed"
            )
        if not self.guidance_bands:
            problems.append("no guidance bands are listed")
        names = self.guidance_band_names
        if len(set(names)) != len(names):
            problems.append(f"guidance band names repeat: {list(names)}")
        for band in self.guidance_bands:
            if not band.std > 0:
                problems.append(f"guidance band {band.name!r} has std {band.std}; it must be positive")
        if not 150.0 < self.lst_mean_kelvin < 400.0:
            problems.append(
                f"lst_mean_kelvin {self.lst_mean_kelvin} is not a plausible temperature in Kelvin"
            )
        if self.lst_anchor not in LST_ANCHORS:
            problems.append(f"lst_anchor {self.lst_anchor!r} is not one of {', '.join(LST_ANCHORS)}")
        if not self.lst_std_kelvin > 0:
            problems.append(f"lst_std_kelvin {self.lst_std_kelvin} must be positive")
        if len(self.weights_sha256) != 64:
            problems.append("weights_sha256 is not a SHA-256 hex digest")
        if bool(self.torch_weights_file) != (len(self.torch_weights_sha256) == 64):
            problems.append("torch_weights_file and torch_weights_sha256 must be given together")
        if self.blend:
            check_blend_weights(self.blend.get("weights", {}), source)
            if self.blend.get("delivered_weights"):
                check_blend_weights(self.blend["delivered_weights"], source)
        if problems:
            raise PackageError(f"{source} is inconsistent: " + "; ".join(problems) + ".")


METHOD_TITLES = {
    "blend": "the blend",
    "mocolsk": "MoCoLSK",
    "bicubic": "bicubic",
    "tsharp": "TsHARP",
    "dms": "DMS",
    "auto": "auto",
}


def recommended_method(card: ModelCard) -> str | None:
    """The method the card's held-out benchmark recommends at its scale, when it has one."""
    return card.metrics.get("recommended_method")


def accuracy_summary(card: ModelCard) -> str | None:
    """One sentence on the card's whole-scene held-out RMSE in both protocols: MoCoLSK beside
    bicubic and the best classic method, and the method recommended at this scale."""
    report = card.metrics.get("unseen_scenes") or card.metrics.get("held_out_scenes")
    if not report:
        return None
    parts = []
    for protocol, title in (("native", "native-resolution truth"), ("ingrid", "delivered 30 m truth")):
        summary = report.get(protocol)
        if not summary:
            continue
        methods = summary["methods"]
        best = summary["best_classic"]
        shown = [m for m in ("blend", "mocolsk", "bicubic") if m in methods]
        shown += [best] if best not in shown else []
        text = ", ".join(f"{METHOD_TITLES.get(m, m)} {methods[m]['rmse_k']:.2f} K" for m in shown)
        parts.append(f"{title}: {text}")
    scenes = len(next(iter(report.values()))["scenes"])
    recommended = recommended_method(card)
    advice = (
        f"; recommended at x{card.scale}: {METHOD_TITLES.get(recommended, recommended)}"
        if recommended
        else ""
    )
    where = "real scenes the network never saw" if "unseen_scenes" in card.metrics else "held-out real scenes"
    return f"RMSE on {scenes} {where} ({'; '.join(parts)}){advice}"

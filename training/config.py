"""Training configuration: one JSON file per run (see ``training/configs/``).

Relative data paths in a config are resolved against the config file's folder, so a
config works from any working directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.model import MoCoLSKConfig


@dataclass(frozen=True)
class TrainConfig:
    name: str
    scale: int
    data: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    architecture: str = "mocolsk"
    split: dict[str, Any] = field(
        default_factory=lambda: {"block_px": 64, "val_fraction": 0.15, "guard_native_px": 2, "seed": 0}
    )
    patch_px: int | None = 64
    batch_size: int = 4
    iterations: int = 10000
    lr: float = 1e-4
    weight_decay: float = 1e-5
    restart_period: int = 2500
    min_lr: float = 1e-7
    val_interval: int = 500
    checkpoint_interval: int = 500
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    description: str = ""
    views: tuple[str, ...] = ("ingrid",)
    lst_anchor: str = "global"
    # A model package (bundled name or card path) to start from: its weights and its normalisation.
    init_package: str | None = None
    base_dir: str = "."

    def __post_init__(self) -> None:
        if self.scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {self.scale}")
        if self.batch_size < 1 or self.iterations < 1:
            raise ValueError("batch_size and iterations must be positive")
        if self.patch_px is not None and self.patch_px % self.scale:
            raise ValueError(f"patch_px {self.patch_px} must be a multiple of the scale {self.scale}")
        from .protocol import PROTOCOLS

        if not self.views or set(self.views) - set(PROTOCOLS):
            raise ValueError(
                f"views must be a non-empty list of {', '.join(PROTOCOLS)}, got {list(self.views)}"
            )
        if self.lst_anchor not in ("global", "coarse_mean"):
            raise ValueError(f"lst_anchor must be 'global' or 'coarse_mean', got {self.lst_anchor!r}")
        block_px = self.split.get("block_px")
        if block_px is not None and block_px % self.scale:
            raise ValueError(f"split.block_px {block_px} must be a multiple of the scale {self.scale}")
        if self.architecture != "mocolsk":
            from .zoo import ZOO

            if self.architecture not in ZOO:
                raise ValueError(
                    f"architecture must be 'mocolsk' or a zoo network ({', '.join(ZOO)}), got "
                    f"{self.architecture!r}"
                )
            return
        unknown = set(self.model) - set(MoCoLSKConfig.__dataclass_fields__)
        if unknown or {"scale", "guidance_channels"} & set(self.model):
            raise ValueError(
                "model: unknown or derived hyper-parameters "
                f"{sorted(unknown | ({'scale', 'guidance_channels'} & set(self.model)))}; "
                f"scale comes from the config and guidance_channels from the data"
            )

    def parent_package(self):
        """The verified package named by ``init_package`` (a bundled name, or a card path resolved
        against the config's folder), or None."""
        if not self.init_package:
            return None
        from engine.package import bundled_packages, resolve_package

        name = self.init_package
        return resolve_package(name if name in bundled_packages() else self.path(name))

    def path(self, value: str | Path) -> Path:
        """A data path from the config, resolved against the config's folder."""
        return (Path(self.base_dir) / value).resolve()

    def model_config(self, guidance_channels: int) -> MoCoLSKConfig:
        return MoCoLSKConfig(scale=self.scale, guidance_channels=guidance_channels, **self.model)

    def build_model(self, guidance_channels: int):
        """MoCoLSK-Net, or the zoo network named by ``architecture`` with ``model`` as its options."""
        if self.architecture == "mocolsk":
            from engine.model import MoCoLSKNet

            return MoCoLSKNet(self.model_config(guidance_channels))
        from .zoo import build

        return build(self.architecture, self.scale, guidance_channels, **self.model)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("base_dir")
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], base_dir: str | Path = ".") -> TrainConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        if "views" in values:
            values = {**values, "views": tuple(values["views"])}
        return cls(**{**values, "base_dir": str(base_dir)})

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read config {path}: {exc}") from exc
        return cls.from_dict(values, path.resolve().parent)

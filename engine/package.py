"""Model packages on disk: ``NAME.json`` (the card) beside ``NAME.onnx`` (the weights) and,
optionally, ``NAME.pt`` (the same weights as a PyTorch state dict, for the PyTorch backend).

Loading verifies the SHA-256 of the weights against the card, so a truncated download or a
swapped file is refused before any inference runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .card import ModelCard
from .errors import PackageError

CARD_SUFFIX = ".json"
WEIGHTS_SUFFIX = ".onnx"


@dataclass(frozen=True)
class ModelPackage:
    card: ModelCard
    card_path: Path
    onnx_path: Path
    torch_weights_path: Path | None

    @property
    def name(self) -> str:
        return self.card.name


def sha256_of_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def card_path_for(path: str | Path) -> Path:
    """The card of a package given either of its two files."""
    path = Path(path)
    return path.with_suffix(CARD_SUFFIX) if path.suffix.lower() == WEIGHTS_SUFFIX else path


def load_package(path: str | Path, verify: bool = True) -> ModelPackage:
    """Read and check a package from its card (``.json``) or weights (``.onnx``) path."""
    card_path = card_path_for(path)
    if not card_path.is_file():
        raise PackageError(
            f"Model package {Path(path).name!r}: card {card_path} not found. A package is a "
            f"NAME.json card beside NAME.onnx; export one with `python -m training export`."
        )
    card = ModelCard.from_json(card_path.read_text(encoding="utf-8"), source=f"Model card {card_path.name}")
    onnx_path = _verified_file(card, card_path, card.weights_file, card.weights_sha256, verify)
    torch_path = None
    # The PyTorch weights are optional: the plugin zip ships the ONNX weights alone.
    if card.torch_weights_file and (card_path.parent / card.torch_weights_file).is_file():
        torch_path = _verified_file(
            card, card_path, card.torch_weights_file, card.torch_weights_sha256, verify
        )
    return ModelPackage(card=card, card_path=card_path, onnx_path=onnx_path, torch_weights_path=torch_path)


def _verified_file(card: ModelCard, card_path: Path, file_name: str, sha256: str, verify: bool) -> Path:
    path = card_path.parent / file_name
    if path.parent != card_path.parent or not path.is_file():
        raise PackageError(
            f"Model package {card.name!r}: file {file_name!r} named by the card is not beside it "
            f"in {card_path.parent}; copy all the package's files together."
        )
    if verify:
        actual = sha256_of_file(path)
        if actual != sha256:
            raise PackageError(
                f"Model package {card.name!r}: checksum of {path.name} is {actual[:12]}…, the card "
                f"expects {sha256[:12]}…; the file is corrupted or was replaced. "
                f"Download or export the package again."
            )
    return path


def models_dir() -> Path:
    """``resources/models`` beside the engine (plugin zip) or at the repository root."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "resources" / "models", here / "resources" / "models"):
        if candidate.is_dir():
            return candidate
    return here.parent / "resources" / "models"


def bundled_packages() -> dict[str, Path]:
    """Names and card paths of the packages that ship with the plugin, sorted by name."""
    folder = models_dir()
    if not folder.is_dir():
        return {}
    cards = sorted(p for p in folder.glob(f"*{CARD_SUFFIX}") if p.with_suffix(WEIGHTS_SUFFIX).is_file())
    return {p.stem: p for p in cards}


def bundled_scales() -> dict[str, int]:
    """Scale of each usable bundled package by name, read from the cards without checksums (cheap)."""
    scales = {}
    for name, card_path in bundled_packages().items():
        try:
            scales[name] = load_package(card_path, verify=False).card.scale
        except PackageError:
            continue
    return scales


def resolve_package(name_or_path: str | Path, verify: bool = True) -> ModelPackage:
    """A bundled package by name, or a package by file path."""
    bundled = bundled_packages()
    if str(name_or_path) in bundled:
        return load_package(bundled[str(name_or_path)], verify)
    path = Path(name_or_path)
    if path.suffix.lower() in (CARD_SUFFIX, WEIGHTS_SUFFIX) or path.exists():
        return load_package(path, verify)
    known = ", ".join(bundled) or "none are installed"
    raise PackageError(
        f"Model {str(name_or_path)!r} is neither a bundled package ({known}) nor a package file."
    )

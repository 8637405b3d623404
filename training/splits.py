"""Splits by area: whole scenes are held out for test, and the other scenes are cut into
square blocks that go to training or validation. Landsat thermal bands are resampled from
60-120 m pixels, so a training pixel next to a held-out block shares its sensor samples:
training patches keep a guard band of ``guard_px`` away from every held-out block.

The split is written to a JSON file beside the run, so results can be reproduced and a
later evaluation uses exactly the same held-out area.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROLES = ("train", "val", "test")


@dataclass(frozen=True)
class Block:
    """A window of a scene, in fine pixels, and the role it plays."""

    scene: str
    row: int
    col: int
    rows: int
    cols: int
    role: str

    def window(self) -> tuple[slice, slice]:
        return slice(self.row, self.row + self.rows), slice(self.col, self.col + self.cols)


def block_split(
    scene_shapes: dict[str, tuple[int, int]],
    block_px: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    train_only: frozenset[str] = frozenset(),
    whole: dict[str, str] | None = None,
) -> list[Block]:
    """Tile each scene into ``block_px`` blocks (edge remainders too when at least half a
    block) and draw val/test blocks at random; ``train_only`` scenes go wholly to training
    and a scene named in ``whole`` wholly to the role it maps to."""
    rng = np.random.default_rng(seed)
    whole = {**{name: "train" for name in train_only}, **(whole or {})}
    blocks: list[Block] = []
    for name, (rows, cols) in sorted(scene_shapes.items()):
        if name in whole:
            blocks.append(Block(name, 0, 0, rows, cols, whole[name]))
            continue
        windows = [
            (r, c, min(block_px, rows - r), min(block_px, cols - c))
            for r in range(0, rows, block_px)
            for c in range(0, cols, block_px)
            if min(block_px, rows - r) >= block_px // 2 and min(block_px, cols - c) >= block_px // 2
        ]
        full = [i for i, w in enumerate(windows) if w[2] == block_px and w[3] == block_px]
        n_test = max(1, round(test_fraction * len(windows))) if test_fraction > 0 else 0
        n_val = max(1, round(val_fraction * len(windows))) if val_fraction > 0 else 0
        if n_test + n_val >= len(windows) or n_test + n_val > len(full):
            raise ValueError(
                f"scene {name} ({cols}x{rows} px) has only {len(windows)} blocks of {block_px} px: too few "
                "for "
                f"{n_val} validation and {n_test} test blocks; use a smaller block_px or mark the scene "
                "train-only"
            )
        held_out = rng.permutation(full)[: n_test + n_val]
        roles = {int(i): "test" for i in held_out[:n_test]} | {int(i): "val" for i in held_out[n_test:]}
        blocks.extend(Block(name, *w, roles.get(i, "train")) for i, w in enumerate(windows))
    return blocks


def role_mask(blocks: list[Block], scene: str, shape: tuple[int, int], role: str) -> np.ndarray:
    """Boolean mask of the pixels of ``scene`` that belong to blocks of ``role``."""
    mask = np.zeros(shape, bool)
    for block in blocks:
        if block.scene == scene and block.role == role:
            mask[block.window()] = True
    return mask


def training_area(blocks: list[Block], scene: str, shape: tuple[int, int], guard_px: int) -> np.ndarray:
    """Pixels of ``scene`` a training patch may use: its training blocks minus a guard band
    of ``guard_px`` pixels around every validation or test block."""
    held_out = role_mask(blocks, scene, shape, "val") | role_mask(blocks, scene, shape, "test")
    if guard_px > 0 and held_out.any():
        table = np.pad(held_out.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        rows, cols = shape
        r0 = np.clip(np.arange(rows) - guard_px, 0, rows)[:, None]
        r1 = np.clip(np.arange(rows) + guard_px + 1, 0, rows)[:, None]
        c0 = np.clip(np.arange(cols) - guard_px, 0, cols)[None, :]
        c1 = np.clip(np.arange(cols) + guard_px + 1, 0, cols)[None, :]
        held_out = (table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]) > 0
    return role_mask(blocks, scene, shape, "train") & ~held_out


def write_split(path: str | Path, blocks: list[Block], settings: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"settings": settings, "blocks": [asdict(b) for b in blocks]}
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def read_split(path: str | Path) -> tuple[list[Block], dict]:
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    blocks = [Block(**b) for b in payload["blocks"]]
    unknown = {b.role for b in blocks} - set(ROLES)
    if unknown:
        raise ValueError(f"split file {path}: unknown roles {sorted(unknown)}")
    return blocks, payload.get("settings", {})

"""From a config's ``data`` section to the sampler, the held-out samples and the
normalisation statistics.

``data.kind`` is ``"scenes"`` (a list of scenes split by area) or ``"groklst"`` (the
GrokLST folder layout with its own split lists). Scene entries:

- ``{"kind": "landsat_l1", "mtl": PATH}``
- ``{"kind": "geotiff", "lst": PATH, "guidance": PATH, "lst_units": "kelvin"}``: fine LST
- ``{"kind": "coarse_geotiff", "lst": PATH, "guidance": PATH}``: coarse LST only, used
  self-supervised; its LST grid must be ``scale`` times the guidance grid

Any entry may set ``"role": "train"`` to use the whole scene for training (scenes too
small to give held-out blocks); the default ``"split"`` cuts it into blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import TrainConfig
from .datasets import (
    GROKLST_BANDS,
    Normalizer,
    Sample,
    SamplePatches,
    ScenePatches,
    groklst_normalizer,
    held_out_samples,
    read_groklst,
)
from .landsat import read_landsat_scene
from .scenes import BandInfo, Scene, read_coarse_scene, read_geotiff_scene
from .splits import Block, block_split, read_split, role_mask, write_split

SPLIT_FILE = "split.json"


@dataclass
class TrainingData:
    sampler: ScenePatches | SamplePatches
    val: list[Sample]
    test: list[Sample]
    normalizer: Normalizer
    bands: tuple[BandInfo, ...]
    description: str


def declared_bands(data: dict) -> tuple[BandInfo, ...] | None:
    bands = data.get("guidance_bands")
    if bands is None:
        return None
    return tuple(BandInfo(b["name"], b.get("units", ""), b.get("description", "")) for b in bands)


def read_scene(entry: dict, config: TrainConfig, bands: tuple[BandInfo, ...] | None) -> Scene:
    kind = entry.get("kind")
    if kind == "landsat_l1":
        return read_landsat_scene(config.path(entry["mtl"]))
    if kind == "geotiff":
        return read_geotiff_scene(config.path(entry["lst"]), config.path(entry["guidance"]), bands,
                                  entry.get("lst_units", "kelvin"), entry.get("name"))
    if kind == "coarse_geotiff":
        scene, scale = read_coarse_scene(config.path(entry["lst"]), config.path(entry["guidance"]), bands,
                                         entry.get("lst_units", "kelvin"), entry.get("name"))
        if scale != config.scale:
            raise ValueError(f"coarse scene {scene.name}: its LST is x{scale} the guidance grid, the config is x{config.scale}")
        return scene
    raise ValueError(f"unknown scene kind {kind!r}; use landsat_l1, geotiff or coarse_geotiff")


def load_scenes(config: TrainConfig) -> tuple[list[Scene], frozenset[str]]:
    bands = declared_bands(config.data)
    scenes, train_only = [], set()
    for entry in config.data["scenes"]:
        scene = read_scene(entry, config, bands)
        if any(s.name == scene.name for s in scenes):
            raise ValueError(f"two scenes are named {scene.name!r}; set a distinct 'name'")
        if scenes and scene.band_names != scenes[0].band_names:
            raise ValueError(f"scene {scene.name} has guidance bands {scene.band_names}, scene {scenes[0].name} has {scenes[0].band_names}")
        if entry.get("role", "split") == "train":
            train_only.add(scene.name)
        scenes.append(scene)
    if not scenes:
        raise ValueError("data.scenes is empty")
    return scenes, frozenset(train_only)


def scene_split(config: TrainConfig, scenes: list[Scene], train_only: frozenset[str], run_dir: Path) -> list[Block]:
    """The split named by ``split.file`` if given, else a new one written beside the run."""
    settings = dict(config.split)
    if settings.get("file"):
        blocks, _ = read_split(config.path(settings["file"]))
    else:
        blocks = block_split({s.name: s.shape for s in scenes}, settings["block_px"], settings["val_fraction"],
                             settings["test_fraction"], settings.get("seed", config.seed), train_only)
    write_split(run_dir / SPLIT_FILE, blocks, settings)
    return blocks


def build_training_data(config: TrainConfig, run_dir: str | Path) -> TrainingData:
    run_dir = Path(run_dir)
    kind = config.data.get("kind")
    if kind == "scenes":
        if config.patch_px is None:
            raise ValueError("data.kind 'scenes' needs patch_px (the side of the random training patches, in fine pixels)")
        scenes, train_only = load_scenes(config)
        blocks = scene_split(config, scenes, train_only, run_dir)
        masks = [role_mask(blocks, s.name, s.shape, "train") for s in scenes]
        normalizer = Normalizer.from_scenes(scenes, masks)
        sampler = ScenePatches(scenes, blocks, config.scale, config.patch_px, normalizer)
        described = "; ".join(f"{s.name} {s.shape[1]}x{s.shape[0]} px" + (f" ({s.notes})" if s.notes else "") for s in scenes)
        return TrainingData(sampler, held_out_samples(scenes, blocks, "val", config.scale),
                            held_out_samples(scenes, blocks, "test", config.scale), normalizer, scenes[0].bands,
                            f"scenes split by area into {config.split.get('block_px')} px blocks: {described}")
    if kind == "groklst":
        root = config.path(config.data["root"])
        normalizer = groklst_normalizer(config.scale)
        train = read_groklst(root, config.scale, config.data.get("train_split", "trainval"))
        test = read_groklst(root, config.scale, config.data.get("test_split", "test"))
        sampler = SamplePatches(train, config.scale, config.patch_px, normalizer)
        return TrainingData(sampler, test, test, normalizer, GROKLST_BANDS,
                            f"GrokLST x{config.scale}: {len(train)} training and {len(test)} test patches from {root}")
    raise ValueError(f"data.kind must be 'scenes' or 'groklst', got {kind!r}")

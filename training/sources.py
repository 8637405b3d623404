"""From a config's ``data`` section to the sampler, the held-out samples and the
normalisation statistics.

``data.kind`` is ``"scenes"`` (a list of scenes split by area) or ``"groklst"`` (the
GrokLST folder layout with its own split lists; validation is ``val_split`` or every tenth
trainval patch, never the test list). Scene entries:

- ``{"kind": "landsat_l1", "mtl": PATH}``, with the ``training.landsat_scenes.LandsatOptions``
  keys where the folder deviates from its MTL (``band_pattern``, ``nodata``,
  ``band_files``, ``metadata``, ``folder`` (a scene without MTL), ``pixel_size_m``, ``qa``,
  ``qa_kind``, ``qa_dilate_px``, ``crop``) and a ``landscape``
- ``{"kind": "landsat_level2", "folder": PATH, "sensor": "LANDSAT_8", "product":
  "collection2" | "espa" | "ledaps_celsius", "reflective": [six files or stack bands], "thermal": ...,
  "qa": ...}`` with the ``training.level2.Level2Options`` keys (``stack``, ``saturated``,
  ``qa_dilate_px``, ``crop``, ``quantisation_k``): surface reflectance and a stored
  temperature scaled by the product's constants
- ``{"kind": "geotiff", "lst": PATH, "guidance": PATH, "lst_units": "kelvin"}``: fine LST
  (``native_pixel_m``, ``quantisation_k``, ``sensor`` and ``landscape`` describe its truth)
- ``{"kind": "coarse_geotiff", "lst": PATH, "guidance": PATH}``: coarse LST only, used
  self-supervised; its LST grid must be ``scale`` times the guidance grid

Every entry should name its ``"site"`` (the place; scenes of one site share it) so that
cross-validation can hold out sites. Any entry may set ``"role"``: ``"test"`` holds the whole scene out (it is only ever
evaluated, under both protocols of ``training.protocol``), ``"val"`` uses it whole for
checkpoint choice, ``"train"`` uses it whole for training, and the default ``"split"``
cuts it into training and validation blocks with a guard band of
``split.guard_native_px`` native thermal pixels between them. ``views`` in the config
says on which protocol grids the training and validation scenes are seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

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
from .landsat_scenes import LandsatOptions, read_landsat_scene
from .level2 import Level2Options, read_level2_scene
from .protocol import protocol_view
from .scenes import BandInfo, Scene, read_coarse_scene, read_geotiff_scene
from .splits import Block, block_split, read_split, training_area, write_split

SPLIT_FILE = "split.json"
# Without a val_split list, every GROKLST_VAL_EVERY-th trainval patch validates (checkpoint choice), never the test list.
GROKLST_VAL_EVERY = 10


@dataclass
class TrainingData:
    sampler: ScenePatches | SamplePatches
    val: list[Sample]
    test: list[Sample]
    normalizer: Normalizer
    bands: tuple[BandInfo, ...]
    description: str
    test_scenes: list[Scene] = field(default_factory=list)


def declared_bands(data: dict) -> tuple[BandInfo, ...] | None:
    bands = data.get("guidance_bands")
    if bands is None:
        return None
    return tuple(BandInfo(b["name"], b.get("units", ""), b.get("description", "")) for b in bands)


def read_scene(entry: dict, config: TrainConfig, bands: tuple[BandInfo, ...] | None) -> Scene:
    scene = read_scene_data(entry, config, bands)
    return replace(scene, site=entry.get("site", scene.site))


def read_scene_data(entry: dict, config: TrainConfig, bands: tuple[BandInfo, ...] | None) -> Scene:
    kind = entry.get("kind")
    if kind == "landsat_l1":
        keys = {f.name for f in fields(LandsatOptions)}
        values = {k: tuple(v) if k == "crop" else v for k, v in entry.items() if k in keys}
        if values.get("folder"):
            values["folder"] = str(config.path(values["folder"]))
        scene = read_landsat_scene(
            config.path(entry["mtl"]) if entry.get("mtl") else None, LandsatOptions(**values)
        )
        return replace(scene, name=entry["name"]) if entry.get("name") else scene
    if kind == "geotiff":
        scene = read_geotiff_scene(
            config.path(entry["lst"]),
            config.path(entry["guidance"]),
            bands,
            entry.get("lst_units", "kelvin"),
            entry.get("name"),
        )
        return replace(
            scene,
            pixel_size_m=scene.grid.pixel_width,
            native_pixel_m=entry.get("native_pixel_m"),
            quantisation_k=entry.get("quantisation_k"),
            sensor=entry.get("sensor", ""),
            landscape=entry.get("landscape", ""),
        )
    if kind == "landsat_level2":
        keys = {f.name for f in fields(Level2Options)}
        values = {k: tuple(v) if k in ("crop", "reflective") else v for k, v in entry.items() if k in keys}
        values["folder"] = str(config.path(values["folder"]))
        return read_level2_scene(Level2Options(**values), entry.get("name", ""))
    if kind == "coarse_geotiff":
        scene, scale = read_coarse_scene(
            config.path(entry["lst"]),
            config.path(entry["guidance"]),
            bands,
            entry.get("lst_units", "kelvin"),
            entry.get("name"),
        )
        if scale != config.scale:
            raise ValueError(
                f"coarse scene {scene.name}: its LST is x{scale} the guidance grid, the config is "
                f"x{config.scale}"
            )
        return scene
    raise ValueError(
        f"unknown scene kind {kind!r}; use landsat_l1, landsat_level2, geotiff or coarse_geotiff"
    )


ROLES = ("split", "train", "val", "test")


def load_scenes(config: TrainConfig) -> tuple[list[Scene], dict[str, str]]:
    """The config's scenes and each scene's role."""
    bands = declared_bands(config.data)
    scenes, roles = [], {}
    for entry in config.data["scenes"]:
        scene = read_scene(entry, config, bands)
        if scene.name in roles:
            raise ValueError(f"two scenes are named {scene.name!r}; set a distinct 'name'")
        if scenes and scene.band_names != scenes[0].band_names:
            raise ValueError(
                f"scene {scene.name} has guidance bands {scene.band_names}, scene {scenes[0].name} has "
                f"{scenes[0].band_names}"
            )
        role = entry.get("role", "split")
        if role not in ROLES:
            raise ValueError(f"scene {scene.name}: role must be one of {', '.join(ROLES)}, got {role!r}")
        roles[scene.name] = role
        scenes.append(scene)
    if not scenes:
        raise ValueError("data.scenes is empty")
    return scenes, roles


def view_block_px(block_px: int, view: Scene, scene: Scene, scale: int) -> int:
    """The split's block side on a view's grid: the same ground size, a multiple of the scale."""
    factor = (view.pixel_size_m or 1.0) / (scene.pixel_size_m or 1.0)
    return max(2 * scale, int(block_px / factor) // scale * scale)


def guard_px(config: TrainConfig, view: Scene) -> int:
    """The guard band in a view's pixels: ``split.guard_native_px`` native thermal pixels."""
    native = config.split.get("guard_native_px", 0)
    if not native or not view.native_pixel_m or not view.pixel_size_m:
        return int(native)
    return int(np.ceil(native * view.native_pixel_m / view.pixel_size_m))


def scene_split(
    config: TrainConfig, views: list[tuple[Scene, Scene]], roles: dict[str, str], run_dir: Path
) -> list[Block]:
    """The split named by ``split.file`` if given, else a new one written beside the run;
    ``views`` pairs each training view with the scene it was made from."""
    settings = dict(config.split)
    if settings.get("test_fraction"):
        raise ValueError(
            'split.test_fraction is gone: test areas are whole scenes; give held-out scenes "role": "test"'
        )
    if settings.get("file"):
        blocks, _ = read_split(config.path(settings["file"]))
    else:
        blocks = []
        for index, (view, scene) in enumerate(views):
            role = roles[scene.name]
            whole = {} if role == "split" else {view.name: role}
            blocks += block_split(
                {view.name: view.shape},
                view_block_px(settings["block_px"], view, scene, config.scale),
                settings["val_fraction"],
                0.0,
                settings.get("seed", config.seed) + index,
                whole=whole,
            )
    write_split(run_dir / SPLIT_FILE, blocks, settings)
    return blocks


def build_training_data(config: TrainConfig, run_dir: str | Path) -> TrainingData:
    run_dir = Path(run_dir)
    kind = config.data.get("kind")
    if kind == "scenes":
        if config.patch_px is None:
            raise ValueError(
                "data.kind 'scenes' needs patch_px (the side of the random training patches, in fine pixels)"
            )
        scenes, roles = load_scenes(config)
        test_scenes = [s for s in scenes if roles[s.name] == "test"]
        pairs = [(protocol_view(s, v), s) for s in scenes if roles[s.name] != "test" for v in config.views]
        views = [view for view, _ in pairs]
        blocks = scene_split(config, pairs, roles, run_dir)
        guards = {v.name: guard_px(config, v) for v in views}
        masks = [training_area(blocks, v.name, v.shape, guards[v.name]) for v in views]
        parent = config.parent_package()
        normalizer = (
            Normalizer.from_card(parent.card)
            if parent
            else Normalizer.from_scenes(views, masks, config.lst_anchor)
        )
        if parent and parent.card.guidance_band_names != tuple(b.name for b in scenes[0].bands):
            raise ValueError(
                f"init_package {parent.name}: it was trained on guidance {', '.join(parent.card.guidance_band_names)}"
                f", these scenes give {', '.join(b.name for b in scenes[0].bands)}"
            )
        sampler = ScenePatches(views, blocks, config.scale, config.patch_px, normalizer, guard_px=guards)
        described = "; ".join(
            f"{s.name} {s.shape[1]}x{s.shape[0]} px, {roles[s.name]}" + (f" ({s.notes})" if s.notes else "")
            for s in scenes
        )
        return TrainingData(
            sampler,
            held_out_samples(views, blocks, "val", config.scale),
            [],
            normalizer,
            scenes[0].bands,
            f"views {', '.join(config.views)}; validation blocks {config.split.get('block_px')} px with a "
            "guard "
            f"band of {config.split.get('guard_native_px', 0)} native thermal pixels; whole test scenes "
            f"{', '.join(s.name for s in test_scenes) or 'none'}: {described}",
            test_scenes,
        )
    if kind == "groklst":
        root = config.path(config.data["root"])
        normalizer = groklst_normalizer(config.scale)
        train = read_groklst(root, config.scale, config.data.get("train_split", "trainval"))
        test = read_groklst(root, config.scale, config.data.get("test_split", "test"))
        if config.data.get("val_split"):
            val = read_groklst(root, config.scale, config.data["val_split"])
        else:
            val, train = train[::GROKLST_VAL_EVERY], [s for i, s in enumerate(train) if i % GROKLST_VAL_EVERY]
        if not train:
            raise ValueError(
                f"GrokLST root {root}: too few trainval patches to keep every {GROKLST_VAL_EVERY}th for "
                "validation"
            )
        sampler = SamplePatches(train, config.scale, config.patch_px, normalizer)
        return TrainingData(
            sampler,
            val,
            test,
            normalizer,
            GROKLST_BANDS,
            f"GrokLST x{config.scale}: {len(train)} training, {len(val)} validation and {len(test)} test "
            f"patches from {root}",
        )
    raise ValueError(f"data.kind must be 'scenes' or 'groklst', got {kind!r}")

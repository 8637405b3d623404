"""The training loop: masked L1, AdamW, cosine restarts, checkpoints and resume, seeded
sampling, periodic validation, and data-parallel training under ``torchrun``.

Run ``python -m training train CONFIG`` on one process, or
``torchrun --nproc_per_node N -m training train CONFIG`` for N processes (NCCL on GPUs,
Gloo on CPUs); add ``--nnodes``/``--rdzv-endpoint`` for several machines. Each process
draws its own patches (seeded by rank and step), DDP averages the gradients, rank 0
validates and writes checkpoints.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from engine.model import MoCoLSKNet, count_parameters

from .config import TrainConfig
from .datasets import Normalizer
from .evaluate import predict_samples, score_predictions
from .sources import build_training_data

CHECKPOINT_LAST = "last.pt"
CHECKPOINT_BEST = "best.pt"
CHECKPOINT_FORMAT = "mocolsk-training-checkpoint-1"
LOG_FILE = "log.jsonl"


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the pixels where ``mask`` is 1."""
    return ((prediction - target).abs() * mask).sum() / mask.sum().clamp_min(1.0)


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group ``torchrun`` describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(0, 1)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the config asks for device 'cuda' but PyTorch sees no GPU; use 'auto' or 'cpu'")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def parameter_digest(model: torch.nn.Module) -> float:
    """A float summary of all parameters, to compare replicas across processes."""
    with torch.no_grad():
        return float(sum((p.double() * (i + 1)).sum() for i, p in enumerate(model.parameters())))


def replica_digests(model: torch.nn.Module, world: Distributed) -> list[float]:
    digest = parameter_digest(model)
    if world.world_size == 1:
        return [digest]
    gathered = [None] * world.world_size
    dist.all_gather_object(gathered, digest)
    return [float(d) for d in gathered]


class Progress:
    """A one-line progress bar on stderr (rank 0 only)."""

    def __init__(self, total: int, start: int, enabled: bool, stream=sys.stderr):
        self.total, self.start, self.enabled, self.stream = total, start, enabled, stream
        self.t0 = time.monotonic()

    def update(self, step: int, loss: float, lr: float) -> None:
        if not self.enabled:
            return
        done = step - self.start
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        eta = (self.total - step) / max(rate, 1e-9)
        filled = int(30 * step / self.total)
        bar = "#" * filled + "-" * (30 - filled)
        self.stream.write(
            f"\r[{bar}] {step}/{self.total} loss {loss:.4f} lr {lr:.2e} {rate:.2f} it/s eta {eta / 60:.1f} "
            "min"
        )
        if step == self.total:
            self.stream.write("\n")
        self.stream.flush()


def checkpoint_payload(
    model: MoCoLSKNet,
    optimizer,
    scheduler,
    step: int,
    config: TrainConfig,
    normalizer: Normalizer,
    bands,
    data_description: str,
    command: str,
    wall_seconds: float,
) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "model": model.state_dict(),
        "model_config": model.config.to_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "config": config.to_dict(),
        "config_dir": str(Path(config.base_dir).resolve()),
        "command": command,
        "hardware": environment_description(),
        "wall_seconds": wall_seconds,
        "normalizer": normalizer.to_dict(),
        "bands": [{"name": b.name, "units": b.units, "description": b.description} for b in bands],
        "data": data_description,
    }


def save_atomic(payload: dict, path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint, loaded without unpickling arbitrary objects."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a MoCoLSK training checkpoint (written by `python -m training train`)"
        )
    return state


def append_log(run_dir: Path, record: dict) -> None:
    with open(run_dir / LOG_FILE, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(record) + "\n")


def validate(model: MoCoLSKNet, samples, normalizer: Normalizer, device: torch.device) -> dict:
    predictions = predict_samples(model, samples, normalizer, device)
    return score_predictions(samples, predictions)


def train(
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
    command: str = "",
) -> Path:
    """Train as ``config`` says, writing ``split.json``, ``log.jsonl`` and checkpoints
    (``last.pt``, ``step-N.pt`` and ``best.pt``, the one with the lowest validation RMSE,
    which is the one to export) into ``run_dir``; returns the last checkpoint."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    world = init_distributed(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.manual_seed(config.seed)
    data = build_training_data(config, run_dir)
    model = config.build_model(len(data.bands)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=config.restart_period, eta_min=config.min_lr
    )
    parent = config.parent_package()
    if parent:
        model.load_state_dict(torch.load(parent.torch_weights_path, map_location="cpu", weights_only=True))
    start, elapsed = 0, 0.0
    last = run_dir / CHECKPOINT_LAST
    if resume and last.is_file():
        state = load_checkpoint(last)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["step"])
        elapsed = float(state.get("wall_seconds") or 0.0)
        if world.is_main:
            log(f"resumed from {last} at step {start}")
    net = (
        DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if world.world_size > 1
        else model
    )
    if world.is_main and start == 0:
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        log(
            f"{config.name}: x{config.scale}, {count_parameters(model):,} parameters, {world.world_size} "
            f"process(es) on {device}; {data.description}"
        )
    bar = Progress(config.iterations, start, progress and world.is_main)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    t0 = time.monotonic()
    best_rmse = best_validation_rmse(run_dir)

    def current_payload() -> dict:
        """The checkpoint of the model at the current step, with the time trained so far."""
        return checkpoint_payload(
            model,
            optimizer,
            scheduler,
            step,
            config,
            data.normalizer,
            data.bands,
            data.description,
            command,
            elapsed + time.monotonic() - t0,
        )

    for step in range(start + 1, config.iterations + 1):
        rng = np.random.default_rng([config.seed, world.rank, step])
        batch = {
            k: v.to(device, non_blocking=True) for k, v in data.sampler.batch(config.batch_size, rng).items()
        }
        net.train()
        with autocast:
            prediction = net(batch["lst"], batch["guidance"])
        loss = masked_l1(prediction.float(), batch["target"], batch["mask"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_value = loss.item()
        bar.update(step, loss_value, scheduler.get_last_lr()[0])
        record = None
        if step % config.val_interval == 0 or step == config.iterations:
            record = {
                "step": step,
                "loss": loss_value,
                "lr": scheduler.get_last_lr()[0],
                "seconds": time.monotonic() - t0,
            }
            if world.is_main and data.val:
                record["val"] = validate(model, data.val, data.normalizer, device)
                if record["val"]["rmse_k"] < best_rmse:
                    best_rmse = record["val"]["rmse_k"]
                    save_atomic(current_payload(), run_dir / CHECKPOINT_BEST)
        if step % config.checkpoint_interval == 0 or step == config.iterations:
            if world.is_main:
                payload = current_payload()
                save_atomic(payload, run_dir / f"step-{step}.pt")
                save_atomic(payload, last)
        if step == config.iterations:
            record = {**(record or {}), "replica_digests": replica_digests(model, world)}
        if record is not None and world.is_main:
            append_log(run_dir, record)
            if "val" in record:
                v = record["val"]
                log(
                    f"\nstep {step}: loss {record['loss']:.4f}, val RMSE {v['rmse_k']:.3f} K, MAE "
                    f"{v['mae_k']:.3f} K, "
                    f"bias {v['bias_k']:+.3f} K, CC {v['cc']:.3f}"
                )
    if world.world_size > 1:
        dist.barrier()
    return last


def best_validation_rmse(run_dir: Path) -> float:
    """The validation RMSE of ``best.pt`` in an earlier part of this run (inf when none)."""
    best = run_dir / CHECKPOINT_BEST
    if not best.is_file() or not (run_dir / LOG_FILE).is_file():
        return float("inf")
    step = int(load_checkpoint(best)["step"])
    for line in (run_dir / LOG_FILE).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("step") == step and "val" in record:
            return float(record["val"]["rmse_k"])
    return float("inf")


def environment_description() -> dict:
    """Hardware and software the weights were trained with, for the card."""
    info = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info

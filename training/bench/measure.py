"""What the speed and scene benchmarks share: the machine's attainable arithmetic peak, peak
memory, the backends this machine can run, and the network they time as a model package."""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path


def measure_peak_gflops(size: int = 2048, repeats: int = 20) -> float:
    """Best float32 GFLOP/s of ``repeats`` size x size matrix multiplies with PyTorch (all its
    threads): the attainable peak. The best, never a median: on a shared machine most multiplies
    are slowed by other work, and the peak is what the hardware does when it is free."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        timings.append(time.perf_counter() - start)
    return 2 * size**3 / min(timings) / 1e9


@dataclass
class MatmulPeak:
    """The machine's float32 matmul peak as the best rate of every multiply timed in this process:
    sampled between the runs it is compared with, so that one busy spell cannot lower it."""

    size: int = 2048
    best_gflops: float = 0.0
    multiplies: int = 0

    def sample(self, repeats: int = 10) -> float:
        """Time ``repeats`` more multiplies; the best rate so far."""
        self.best_gflops = max(self.best_gflops, measure_peak_gflops(self.size, repeats))
        self.multiplies += repeats
        return self.best_gflops

    def describe(self) -> str:
        return (
            f"{self.best_gflops:.1f} GFLOP/s (torch float32 {self.size}^3, best of {self.multiplies} "
            "multiplies in this process)"
        )


# One peak per benchmark process: every table's fraction is of the best rate seen in the whole run.
PEAK = MatmulPeak()


def spread(values: list[float], digits: int = 2) -> str:
    """``median (min-max)`` of repeated measurements."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def peak_rss_mib() -> float:
    """This process's resident-memory high-water mark. ``VmHWM`` rather than ``ru_maxrss``,
    which a child inherits from the parent it was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def available_backends() -> list[tuple[str, str]]:
    """(backend, device) pairs this machine runs: both backends on the CPU, and CUDA where present."""
    pairs = [("onnxruntime", "cpu"), ("torch", "cpu")]
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            pairs.append(("onnxruntime", "cuda"))
    except ImportError:
        pass
    import torch

    if torch.cuda.is_available():
        pairs.append(("torch", "cuda"))
    return pairs


def benchmark_package(
    folder: Path,
    name: str,
    scale: int,
    bands: list,
    lst_mean_kelvin: float,
    lst_std_kelvin: float,
    model: dict | None = None,
):
    """A seeded MoCoLSK-Net (the paper configuration unless ``model`` overrides it) for ``bands``
    (``engine.card.BandSpec``), exported as a package in ``folder``."""
    import torch

    from engine.model import MoCoLSKConfig, MoCoLSKNet

    from ..packaging import export_package

    torch.manual_seed(0)
    config = MoCoLSKConfig(scale=scale, guidance_channels=len(bands), **(model or {}))
    return export_package(MoCoLSKNet(config), folder, name, "bench", bands, lst_mean_kelvin, lst_std_kelvin)

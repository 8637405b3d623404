"""What the speed and scene benchmarks share: the machine's attainable arithmetic peak, peak
memory, the backends this machine can run, and the network they time as a model package."""

from __future__ import annotations

import resource
import time
from pathlib import Path


def measure_peak_gflops(size: int = 4096, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of a size x size matrix multiply with PyTorch: the attainable peak."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        timings.append(time.perf_counter() - start)
    return 2 * size**3 / min(timings) / 1e9


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

"""Inference backends: ONNX Runtime (CPU, CUDA) and PyTorch (CPU, CUDA).

Both take normalised arrays and return the normalised fine LST; device choice is explicit:
``auto`` prefers a usable GPU and says which device it picked, while ``cuda`` never falls
back to the CPU silently. On CUDA, precision ``auto`` runs float16/bfloat16 where the card
has it and a probe tile stays within ``GPU_TOLERANCE_K`` of float32. Opened backends are
kept (``CACHE_SIZE``) so that several scenes, or QGIS batch rows, load a model once.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import BackendError, PackageError, RuntimeMissing
from .gpu import nvidia_gpu_name
from .package import ModelPackage

BACKENDS = ("onnxruntime", "torch")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "float32", "float16", "bfloat16")
# A reduced-precision GPU path is chosen automatically only if it stays this close to float32.
GPU_TOLERANCE_K = 0.05
# Opened backends kept for reuse (QGIS batch rows, several scenes in one command).
CACHE_SIZE = 2


def install_hint(module: str) -> str:
    """The pip command that installs ``module`` (onnxruntime or torch) into this Python."""
    command = f"`{sys.executable} -m pip install {module}`"
    if module == "onnxruntime":
        return f"Install it into this Python: {command} (`onnxruntime-gpu` for an NVIDIA GPU)."
    return (
        f"Install it into this Python: {command} (see https://pytorch.org/get-started for the CUDA "
        "build), or choose the ONNX Runtime backend."
    )


class Backend(Protocol):
    device_description: str

    def run(self, lst_norm: np.ndarray, guidance_norm: np.ndarray) -> np.ndarray: ...


def _check_precision(precision: str) -> str:
    precision = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}.get(
        precision.lower(), precision.lower()
    )
    if precision not in PRECISIONS:
        raise BackendError(f"Precision {precision!r} is unknown; choose one of {', '.join(PRECISIONS)}.")
    return precision


def _check_device(device: str) -> str:
    device = {"gpu": "cuda"}.get(device.lower(), device.lower())
    if device not in DEVICES:
        raise BackendError(f"Device {device!r} is unknown; choose one of {', '.join(DEVICES)}.")
    return device


@dataclass
class OnnxRuntimeBackend:
    session: object
    device_description: str
    on_cuda: bool = False

    def run(self, lst_norm: np.ndarray, guidance_norm: np.ndarray) -> np.ndarray:
        lst = np.ascontiguousarray(lst_norm, np.float32)
        guidance = np.ascontiguousarray(guidance_norm, np.float32)
        if not self.on_cuda:
            return self.session.run([ONNX_OUTPUT], {"lst": lst, "guidance": guidance})[0]
        # IO binding: the output stays on the GPU until the one copy back, with no host staging.
        binding = self.session.io_binding()
        binding.bind_cpu_input("lst", lst)
        binding.bind_cpu_input("guidance", guidance)
        binding.bind_output(ONNX_OUTPUT, "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0].astype(np.float32)


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once): the thread count
    at which convolution kernels are fastest."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in allowed:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def cpu_session_options(ort, threads: int | None):
    """Session options for tiles on the CPU: one intra-op pool of one thread per physical
    core, no inter-op pool, full graph fusion, the arena kept, and no memory pattern: on a
    688 px tile of the bundled x4 model the pattern doubled peak RSS (1.9 GB vs 1.0 GB) and
    was no faster. The pool's threads sleep between kernels instead of spinning: on two cores
    shared with other work a spinning thread takes the core the busy one needs (704 px tile of
    the bundled x4 model: 0.87x the time)."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_mem_pattern = False
    options.enable_cpu_mem_arena = True
    options.intra_op_num_threads = int(threads) if threads else physical_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def float16_onnx(onnx_path: Path) -> bytes:
    """The model with float16 weights and arithmetic but float32 inputs and output."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    return model.SerializeToString()


def probe_inputs(scale: int, channels: int, fine_px: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A fixed normalised input tile for the reduced-precision accuracy check."""
    rng = np.random.default_rng(0)
    coarse = fine_px // scale
    lst = rng.normal(0, 1, (1, 1, coarse, coarse)).astype(np.float32)
    guidance = rng.normal(0, 1, (1, channels, fine_px, fine_px)).astype(np.float32)
    return lst, guidance


def difference_kelvin(reference: np.ndarray, reduced: np.ndarray, lst_std_kelvin: float) -> float:
    """Largest difference in Kelvin between a float32 and a reduced-precision output."""
    return float(np.abs(reference.astype(np.float64) - reduced.astype(np.float64)).max() * lst_std_kelvin)


def create_onnxruntime_backend(
    package: ModelPackage,
    device: str = "auto",
    threads: int | None = None,
    precision: str = "auto",
    onnx_path: Path | None = None,
) -> OnnxRuntimeBackend:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise RuntimeMissing(
            "onnxruntime",
            f"ONNX Runtime is not installed, so model {package.name!r} cannot run.",
            install_hint("onnxruntime"),
        ) from exc
    device = _check_device(device)
    precision = _check_precision(precision)
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise BackendError(
            f"A GPU was requested but this ONNX Runtime ({ort.__version__}) has no CUDA provider "
            f"(available: {', '.join(available)}). Install `onnxruntime-gpu` with a matching CUDA, "
            f"or choose device 'cpu' or 'auto'."
        )
    want_cuda = device == "cuda" or (device == "auto" and has_cuda)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if want_cuda else ["CPUExecutionProvider"]
    options = cpu_session_options(ort, threads)
    weights = Path(onnx_path or package.onnx_path)
    if onnx_path is None:
        session = _onnx_session(ort, package, options, providers)
    else:
        session = ort.InferenceSession(str(weights), sess_options=options, providers=providers)
    on_cuda = "CUDAExecutionProvider" in session.get_providers()
    if device == "cuda" and not on_cuda:
        raise BackendError(
            "A GPU was requested but ONNX Runtime could not start its CUDA provider (driver or "
            "CUDA/cuDNN libraries missing); choose device 'cpu' or 'auto', or fix the CUDA install."
        )
    if not on_cuda:
        if precision in ("float16", "bfloat16"):
            raise BackendError(
                f"Precision {precision} runs on a GPU only; on the CPU use precision 'float32' or 'auto'."
            )
        variant = "" if onnx_path is None else f", {weights.name}"
        return OnnxRuntimeBackend(
            session, f"onnxruntime CPU ({options.intra_op_num_threads} threads{variant})"
        )
    backend = OnnxRuntimeBackend(session, "onnxruntime CUDA float32", on_cuda=True)
    if precision == "float32":
        return backend
    if precision == "bfloat16":
        raise BackendError(
            "ONNX Runtime's CUDA provider runs float16, not bfloat16; choose 'float16' or 'auto'."
        )
    try:
        half = ort.InferenceSession(float16_onnx(weights), sess_options=options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - any conversion or load failure means: stay in float32
        if precision == "float16":
            raise BackendError(
                f"The float16 variant of {weights.name} could not be built or loaded: {exc}"
            ) from exc
        backend.device_description += f" (float16 unavailable: {exc})"
        return backend
    candidate = OnnxRuntimeBackend(half, "onnxruntime CUDA float16", on_cuda=True)
    return _reduced_if_accurate(backend, candidate, package, precision)


def _reduced_if_accurate(reference, candidate, package: ModelPackage, precision: str):
    """``candidate`` (reduced precision) when its output on a probe tile is within
    ``GPU_TOLERANCE_K`` of ``reference`` (float32 on the same device), else ``reference``;
    an explicitly requested precision is kept either way, with the measured difference."""
    lst, guidance = probe_inputs(package.card.scale, len(package.card.guidance_bands))
    error_k = difference_kelvin(
        reference.run(lst, guidance), candidate.run(lst, guidance), package.card.lst_std_kelvin
    )
    if error_k <= GPU_TOLERANCE_K or precision != "auto":
        candidate.device_description += f" ({error_k:.3f} K from float32 on a probe tile)"
        return candidate
    reference.device_description += (
        f" (reduced precision was {error_k:.3f} K from float32 on a probe tile, over {GPU_TOLERANCE_K} K)"
    )
    return reference


ONNX_INPUTS = ("lst", "guidance")
ONNX_OUTPUT = "lst_fine"


def _onnx_session(ort, package: ModelPackage, options, providers: list[str]):
    """An inference session on the package's ONNX file, or the engine's error naming the file and the fix."""
    source = f"Model package {package.name!r}: {package.onnx_path}"
    try:
        session = ort.InferenceSession(str(package.onnx_path), sess_options=options, providers=providers)
    except (
        Exception
    ) as exc:  # onnxruntime's errors (InvalidProtobuf, InvalidGraph, Fail) derive from Exception
        # ONNX Runtime's text is "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : <what happened>".
        reason = str(exc).strip().splitlines()[0].split(" : ")[-1] if str(exc).strip() else "no detail"
        raise PackageError(
            f"{source} is not a model ONNX Runtime can load ({type(exc).__name__}: {reason}); the file is "
            "damaged or not an ONNX model. Download or export the package again (`python -m training export`)."
        ) from exc
    inputs = tuple(i.name for i in session.get_inputs())
    outputs = tuple(o.name for o in session.get_outputs())
    if sorted(inputs) != sorted(ONNX_INPUTS) or ONNX_OUTPUT not in outputs:
        raise PackageError(
            f"{source} is not a MoCoLSK network (inputs {', '.join(inputs) or 'none'}, outputs "
            f"{', '.join(outputs) or 'none'}; expected inputs {', '.join(ONNX_INPUTS)} and output "
            f"{ONNX_OUTPUT}); export the package with `python -m training export`."
        )
    return session


@dataclass
class TorchBackend:
    model: object
    device: object
    device_description: str
    autocast_dtype: object = None

    def run(self, lst_norm: np.ndarray, guidance_norm: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            lst = torch.from_numpy(np.ascontiguousarray(lst_norm, np.float32)).to(self.device)
            guidance = torch.from_numpy(np.ascontiguousarray(guidance_norm, np.float32)).to(self.device)
            if self.autocast_dtype is None:
                return self.model(lst, guidance).float().cpu().numpy()
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                return self.model(lst, guidance).float().cpu().numpy()


def torch_reduced_dtype(torch, device, precision: str):
    """The autocast dtype for ``precision`` on a CUDA ``device`` (None: float32). ``auto``
    prefers bfloat16 where the card has it (Ampere and later), float16 on cards with tensor
    cores (compute capability 7.0 and later), else float32."""
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "float16":
        return torch.float16
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16 if torch.cuda.get_device_capability(device) >= (7, 0) else None


def create_torch_backend(
    package: ModelPackage, device: str = "auto", threads: int | None = None, precision: str = "auto"
) -> TorchBackend:
    try:
        import torch

        from .model import MoCoLSKConfig, MoCoLSKNet
    except ImportError as exc:
        raise RuntimeMissing(
            "torch", "PyTorch is not installed, so the PyTorch backend cannot run.", install_hint("torch")
        ) from exc
    device = _check_device(device)
    precision = _check_precision(precision)
    if package.torch_weights_path is None:
        raise BackendError(
            f"Model package {package.name!r} has no PyTorch weights "
            f"({package.card.torch_weights_file or 'none named'} "
            f"is not beside its card; the plugin zip ships ONNX weights only): use the ONNX Runtime "
            f"backend, or copy the .pt file from the repository's resources/models next to the card."
        )
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise BackendError(
            f"A GPU was requested but PyTorch {torch.__version__} sees no CUDA device; install a "
            f"CUDA build of PyTorch, or choose device 'cpu' or 'auto'."
        )
    if threads:
        torch.set_num_threads(int(threads))
    target = torch.device("cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu")
    model = MoCoLSKNet(MoCoLSKConfig.from_dict(package.card.hyperparameters))
    source = f"Model package {package.name!r}: {package.torch_weights_path.name}"
    try:
        state = torch.load(package.torch_weights_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise PackageError(
            f"{source} holds Python objects besides plain tensors, and such files are never loaded: they "
            "could run "
            f"code. Use the ONNX Runtime backend, or re-export the package with `python -m training export`."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise PackageError(
            f"{source} cannot be read as PyTorch weights ({exc}); the file is damaged. Use the ONNX Runtime "
            "backend, or download or export the package again (`python -m training export`)."
        ) from exc
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        expected, found = set(model.state_dict()), set(state) if isinstance(state, dict) else set()
        raise PackageError(
            f"{source} does not hold the weights its card describes ({len(expected - found)} of "
            f"{len(expected)} "
            f"tensors missing, {len(found - expected)} unexpected, or shapes differ); re-export the package "
            "with "
            f"`python -m training export`."
        ) from exc
    model = model.eval().to(target)
    if target.type != "cuda":
        if precision in ("float16", "bfloat16"):
            raise BackendError(
                f"Precision {precision} runs on a GPU only; on the CPU use precision 'float32' or 'auto'."
            )
        return TorchBackend(model, target, f"torch CPU ({torch.get_num_threads()} threads)")
    name = torch.cuda.get_device_name(target)
    backend = TorchBackend(model, target, f"torch CUDA float32 ({name})")
    dtype = torch_reduced_dtype(torch, target, precision)
    if dtype is None:
        return backend
    label = str(dtype).removeprefix("torch.")
    candidate = TorchBackend(model, target, f"torch CUDA {label} autocast ({name})", autocast_dtype=dtype)
    return _reduced_if_accurate(backend, candidate, package, precision)


_cache: OrderedDict = OrderedDict()


def backend_cache_key(
    package: ModelPackage, backend: str, device: str, threads, precision, onnx_path
) -> tuple:
    """What makes two opened backends interchangeable: the package file and its checksums,
    backend, device, threads, precision and weights variant."""
    card = package.card
    return (
        str(Path(package.card_path).resolve()),
        card.weights_sha256,
        card.torch_weights_sha256 if backend == "torch" else None,
        backend,
        device,
        threads,
        precision,
        str(onnx_path) if onnx_path else None,
    )


def clear_backend_cache() -> None:
    """Forget every opened backend (frees their memory)."""
    _cache.clear()


def describe_runtime(backend: str = "onnxruntime", device: str = "auto", threads: int | None = None) -> str:
    """Which backend and device a run with these settings would use, said before any model is
    opened, e.g. "ONNX Runtime CUDA on NVIDIA H100" or "ONNX Runtime CPU, 2 threads"."""
    device = _check_device(device)
    cpu_threads = f"{threads or os.cpu_count()} threads"
    if backend == "onnxruntime":
        try:
            import onnxruntime as ort
        except ImportError:
            return "ONNX Runtime is not installed (the classic methods need none)"
        has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        if device == "cuda" and not has_cuda:
            return f"ONNX Runtime {ort.__version__} has no CUDA provider: a GPU run would stop"
        if has_cuda and device != "cpu":
            return f"ONNX Runtime CUDA on {nvidia_gpu_name() or 'an NVIDIA GPU'}"
        return f"ONNX Runtime CPU, {cpu_threads}"
    if backend == "torch":
        try:
            import torch
        except ImportError:
            return "PyTorch is not installed"

        has_cuda = torch.cuda.is_available()
        if device == "cuda" and not has_cuda:
            return f"PyTorch {torch.__version__} sees no CUDA device: a GPU run would stop"
        if has_cuda and device != "cpu":
            return f"PyTorch CUDA on {torch.cuda.get_device_name(0)}"
        return f"PyTorch CPU, {threads or torch.get_num_threads()} threads"
    raise BackendError(f"Backend {backend!r} is unknown; choose one of {', '.join(BACKENDS)}.")


def create_backend(
    package: ModelPackage,
    backend: str = "onnxruntime",
    device: str = "auto",
    threads: int | None = None,
    precision: str = "auto",
    onnx_path: Path | None = None,
    reuse: bool = True,
) -> Backend:
    """Open ``package`` on the chosen backend and device, or return the one opened last time
    with the same key (``reuse``): the last ``CACHE_SIZE`` are kept."""
    key = backend_cache_key(package, backend, device, threads, precision, onnx_path)
    if reuse and key in _cache:
        _cache.move_to_end(key)
        if backend == "torch" and threads:
            import torch

            torch.set_num_threads(int(threads))
        return _cache[key]
    if backend == "onnxruntime":
        opened = create_onnxruntime_backend(package, device, threads, precision, onnx_path)
    elif backend == "torch":
        if onnx_path is not None:
            raise BackendError("An ONNX weights variant runs on the ONNX Runtime backend only.")
        opened = create_torch_backend(package, device, threads, precision)
    else:
        raise BackendError(f"Backend {backend!r} is unknown; choose one of {', '.join(BACKENDS)}.")
    if reuse:
        _cache[key] = opened
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return opened

"""Inference backends: ONNX Runtime (CPU, CUDA) and PyTorch (CPU, CUDA).

Both take normalised arrays and return the normalised fine LST; device choice is explicit:
``auto`` prefers a usable GPU and says which device it picked, while ``cuda`` never falls
back to the CPU silently.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .errors import BackendError, PackageError, RuntimeMissing
from .package import ModelPackage

BACKENDS = ("onnxruntime", "torch")
DEVICES = ("auto", "cpu", "cuda")


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


def _check_device(device: str) -> str:
    device = {"gpu": "cuda"}.get(device.lower(), device.lower())
    if device not in DEVICES:
        raise BackendError(f"Device {device!r} is unknown; choose one of {', '.join(DEVICES)}.")
    return device


@dataclass
class OnnxRuntimeBackend:
    session: object
    device_description: str

    def run(self, lst_norm: np.ndarray, guidance_norm: np.ndarray) -> np.ndarray:
        feeds = {
            "lst": np.ascontiguousarray(lst_norm, np.float32),
            "guidance": np.ascontiguousarray(guidance_norm, np.float32),
        }
        return self.session.run([ONNX_OUTPUT], feeds)[0]


def create_onnxruntime_backend(
    package: ModelPackage, device: str = "auto", threads: int | None = None
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
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    session = _onnx_session(ort, package, options, providers)
    on_cuda = "CUDAExecutionProvider" in session.get_providers()
    if device == "cuda" and not on_cuda:
        raise BackendError(
            "A GPU was requested but ONNX Runtime could not start its CUDA provider (driver or "
            "CUDA/cuDNN libraries missing); choose device 'cpu' or 'auto', or fix the CUDA install."
        )
    if on_cuda:
        description = "onnxruntime CUDA"
    else:
        description = f"onnxruntime CPU ({threads or 'default'} threads)"
    return OnnxRuntimeBackend(session=session, device_description=description)


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

    def run(self, lst_norm: np.ndarray, guidance_norm: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            lst = torch.from_numpy(np.ascontiguousarray(lst_norm, np.float32)).to(self.device)
            guidance = torch.from_numpy(np.ascontiguousarray(guidance_norm, np.float32)).to(self.device)
            return self.model(lst, guidance).float().cpu().numpy()


def create_torch_backend(
    package: ModelPackage, device: str = "auto", threads: int | None = None
) -> TorchBackend:
    try:
        import torch

        from .model import MoCoLSKConfig, MoCoLSKNet
    except ImportError as exc:
        raise RuntimeMissing(
            "torch", "PyTorch is not installed, so the PyTorch backend cannot run.", install_hint("torch")
        ) from exc
    device = _check_device(device)
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
    if target.type == "cuda":
        description = f"torch CUDA ({torch.cuda.get_device_name(target)})"
    else:
        description = f"torch CPU ({torch.get_num_threads()} threads)"
    return TorchBackend(model=model, device=target, device_description=description)


def nvidia_gpu_name() -> str | None:
    """The first GPU ``nvidia-smi -L`` lists (e.g. "NVIDIA H100 80GB HBM3"), or None."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listed.stdout.splitlines():
        if line.startswith("GPU "):
            return line.split(":", 1)[1].split("(UUID")[0].strip()
    return None


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
    package: ModelPackage, backend: str = "onnxruntime", device: str = "auto", threads: int | None = None
) -> Backend:
    """Open ``package`` on the chosen backend and device."""
    if backend == "onnxruntime":
        return create_onnxruntime_backend(package, device, threads)
    if backend == "torch":
        return create_torch_backend(package, device, threads)
    raise BackendError(f"Backend {backend!r} is unknown; choose one of {', '.join(BACKENDS)}.")

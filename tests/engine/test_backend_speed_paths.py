"""Backend choices made for speed: CPU session options, reuse of opened models, and the
reduced-precision GPU paths (the `gpu` tests run wherever a CUDA device is present)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.backends import clear_backend_cache, create_backend, physical_cores
from engine.errors import BackendError
from engine.inference import Downscaler
from engine.package import resolve_package

HAS_CUDA = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")


def test_cpu_session_runs_one_sleeping_thread_per_physical_core_without_an_inter_op_pool_or_memory_pattern(
    tiny_package_x4,
):
    backend = create_backend(tiny_package_x4, "onnxruntime", device="cpu", reuse=False)
    options = backend.session.get_session_options()
    assert options.intra_op_num_threads == physical_cores() >= 1
    assert options.inter_op_num_threads == 1
    assert options.enable_cpu_mem_arena and not options.enable_mem_pattern
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert f"{physical_cores()} threads" in backend.device_description


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_opening_the_same_package_again_reuses_the_loaded_model(tiny_package_x4, backend):
    clear_backend_cache()
    first = create_backend(tiny_package_x4, backend, device="cpu", threads=1)
    assert create_backend(tiny_package_x4, backend, device="cpu", threads=1) is first
    assert create_backend(tiny_package_x4, backend, device="cpu", threads=2) is not first
    assert create_backend(tiny_package_x4, backend, device="cpu", threads=1, reuse=False) is not first


def test_a_package_with_other_weights_at_the_same_path_is_opened_afresh(tmp_path):
    from tests.conftest import make_tiny_package

    clear_backend_cache()
    package = make_tiny_package(tmp_path / "pkg", seed=0)
    first = Downscaler(package.card_path, device="cpu", threads=1)
    replaced = make_tiny_package(tmp_path / "pkg", seed=1)
    assert replaced.card_path == package.card_path
    second = Downscaler(replaced.card_path, device="cpu", threads=1)
    assert second.backend is not first.backend
    lst, guidance = np.full((4, 4), 295, np.float32), np.full((6, 16, 16), 0.15, np.float32)
    assert not np.allclose(first.predict_kelvin(lst, guidance), second.predict_kelvin(lst, guidance))


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_reduced_precision_on_the_cpu_is_refused_with_the_fix(tiny_package_x4, backend, precision):
    with pytest.raises(BackendError, match="runs on a GPU only.*'float32' or 'auto'"):
        create_backend(tiny_package_x4, backend, device="cpu", precision=precision, reuse=False)


def test_an_unknown_precision_is_refused(tiny_package_x4):
    with pytest.raises(BackendError, match="Precision 'int4' is unknown"):
        create_backend(tiny_package_x4, "onnxruntime", device="cpu", precision="int4", reuse=False)


def bundled_tile(scale: int = 4, fine_px: int = 256):
    """A realistic tile for the bundled x4 model: a smooth LST field and guidance at the band means."""
    package = resolve_package("mocolsk-x4-landsat-light")
    rng = np.random.default_rng(0)
    coarse = fine_px // scale
    yy, xx = np.mgrid[0:coarse, 0:coarse] / coarse
    lst = (298 + 6 * np.sin(5 * yy) * np.cos(3 * xx)).astype(np.float32)
    guidance = np.stack(
        [b.mean + b.std * rng.normal(0, 1, (fine_px, fine_px)) for b in package.card.guidance_bands]
    ).astype(np.float32)
    return package, lst, guidance


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
@pytest.mark.parametrize("precision", ["auto", "float32"])
def test_cuda_output_matches_the_cpu_within_five_hundredths_of_a_kelvin(backend, precision):
    package, lst, guidance = bundled_tile()
    if backend == "onnxruntime":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            pytest.skip("this ONNX Runtime has no CUDA provider (install onnxruntime-gpu)")
    cpu = Downscaler(package, backend=backend, device="cpu").predict_kelvin(lst, guidance)
    gpu = Downscaler(package, backend=backend, device="cuda", precision=precision)
    assert "CUDA" in gpu.device_description
    assert np.abs(gpu.predict_kelvin(lst, guidance) - cpu).max() <= 0.05


@pytest.mark.gpu
@needs_gpu
def test_auto_precision_on_cuda_says_which_precision_it_chose():
    package, _, _ = bundled_tile()
    description = Downscaler(package, backend="torch", device="cuda").device_description
    assert any(p in description for p in ("bfloat16", "float16", "float32"))

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from engine.backends import create_backend, describe_runtime
from engine.card import BandSpec
from engine.errors import BackendError
from engine.inference import Downscaler
from engine.model import MoCoLSKConfig, MoCoLSKNet
from tests.conftest import REPO
from training.packaging import export_package

GROKLST_BANDS = [
    BandSpec("dem", "m", 2569.38, 1254.35),
    BandSpec("deepblue", "reflectance", 0.17, 0.05),
    BandSpec("blue", "reflectance", 0.16, 0.04),
    BandSpec("green", "reflectance", 0.15, 0.04),
    BandSpec("red", "reflectance", 0.17, 0.05),
    BandSpec("vre", "reflectance", 0.20, 0.06),
    BandSpec("nir", "reflectance", 0.22, 0.06),
    BandSpec("ndmvi", "index", 0.19, 0.13),
    BandSpec("ndvi", "index", 0.14, 0.10),
    BandSpec("ndwi", "index", -0.19, 0.12),
]
FINE_PX = 256  # the tile the scene pipeline feeds the network (7.7 km at 30 m)


def realistic_inputs(scale, rng):
    coarse = FINE_PX // scale
    yy, xx = np.mgrid[0:coarse, 0:coarse] / coarse
    lst_kelvin = (290 + 8 * np.sin(6 * yy) * np.cos(4 * xx) + rng.normal(0, 0.5, (coarse, coarse))).astype(
        np.float32
    )
    guidance = np.stack(
        [b.mean + b.std * rng.normal(0, 1, (FINE_PX, FINE_PX)) for b in GROKLST_BANDS]
    ).astype(np.float32)
    return lst_kelvin, guidance


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_onnx_and_torch_agree_within_a_millikelvin_on_real_sized_tiles(scale, tmp_path):
    torch.manual_seed(scale)
    package = export_package(
        MoCoLSKNet(MoCoLSKConfig(scale=scale)), tmp_path, f"paper_x{scale}", "0", GROKLST_BANDS, 282.51, 14.59
    )
    lst_kelvin, guidance = realistic_inputs(scale, np.random.default_rng(scale))
    via_onnx = Downscaler(package, backend="onnxruntime", device="cpu").predict_kelvin(lst_kelvin, guidance)
    via_torch = Downscaler(package, backend="torch", device="cpu").predict_kelvin(lst_kelvin, guidance)
    assert via_onnx.shape == (FINE_PX, FINE_PX)
    assert np.isfinite(via_onnx).all()
    assert np.abs(via_onnx - via_torch).max() < 1e-3


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_asking_for_an_absent_gpu_is_an_error_not_a_fallback(tiny_package_x4, backend):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BackendError, match="GPU was requested"):
        create_backend(tiny_package_x4, backend, device="cuda")


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_auto_device_says_what_it_picked(tiny_package_x4, backend):
    description = create_backend(tiny_package_x4, backend, device="auto").device_description
    expected = "CUDA" if torch.cuda.is_available() else "CPU"
    assert description.startswith(backend) and expected in description


def test_thread_count_reaches_onnxruntime(tiny_package_x4):
    backend = create_backend(tiny_package_x4, "onnxruntime", device="cpu", threads=1)
    assert backend.session.get_session_options().intra_op_num_threads == 1
    assert "1 threads" in backend.device_description


def test_unknown_backend_and_device_are_refused(tiny_package_x4):
    with pytest.raises(BackendError, match="Backend 'tensorflow' is unknown"):
        create_backend(tiny_package_x4, "tensorflow")
    with pytest.raises(BackendError, match="Device 'tpu' is unknown"):
        create_backend(tiny_package_x4, "onnxruntime", device="tpu")


def test_guidance_of_the_wrong_shape_names_the_expected_bands(tiny_package_x4):
    downscaler = Downscaler(tiny_package_x4, device="cpu")
    with pytest.raises(Exception, match="bands blue, green, red, nir, swir1, swir2"):
        downscaler.predict_kelvin(np.full((4, 4), 290, np.float32), np.zeros((5, 16, 16), np.float32))


def run_with_modules_hidden(hidden, code):
    """Run ``code`` in a fresh interpreter in which importing ``hidden`` modules fails."""
    blocker = textwrap.dedent(
        f"""
        import sys
        class _Hide:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {tuple(hidden)!r}:
                    raise ImportError('hidden for this test: ' + name)
        sys.meta_path.insert(0, _Hide())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_engine_runs_an_onnx_package_without_torch(tiny_package_x4):
    result = run_with_modules_hidden(
        ["torch"],
        f"""
        import sys, numpy as np
        from engine.inference import Downscaler
        d = Downscaler({str(tiny_package_x4.card_path)!r}, device="cpu")
        out = d.predict_kelvin(np.full((4, 5), 295, np.float32), np.full((6, 16, 20), 0.15, np.float32))
        assert "torch" not in sys.modules
        print(out.shape, float(np.abs(out - 295).max()) < 50)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(16, 20) True"


def test_missing_onnxruntime_explains_what_to_install(tiny_package_x4):
    result = run_with_modules_hidden(
        ["onnxruntime"],
        f"""
        from engine.errors import BackendError
        from engine.inference import Downscaler
        try:
            Downscaler({str(tiny_package_x4.card_path)!r})
        except BackendError as exc:
            print(exc)
        """,
    )
    assert "ONNX Runtime is not installed" in result.stdout
    assert (
        f"{sys.executable} -m pip install onnxruntime" in result.stdout and "onnxruntime-gpu" in result.stdout
    )


def test_the_runtime_is_described_before_any_model_is_opened():
    import onnxruntime

    has_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    if has_cuda:
        assert describe_runtime().startswith("ONNX Runtime CUDA on ")
    else:
        assert describe_runtime("onnxruntime", "auto") == f"ONNX Runtime CPU, {os.cpu_count()} threads"
        assert describe_runtime("onnxruntime", "cuda").endswith("has no CUDA provider: a GPU run would stop")
    assert describe_runtime("onnxruntime", "cpu", threads=3) == "ONNX Runtime CPU, 3 threads"
    expected_torch = "PyTorch CUDA on " if torch.cuda.is_available() else "PyTorch CPU, 2 threads"
    assert describe_runtime("torch", "auto", threads=2).startswith(expected_torch)
    with pytest.raises(BackendError, match="Backend 'tensorflow' is unknown"):
        describe_runtime("tensorflow")


def test_a_missing_runtime_is_described_as_missing():
    result = run_with_modules_hidden(
        ["onnxruntime", "torch"],
        """
        from engine.backends import describe_runtime
        print(describe_runtime("onnxruntime"))
        print(describe_runtime("torch"))
        """,
    )
    assert result.stdout.splitlines() == [
        "ONNX Runtime is not installed (the classic methods need none)",
        "PyTorch is not installed",
    ], result.stderr


class _Payload:
    """Any object that is not a tensor: what a malicious .pt would carry."""


def repackaged_with(package, tmp_path, state) -> object:
    """A copy of ``package`` whose .pt holds ``state``, its card checksum updated so only the content is at fault."""
    import json
    import shutil

    from engine.package import load_package, sha256_of_file

    folder = tmp_path / "repackaged"
    folder.mkdir()
    for path in (package.card_path, package.onnx_path, package.torch_weights_path):
        shutil.copy(path, folder / path.name)
    torch.save(state, folder / package.torch_weights_path.name)
    card = json.loads((folder / package.card_path.name).read_text())
    card["torch_weights_sha256"] = sha256_of_file(folder / package.torch_weights_path.name)
    (folder / package.card_path.name).write_text(json.dumps(card))
    return load_package(folder / package.card_path.name)


def test_a_pt_with_a_pickle_payload_is_refused_without_advice_to_unpickle(tiny_package_x4, tmp_path):
    from engine.errors import PackageError

    package = repackaged_with(tiny_package_x4, tmp_path, {"weights": _Payload()})
    with pytest.raises(PackageError, match="never loaded: they could run code") as caught:
        create_backend(package, "torch", "cpu")
    assert "weights_only=False" not in str(caught.value) and package.torch_weights_path.name in str(
        caught.value
    )


def test_a_pt_with_other_weights_names_the_file_and_the_fix(tiny_package_x4, tmp_path):
    from engine.errors import PackageError

    package = repackaged_with(tiny_package_x4, tmp_path, {"unrelated": torch.zeros(3)})
    with pytest.raises(
        PackageError, match="does not hold the weights its card describes.*python -m training export"
    ):
        create_backend(package, "torch", "cpu")


def cuda_available(backend: str) -> bool:
    if backend == "torch":
        return torch.cuda.is_available()
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_a_gpu_predicts_what_the_cpu_predicts_within_a_hundredth_of_a_kelvin(backend, tmp_path):
    if not cuda_available(backend):
        pytest.skip(f"no CUDA device for {backend} on this machine")
    torch.manual_seed(4)
    package = export_package(
        MoCoLSKNet(MoCoLSKConfig(scale=4)), tmp_path, "paper_x4", "0", GROKLST_BANDS, 282.51, 14.59
    )
    lst_kelvin, guidance = realistic_inputs(4, np.random.default_rng(4))
    on_gpu = Downscaler(package, backend=backend, device="cuda")
    assert "CUDA" in on_gpu.device_description
    via_gpu = on_gpu.predict_kelvin(lst_kelvin, guidance)
    via_cpu = Downscaler(package, backend=backend, device="cpu").predict_kelvin(lst_kelvin, guidance)
    assert np.isfinite(via_gpu).all()
    assert np.abs(via_gpu - via_cpu).max() < 1e-2

import json
import shutil

import numpy as np
import pytest

from engine.card import ModelCard
from engine.errors import PackageError
from engine.package import bundled_packages, load_package, resolve_package


@pytest.fixture
def package_copy(tiny_package_x4, tmp_path):
    for path in tiny_package_x4.card_path.parent.glob("tiny_x4.*"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / "tiny_x4.json"


def test_card_round_trips_through_json(tiny_package_x4):
    card = tiny_package_x4.card
    assert ModelCard.from_json(card.to_json()) == card
    assert card.guidance_band_names == ("blue", "green", "red", "nir", "swir1", "swir2")
    assert card.hyperparameters["scale"] == card.scale == 4


def test_package_loads_from_either_file(package_copy):
    assert load_package(package_copy).onnx_path == load_package(package_copy.with_suffix(".onnx")).onnx_path


def test_corrupted_weights_are_refused(package_copy):
    onnx_path = package_copy.with_suffix(".onnx")
    data = bytearray(onnx_path.read_bytes())
    data[-10] ^= 0xFF
    onnx_path.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="checksum of tiny_x4.onnx .* corrupted or was replaced"):
        load_package(package_copy)


def test_missing_card_is_refused(package_copy):
    package_copy.unlink()
    with pytest.raises(PackageError, match="card .* not found"):
        load_package(package_copy.with_suffix(".onnx"))


def test_card_missing_a_field_is_refused(package_copy):
    values = json.loads(package_copy.read_text())
    del values["lst_std_kelvin"]
    package_copy.write_text(json.dumps(values))
    with pytest.raises(PackageError, match="lacks the field.* lst_std_kelvin"):
        load_package(package_copy)


def test_card_whose_band_list_contradicts_the_network_is_refused(package_copy):
    values = json.loads(package_copy.read_text())
    values["guidance_bands"] = values["guidance_bands"][:5]
    package_copy.write_text(json.dumps(values))
    with pytest.raises(PackageError, match="guidance_channels is 6 but 5 guidance bands"):
        load_package(package_copy)


def test_missing_weights_file_is_refused(package_copy):
    package_copy.with_suffix(".onnx").unlink()
    with pytest.raises(PackageError, match="'tiny_x4.onnx' named by the card is not beside it"):
        load_package(package_copy)


def test_unknown_model_name_lists_the_bundled_ones():
    with pytest.raises(PackageError, match="neither a bundled package"):
        resolve_package("no-such-model")


def test_bundled_packages_verify():
    for name, path in bundled_packages().items():
        package = load_package(path)
        assert package.name == name
        assert np.isfinite(package.card.lst_mean_kelvin)


def test_package_without_its_pytorch_weights_runs_on_onnxruntime_and_says_so_for_torch(package_copy):
    from engine.backends import create_backend
    from engine.errors import BackendError

    package_copy.with_suffix(".pt").unlink()
    package = load_package(package_copy)
    assert package.torch_weights_path is None
    create_backend(package, "onnxruntime", device="cpu")
    with pytest.raises(BackendError, match="no PyTorch weights .*use the ONNX Runtime backend"):
        create_backend(package, "torch", device="cpu")


def test_corrupted_pytorch_weights_are_refused(package_copy):
    package_copy.with_suffix(".pt").write_bytes(b"not the weights")
    with pytest.raises(PackageError, match="checksum of tiny_x4.pt"):
        load_package(package_copy)

"""How well the "Uncertainty (K)" layer is calibrated, measured as the plugin computes it.

``python -m training.uncertainty --scale 4`` takes the bundled package at that scale and the
test scenes of its data config (``"role": "test"``), under the native-resolution protocol
(truth = the thermal band at its sensor's native pixel). For MoCoLSK the uncertainty is the
spread of the 8 orientations of the input (test-time augmentation), for DMS the spread of its
bagged trees; both come from the engine's array core (``engine.core``), which bounds (networks)
and conserves every member like the output, exactly as the plugin writes the layer.

A single factor on the spread is fitted on the validation blocks (native view) so that 68.3 %
of their errors fall within one sigma; the test scenes only measure. ``--write-card`` records
the result in the package's card (``uncertainty_calibration``), which the engine then applies.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.classic import Dms
from engine.core import ArrayMethod, NetworkSharpener, WindowMethod
from engine.uncertainty import calibration, fit_sigma_scale

from .datasets import Sample, sample_from_fine
from .evaluate import as_run
from .protocol import protocol_view

PROTOCOL = "native"


MethodFor = Callable[[Sample], WindowMethod]


def mocolsk_method(downscaler) -> MethodFor:
    """MoCoLSK through the engine (its 8 orientations are the ensemble), the raw spread."""
    method = ArrayMethod(NetworkSharpener(downscaler))
    return lambda sample: method


def dms_method(scale: int) -> MethodFor:
    """DMS fitted on each sample's own coarse pixels, as the plugin fits it on a scene."""
    return lambda sample: ArrayMethod(Dms(scale, channels=len(sample.guidance)))


def errors_and_sigmas(samples: list[Sample], method_for: MethodFor) -> tuple[np.ndarray, np.ndarray]:
    """Errors of the written output and the raw spread of the members (each bounded and conserved
    like the output), over every scored pixel of ``samples``, both from the engine's array core as
    the plugin computes them."""
    errors, sigmas = [], []
    for sample in samples:
        result = as_run(method_for(sample), sample, uncertainty=True)
        mask = sample.mask
        errors.append((result.fine_kelvin - sample.fine_kelvin)[mask])
        sigmas.append(result.sigma_kelvin[mask])
    return np.concatenate(errors), np.concatenate(sigmas)


def measure(method_for: MethodFor, validation: list[Sample], test: list[Sample]) -> dict:
    val_error, val_sigma = errors_and_sigmas(validation, method_for)
    test_error, test_sigma = errors_and_sigmas(test, method_for)
    factor = fit_sigma_scale(val_error, val_sigma)
    return {
        "sigma_scale": round(factor, 4),
        "validation_raw": calibration(val_error, val_sigma).to_dict(),
        "test_raw": calibration(test_error, test_sigma).to_dict(),
        "test_scaled": calibration(test_error, factor * test_sigma).to_dict(),
        "test_mean_sigma_k": round(float(factor * test_sigma.mean()), 4),
        "test_rmse_k": round(float(np.sqrt(np.mean(test_error**2))), 4),
    }


def calibrate(scale: int, methods: tuple[str, ...], threads: int | None, log=print) -> tuple[object, dict]:
    from engine.inference import Downscaler

    from .bench.accuracy import bundled_package_for, held_out_config
    from .sources import build_training_data

    package = bundled_package_for(scale, log)
    if package is None:
        raise SystemExit(f"no bundled package at x{scale}")
    config = held_out_config(scale, package)
    with tempfile.TemporaryDirectory() as work:
        data = build_training_data(config, Path(work))
    validation = [s for s in data.val if "@native" in s.name]
    test = []
    for scene in data.test_scenes:
        view = protocol_view(scene, PROTOCOL)
        test.append(sample_from_fine(view.name, view.lst_kelvin, view.guidance, scale))
    described = {
        "protocol": PROTOCOL,
        "test_scenes": [s.name for s in data.test_scenes],
        "validation_blocks": len(validation),
    }
    results = {}
    if "mocolsk" in methods:
        downscaler = Downscaler(package, backend="onnxruntime", device="cpu", threads=threads)
        results["mocolsk"] = {
            "uncertainty": "spread of the 8 orientations (test-time augmentation)",
            **measure(mocolsk_method(downscaler), validation, test),
        }
        log(f"x{scale} MoCoLSK: {json.dumps(results['mocolsk'])}")
    if "dms" in methods:
        results["dms"] = {
            "uncertainty": "spread of the bagged regression trees",
            **measure(dms_method(scale), validation, test),
        }
        log(f"x{scale} DMS: {json.dumps(results['dms'])}")
    return package, {**described, **results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.uncertainty", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--methods", default="mocolsk,dms", help="comma separated: mocolsk, dms")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--write-card", action="store_true", help="record the result in the bundled card")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    package, result = calibrate(args.scale, tuple(args.methods.split(",")), args.threads)
    result["command"] = "python -m training.uncertainty " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.write_card and "mocolsk" in result:
        card = json.loads(package.card_path.read_text())
        card["uncertainty_calibration"] = {key: value for key, value in result.items() if key not in ("dms",)}
        package.card_path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"card: {package.card_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

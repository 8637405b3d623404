"""Command line: ``python -m engine downscale | info | evaluate``.

Errors end the program with one line on stderr and a non-zero exit code: 1 for a problem
with the inputs, model or backend, 2 for bad usage, 3 for an unexpected failure (rerun
with --debug for the traceback), 130 when interrupted (Ctrl-C, SIGINT) and 143 when
terminated (SIGTERM: `timeout`, job schedulers, a closing terminal). Either signal cancels
the run in progress, which removes its scratch files and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .card import accuracy_summary
from .classic import CLASSIC_METHODS
from .errors import Cancelled, EngineError, InputError
from .masks import QA_MASK_KINDS
from .units import LST_UNITS, OUTPUT_UNITS

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNEXPECTED, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 3, 130, 143
STOP_SIGNALS = {
    signal.SIGINT: ("interrupted", EXIT_INTERRUPTED),
    signal.SIGTERM: ("terminated", EXIT_TERMINATED),
}


class UsageError(Exception):
    """Arguments that do not fit together (exit code 2, like argparse's own errors)."""


class Terminated(Exception):
    """SIGTERM arrived outside a run (exit code 143)."""


class StopSignals:
    """SIGINT and SIGTERM while this is entered: recorded, so that the run in progress cancels itself at
    its next check (and cleans up) instead of dying with its scratch files in place."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def __enter__(self) -> StopSignals:
        self.previous = {number: signal.signal(number, self._record) for number in STOP_SIGNALS}
        return self

    def __exit__(self, *_) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _record(self, number: int, _frame) -> None:
        self.received.append(number)

    def __bool__(self) -> bool:
        return bool(self.received)


class Stopped(Exception):
    """A run cancelled by SIGINT or SIGTERM; says which, for the message and the exit code."""

    def __init__(self, signal_number: int, cancelled: Cancelled):
        super().__init__(
            f"{STOP_SIGNALS[signal_number][0]} ({signal.Signals(signal_number).name}); {cancelled}"
        )
        self.signal_number = signal_number


def _raise_terminated(_number: int, _frame) -> None:
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Downscale land surface temperature with MoCoLSK."
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    down = commands.add_parser("downscale", help="downscale an LST raster onto the guidance grid")
    down.add_argument("--lst", help="coarse LST raster (any GDAL format)")
    down.add_argument("--lst-band", type=int, default=1, help="LST band number (default 1)")
    down.add_argument(
        "--lst-units", choices=LST_UNITS, default="auto", help="units of the LST values (default auto)"
    )
    down.add_argument("--qa-mask", help="cloud/QA raster on the LST grid; masked pixels are excluded")
    down.add_argument(
        "--qa-kind",
        choices=QA_MASK_KINDS,
        default="auto",
        help="how to read the QA raster: nonzero = masked, or Landsat QA_PIXEL bits (default auto)",
    )
    down.add_argument(
        "--qa-grow",
        type=int,
        default=0,
        metavar="PX",
        help="grow the QA mask by PX LST pixels to cover cloud edges and thin cirrus (0-50, default 0)",
    )
    down.add_argument(
        "--native-pixel-m",
        type=float,
        metavar="M",
        help="the pixel the LST's sensor saw, in metres, when it was delivered on a finer grid (e.g. 100 for a "
        "Landsat 8/9 ST_B10 on the 30 m grid); default: from the product name or MTL, else the LST's pixel",
    )
    down.add_argument("--guidance", nargs="+", help="fine guidance raster(s); their grid is the output grid")
    down.add_argument(
        "--pair",
        nargs=2,
        action="append",
        metavar=("LST", "GUIDANCE"),
        help="one scene of several (repeat; outputs go to --out-dir): the model is loaded once",
    )
    down.add_argument("--folder", help="folder of scenes, paired by --lst-pattern and --guidance-pattern")
    down.add_argument("--lst-pattern", help="LST file names in --folder with one *, e.g. '*_lst.tif'")
    down.add_argument(
        "--guidance-pattern",
        help="guidance file names with one *, the same text as the LST's, e.g. '*_refl.tif'",
    )
    down.add_argument("--out-dir", help="folder for the outputs of --pair/--folder: LSTNAME_downscaled.tif")
    down.add_argument(
        "--bands", help="comma-separated names of the guidance bands in the order given, e.g. red,nir"
    )
    down.add_argument(
        "--method",
        choices=("mocolsk", "blend", *CLASSIC_METHODS, "auto"),
        default="blend",
        help="blend: MoCoLSK and the classic methods averaged with the model card's cross-validated weights; "
        "auto: the method that best rebuilds the LST from a once-more coarsened copy (self-check)",
    )
    down.add_argument(
        "--model",
        default="auto",
        help="bundled model name or package path (NAME.json) for mocolsk; default auto: the bundled "
        "model whose scale matches the LST/guidance pixel ratio",
    )
    down.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime")
    down.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    down.add_argument("--threads", type=int, help="CPU threads for inference")
    down.add_argument(
        "--tile-size", type=int, default=512, help="tile core size in output pixels (default 512)"
    )
    down.add_argument("--no-conserve", action="store_true", help="skip the coarse-pixel residual correction")
    down.add_argument("--output-units", choices=OUTPUT_UNITS, default="kelvin")
    down.add_argument(
        "--out", help="output raster (one scene): .tif GeoTIFF, or .nc netCDF, .img Erdas Imagine"
    )
    down.add_argument(
        "--uncertainty",
        metavar="PATH",
        help="also write the per-pixel uncertainty (K, one sigma) here; MoCoLSK and DMS (see the README)",
    )
    down.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    down.add_argument("--cog", action="store_true", help="write a Cloud Optimized GeoTIFF")
    down.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    dask = down.add_mutually_exclusive_group()
    dask.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the scenes of --pair/--folder on this Dask scheduler, one task each (e.g. tcp://host:8786)",
    )
    dask.add_argument(
        "--dask-local",
        type=worker_count,
        metavar="N",
        help="run the scenes of --pair/--folder on a local Dask cluster of N worker processes",
    )

    info = commands.add_parser("info", help="print a model card")
    info.add_argument("model", help="bundled model name or package path (NAME.json)")
    info.add_argument("--json", action="store_true", help="print the card as JSON")

    evaluate = commands.add_parser("evaluate", help="compare a prediction with a reference raster (Kelvin)")
    evaluate.add_argument("--pred", required=True, help="downscaled LST raster")
    evaluate.add_argument("--ref", required=True, help="reference LST raster on the same grid")
    evaluate.add_argument("--pred-band", type=int, default=1)
    evaluate.add_argument("--ref-band", type=int, default=1)
    evaluate.add_argument("--pred-units", choices=LST_UNITS, default="auto")
    evaluate.add_argument("--ref-units", choices=LST_UNITS, default="auto")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    return parser


def worker_count(text: str) -> int:
    """--dask-local's N: a whole number of workers, at least one."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"give a number of workers of at least 1, not {text!r}")
    return int(text)


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    try:
        if args.command == "downscale":
            return _downscale(args, stdout, stderr)
        if args.command == "info":
            return _info(args, stdout)
        return _evaluate(args, stdout)
    except UsageError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_USAGE
    except Stopped as exc:
        print(f"cancelled: {exc}", file=stderr)
        return STOP_SIGNALS[exc.signal_number][1]
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=stderr)
        return EXIT_INTERRUPTED
    except EngineError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cancelled: interrupted; no output was written.", file=stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("cancelled: terminated (SIGTERM); no output was written.", file=stderr)
        return EXIT_TERMINATED
    except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into one line
        if args.debug:
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            file=stderr,
        )
        return EXIT_UNEXPECTED
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)


class ProgressBar:
    """A one-line text progress bar that log lines can interrupt; plain lines every 10%
    when the stream is not a terminal (logs, CI)."""

    def __init__(self, stream: TextIO, width: int = 30):
        self.stream, self.width, self.shown = stream, width, -1
        self.interactive = stream.isatty()

    def update(self, percent: float) -> None:
        whole = int(percent)
        step = whole if self.interactive else whole - whole % 10
        if step == self.shown or (step == 0 and not self.interactive):
            return
        self.shown = step
        if self.interactive:
            filled = self.width * whole // 100
            self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {whole:3d}%")
        else:
            self.stream.write(f"{step}%\n")
        self.stream.flush()

    def log(self, line: str) -> None:
        if not self.interactive:
            self.stream.write(f"{line}\n")
            return
        self.stream.write(f"\r{' ' * (self.width + 8)}\r{line}\n")
        if self.shown >= 0:
            shown, self.shown = self.shown, -1
            self.update(shown)

    def close(self) -> None:
        if self.interactive and self.shown >= 0:
            self.stream.write("\n")
            self.stream.flush()


def scene_pairs(args: argparse.Namespace) -> list[tuple[str, list[str], str]]:
    """(LST, guidance list, output) for each scene the arguments name; one scene or a batch."""
    batch = bool(args.pair or args.folder)
    if not batch:
        if not (args.lst and args.guidance and args.out):
            raise UsageError(
                "give --lst, --guidance and --out for one scene, or --pair LST GUIDANCE (repeated) or "
                "--folder with --lst-pattern and --guidance-pattern, and --out-dir, for several."
            )
        return [(args.lst, list(args.guidance), args.out)]
    if args.lst or args.guidance or args.out or not args.out_dir:
        raise UsageError(
            "--pair/--folder write into --out-dir: give --out-dir and drop --lst, --guidance and --out."
        )
    if args.qa_mask:
        raise UsageError("a QA mask belongs to one LST: run scenes with a --qa-mask one at a time.")
    if args.uncertainty:
        raise UsageError("--uncertainty names one file: run scenes with an uncertainty layer one at a time.")
    pairs = [(lst, [guidance]) for lst, guidance in args.pair or []]
    if args.folder:
        pairs += folder_pairs(Path(args.folder), args.lst_pattern, args.guidance_pattern)
    outputs = [str(Path(args.out_dir) / f"{Path(lst).stem}_downscaled.tif") for lst, _ in pairs]
    if len(set(outputs)) != len(outputs):
        raise InputError("two LST files share a name, so their outputs would collide; rename one of them.")
    return [(lst, guidance, out) for (lst, guidance), out in zip(pairs, outputs)]


def folder_pairs(
    folder: Path, lst_pattern: str | None, guidance_pattern: str | None
) -> list[tuple[str, list[str]]]:
    """LST and guidance files of ``folder`` paired by the text their patterns' ``*`` stands for."""
    if not folder.is_dir():
        raise InputError(f"--folder {folder} is not a folder.")
    if (
        not (lst_pattern and guidance_pattern)
        or lst_pattern.count("*") != 1
        or guidance_pattern.count("*") != 1
    ):
        raise InputError(
            "--folder needs --lst-pattern and --guidance-pattern, each with exactly one *, e.g. "
            "--lst-pattern '*_lst.tif' --guidance-pattern '*_refl.tif'."
        )
    prefix, suffix = lst_pattern.split("*")
    pairs = []
    for lst in sorted(folder.glob(lst_pattern)):
        key = lst.name[len(prefix) : len(lst.name) - len(suffix)]
        guidance = folder / guidance_pattern.replace("*", key)
        if not guidance.is_file():
            raise InputError(
                f"LST {lst} has no guidance {guidance.name} in {folder} (from --guidance-pattern "
                f"{guidance_pattern!r}); add it or fix the pattern."
            )
        pairs.append((str(lst), [str(guidance)]))
    if not pairs:
        raise InputError(f"no file in {folder} matches --lst-pattern {lst_pattern!r}.")
    return pairs


def _downscale(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    scenes = scene_pairs(args)
    if args.out_dir and len(scenes) > 0:
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    if args.dask or args.dask_local:
        from .distributed import downscale_on_dask

        requests = [scene_request(args, lst, guidance, out) for lst, guidance, out in scenes]
        report = downscale_on_dask(requests, args.dask, args.dask_local, stdout)
        if report.failed:
            print(
                f"error: {len(report.failed)} of {len(requests)} scenes failed (listed above).", file=stderr
            )
            return EXIT_ERROR
        return EXIT_OK
    if len(scenes) == 1:
        _downscale_one(args, *scenes[0], stdout, stderr)
        return EXIT_OK
    failed = []
    for number, (lst, guidance, out) in enumerate(scenes, 1):
        print(f"Scene {number}/{len(scenes)}: {lst}", file=stdout)
        try:
            _downscale_one(args, lst, guidance, out, stdout, stderr)
        except Cancelled:
            raise
        except EngineError as exc:
            # One bad scene of an archive must not cost the others; the run still ends in error.
            print(f"error: scene {number}/{len(scenes)} {lst}: {exc}", file=stderr)
            failed.append(lst)
    if failed:
        print(f"error: {len(failed)} of {len(scenes)} scenes failed (listed above).", file=stderr)
        return EXIT_ERROR
    return EXIT_OK


def scene_request(args: argparse.Namespace, lst: str, guidance: list[str], out: str):
    """The pipeline's request for one scene of the command line."""
    from .pipeline import DownscaleRequest

    return DownscaleRequest(
        lst_path=lst,
        lst_band=args.lst_band,
        lst_units=args.lst_units,
        qa_mask_path=args.qa_mask,
        qa_mask_kind=args.qa_kind,
        qa_mask_grow_px=args.qa_grow,
        native_pixel_m=args.native_pixel_m,
        guidance_paths=guidance,
        guidance_band_names=[n.strip() for n in args.bands.split(",")] if args.bands else None,
        method=args.method,
        model=args.model,
        backend=args.backend,
        device=args.device,
        threads=args.threads,
        tile_size_px=args.tile_size,
        conserve_coarse_means=not args.no_conserve,
        output_units=args.output_units,
        output_path=out,
        overwrite=args.overwrite,
        cog=args.cog,
        uncertainty_path=args.uncertainty,
    )


def _downscale_one(
    args: argparse.Namespace, lst: str, guidance: list[str], out: str, stdout: TextIO, stderr: TextIO
) -> None:
    """One scene; the backend cache (``engine.backends``) keeps the model loaded for the next."""
    from .pipeline import downscale_scene

    request = scene_request(args, lst, guidance, out)
    bar = None if args.quiet else ProgressBar(stderr)
    start = time.perf_counter()
    with StopSignals() as stop:
        try:
            result = downscale_scene(
                request,
                progress=bar.update if bar else None,
                is_cancelled=lambda: bool(stop),
                log=bar.log if bar else None,
            )
        except Cancelled as exc:
            if not stop:
                raise
            raise Stopped(stop.received[0], exc) from exc
        finally:
            if bar:
                bar.close()
    print(
        f"Wrote {result.output_path} ({result.method}, x{result.scale}, largest coarse residual "
        f"{result.max_conservation_residual_k:.4f} K, {time.perf_counter() - start:.1f} s)",
        file=stdout,
    )


def _info(args: argparse.Namespace, stdout: TextIO) -> int:
    from .package import resolve_package

    package = resolve_package(args.model)
    card = package.card
    if args.json:
        stdout.write(card.to_json())
        return EXIT_OK
    lines = [
        f"{card.name} {card.version} ({card.architecture}, x{card.scale})",
        f"  card: {package.card_path}",
        f"  weights: {package.onnx_path.name} (sha256 {card.weights_sha256[:12]}…)",
    ]
    if card.description:
        lines.append(f"  {card.description}")
    centre = (
        "each tile's coarse mean"
        if card.lst_anchor == "coarse_mean"
        else f"mean {card.lst_mean_kelvin:.2f} K"
    )
    lines.append(f"  LST normalisation: centred on {centre}, std {card.lst_std_kelvin:.2f} K")
    lines.append("  guidance bands, in order:")
    lines += [
        f"    {i}. {b.name} [{b.units}] mean {b.mean:.4g}, std {b.std:.4g}"
        + (f" - {b.description}" if b.description else "")
        for i, b in enumerate(card.guidance_bands, 1)
    ]
    lines.append("  hyperparameters: " + ", ".join(f"{k}={v}" for k, v in card.hyperparameters.items()))
    summary = accuracy_summary(card)
    if summary:
        lines.append(f"  {summary}")
    for title, values in (("training", card.training), ("metrics", card.metrics)):
        if values:
            lines.append(f"  {title}:")
            lines += [
                f"    {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in values.items()
            ]
    print("\n".join(lines), file=stdout)
    return EXIT_OK


def _evaluate(args: argparse.Namespace, stdout: TextIO) -> int:
    from .evaluation import evaluate_rasters

    evaluation = evaluate_rasters(
        args.pred, args.ref, args.pred_band, args.ref_band, args.pred_units, args.ref_units
    )
    results = evaluation.metrics
    if args.json:
        print(json.dumps(results, indent=2), file=stdout)
        return EXIT_OK
    pred_units, ref_units = evaluation.prediction_units, evaluation.reference_units
    print(
        f"prediction read as {pred_units.name} ({pred_units.reason}); reference read as {ref_units.name} "
        f"({ref_units.reason})",
        file=stdout,
    )
    print(
        f"pixels {results['pixels']}  RMSE {results['rmse_k']:.3f} K  MAE {results['mae_k']:.3f} K  "
        f"bias {results['bias_k']:+.3f} K  CC {results['cc']:.4f}  RSD {results['rsd_k']:.3f} K  "
        f"SSIM {results['ssim']:.4f}  PSNR {results['psnr_db']:.2f} dB",
        file=stdout,
    )
    return EXIT_OK

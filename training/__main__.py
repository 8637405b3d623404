"""Command line: ``python -m training train|export|evaluate ...`` (``--help`` for each)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from engine.units import LST_UNITS


def cmd_train(args: argparse.Namespace) -> int:
    from .config import TrainConfig
    from .loop import train

    config = TrainConfig.load(args.config)
    if args.iterations:
        config = TrainConfig.from_dict({**config.to_dict(), "iterations": args.iterations}, config.base_dir)
    run_dir = Path(args.run_dir or Path("runs") / config.name)
    command = "python -m training " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    last = train(config, run_dir, resume=not args.restart, progress=not args.quiet, command=command)
    if os.environ.get("RANK", "0") == "0":
        print(f"checkpoint: {last}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .evaluate import format_report
    from .release import release_checkpoint

    package = release_checkpoint(
        args.checkpoint, args.out, args.name, args.version, evaluate=not args.no_evaluate
    )
    print(f"package: {package.card_path} + {package.onnx_path.name}")
    if package.card.metrics.get("held_out_scenes"):
        print(format_report(package.card.metrics["held_out_scenes"]))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from engine.package import resolve_package

    from .config import TrainConfig
    from .evaluate import format_report, package_predictor
    from .release import held_out_metrics, held_out_report, record_metrics

    package = resolve_package(args.package)
    config = TrainConfig.load(args.data)
    if config.scale != package.card.scale:
        raise ValueError(
            f"the package is x{package.card.scale} but the data config {args.data} is x{config.scale}"
        )
    with tempfile.TemporaryDirectory() as work:
        report, scenes = held_out_report(
            config, Path(work), lambda norm: package_predictor(package, args.threads)
        )
    print(f"{package.name} on the whole held-out scenes of {args.data}: {', '.join(s.name for s in scenes)}")
    print(format_report(report))
    metrics = held_out_metrics(report, scenes)
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    if args.record:
        record_metrics(package, {**package.card.metrics, **metrics})
        print(f"metrics written into {package.card_path}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from .finetune import finetune_on_scene

    package = finetune_on_scene(
        args.model,
        args.lst,
        args.guidance,
        args.out,
        steps=args.steps,
        lst_units=args.lst_units,
        threads=args.threads,
        overwrite=args.overwrite,
        min_gain=args.min_gain,
        log=print,
    )
    print(f"package: {package.card_path} + {package.onnx_path.name}")
    return 0


def parser() -> argparse.ArgumentParser:
    from .finetune import MIN_GAIN

    p = argparse.ArgumentParser(
        prog="python -m training", description="Train, export and evaluate MoCoLSK model packages."
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train from a JSON config (use torchrun for several processes)")
    t.add_argument("config")
    t.add_argument("--run-dir", help="where checkpoints, split.json and log.jsonl go (default runs/NAME)")
    t.add_argument("--iterations", type=int, help="override the config's iterations")
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint instead of resuming")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(run=cmd_train)

    e = sub.add_parser("export", help="write a model package from a checkpoint, with held-out metrics")
    e.add_argument("checkpoint")
    e.add_argument("--out", default="resources/models")
    e.add_argument("--name", help="package name (default: the config's name)")
    e.add_argument("--version", default="1.0.0")
    e.add_argument("--no-evaluate", action="store_true", help="skip the held-out evaluation")
    e.set_defaults(run=cmd_export)

    v = sub.add_parser(
        "evaluate",
        help="both protocols, with intervals, of a package and the classic methods on a "
        "config's whole held-out scenes",
    )
    v.add_argument("package", help="bundled package name or NAME.json/NAME.onnx path")
    v.add_argument("data", help="training config (JSON) whose test scenes to use")
    v.add_argument("--threads", type=int)
    v.add_argument("--json", help="also write the table as JSON")
    v.add_argument("--record", action="store_true", help="write the metrics into the package's card")
    v.set_defaults(run=cmd_evaluate)

    f = sub.add_parser(
        "finetune", help="self-supervised fine-tuning of a package on one scene (coarse LST + fine guidance)"
    )
    f.add_argument("model", help="bundled package name or NAME.json/NAME.onnx path")
    f.add_argument("lst", help="LST raster of the scene")
    f.add_argument("guidance", help="guidance stack with the model's bands in card order")
    f.add_argument("out", help="NAME.json of the new package")
    f.add_argument(
        "--steps",
        type=int,
        default=200,
        help="most optimisation steps; it stops early when validation stops improving",
    )
    f.add_argument("--lst-units", choices=LST_UNITS, default="kelvin", help="as Downscale LST reads them")
    f.add_argument("--threads", type=int)
    f.add_argument("--overwrite", action="store_true", help="replace an existing package at OUT")
    f.add_argument(
        "--min-gain",
        type=float,
        default=MIN_GAIN,
        help="how much lower (as a fraction) the validation RMSE must be than the parent's for the package "
        f"to be written (default {MIN_GAIN})",
    )
    f.set_defaults(run=cmd_finetune)
    return p


def main(argv: list[str] | None = None) -> int:
    from engine.errors import EngineError

    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, RuntimeError, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

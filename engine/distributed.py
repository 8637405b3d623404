"""Batch downscaling on a Dask cluster (``dask.distributed``): one task per scene.

``python -m engine downscale --pair ... --out-dir D --dask ADDRESS`` sends the scenes to a running
scheduler; ``--dask-local N`` starts a LocalCluster of N worker processes on this machine. Dask is
imported only when asked, so the engine and the QGIS plugin run without it.

- The model is opened once per worker process: the engine keeps opened backends in a per-process
  cache (engine.backends), and a worker's first scene of a model runs alone so that the worker's
  other threads wait for it instead of opening the same model again.
- A scene's failure stays its own: the worker returns the error message in a SceneOutcome (engine
  exceptions need not pickle) and the other scenes go on.
- A worker that dies mid-scene leaves no output: the pipeline writes into a scratch folder and
  moves the finished file into place. The scheduler reruns the scene on another worker, up to
  ``distributed.scheduler.allowed-failures`` deaths, then reports it failed; each run first
  removes the scratch folder a dead run of the same scene left. With worker-saturation 1.0 a
  single-threaded worker holds one scene at a time, so its death counts against that scene only.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from .backends import physical_cores
from .classic import CLASSIC_METHODS
from .errors import Cancelled, EngineError
from .pipeline import DownscaleRequest, downscale_scene, scratch_prefix
from .scene.request import validate_request

# The random part tempfile.mkdtemp appends to a scratch folder's prefix.
MKDTEMP_SUFFIX = r"[a-z0-9_]{8}"
# Seconds to wait for a remote scheduler before giving up.
CONNECT_TIMEOUT_S = 30

_first_load_lock = threading.Lock()
_opened_models: set[tuple] = set()


@dataclass(frozen=True)
class SceneOutcome:
    """How one scene ended, as the worker that ran it saw it (or the client, if the worker died)."""

    lst_path: str
    output_path: str
    error: str | None = None  # None: the output was written
    detail: str = ""  # method, scale and largest coarse residual of a written scene
    seconds: float = 0.0
    worker: str = ""  # host:pid of the worker process

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class BatchReport:
    """The outcome of every scene, in the order they were given, and the batch's wall time."""

    outcomes: list[SceneOutcome]
    seconds: float

    @property
    def failed(self) -> list[SceneOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.ok]

    def summary(self) -> str:
        written = len(self.outcomes) - len(self.failed)
        lines = [f"{written} of {len(self.outcomes)} scenes written in {self.seconds:.1f} s"]
        if self.failed:
            lines.append(f"{len(self.failed)} failed:")
            lines += [f"  {outcome.lst_path}: {outcome.error}" for outcome in self.failed]
        return "\n".join(lines)


def model_key(request: DownscaleRequest) -> tuple | None:
    """What the engine caches an opened model under, coarsely: package, backend, device,
    threads; None for the classic methods, which open no model."""
    if request.method in CLASSIC_METHODS:
        return None
    return (request.model or "auto", request.backend, request.device, request.threads)


def remove_stale_scratch(output_path: str) -> int:
    """Remove the scratch folders that killed runs of this output left beside it; how many."""
    folder = Path(output_path).resolve().parent
    if not folder.is_dir():
        return 0
    own = re.compile(re.escape(scratch_prefix(output_path)) + MKDTEMP_SUFFIX)
    stale = [entry for entry in folder.iterdir() if own.fullmatch(entry.name) and entry.is_dir()]
    for entry in stale:
        shutil.rmtree(entry, ignore_errors=True)
    return len(stale)


def downscale_task(
    request: DownscaleRequest, progress: Callable[[float], None] | None = None
) -> SceneOutcome:
    """Run one scene in this process (a Dask worker); its error comes back as text."""
    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    key = model_key(request)
    try:
        remove_stale_scratch(request.output_path)
        with nullcontext() if key is None or key in _opened_models else _first_load_lock:
            result = downscale_scene(request, progress=progress)
            if key is not None:
                _opened_models.add(key)
    except EngineError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one scene's failure must not stop the batch
        error = f"unexpected {type(exc).__name__}: {exc}"
    else:
        detail = (
            f"{result.method}, x{result.scale}, largest coarse residual "
            f"{result.max_conservation_residual_k:.4f} K"
        )
        return SceneOutcome(
            request.lst_path, result.output_path, None, detail, time.perf_counter() - start, worker
        )
    return SceneOutcome(request.lst_path, request.output_path, error, "", time.perf_counter() - start, worker)


def run_batch(
    client,
    requests: Sequence[DownscaleRequest],
    on_outcome: Callable[[int, SceneOutcome], None] | None = None,
    task: Callable[[DownscaleRequest], SceneOutcome] = downscale_task,
) -> BatchReport:
    """Run ``task`` on each request as one task of ``client``'s cluster; ``on_outcome(done,
    outcome)`` hears of each scene as it ends. An interrupt cancels the scenes not yet run.

    Each request is checked here first (an existing output is refused unless overwriting); the
    task then may replace its own output, so that a scene the scheduler reruns, because the
    worker holding its result died, does not fail on the file its first run wrote."""
    from distributed import as_completed

    start = time.perf_counter()
    batch = uuid.uuid4().hex[:8]
    outcomes = [SceneOutcome(r.lst_path, r.output_path) for r in requests]
    futures, done = {}, 0
    for i, request in enumerate(requests):
        try:
            validate_request(request)
        except EngineError as exc:
            outcomes[i] = replace(outcomes[i], error=str(exc))
            done += 1
            if on_outcome:
                on_outcome(done, outcomes[i])
            continue
        key = f"downscale-{i}-{Path(request.output_path).stem}-{batch}"
        on_worker = replace(absolute_paths(request), overwrite=True)
        futures[client.submit(task, on_worker, key=key, pure=False)] = i
    try:
        for future in as_completed(futures):
            i = futures[future]
            outcomes[i] = collect(future, requests[i])
            done += 1
            if on_outcome:
                on_outcome(done, outcomes[i])
    except BaseException:
        client.cancel(list(futures))
        raise
    return BatchReport(outcomes, time.perf_counter() - start)


def absolute_paths(request: DownscaleRequest) -> DownscaleRequest:
    """The request with its files named from the root, as a worker whose working folder is not
    this one's needs them (a model given as a package file included)."""

    def absolute(path: str | None) -> str | None:
        return str(Path(path).resolve()) if path else path

    model = request.model
    if model and Path(model).suffix.lower() == ".json" and Path(model).exists():
        model = absolute(model)
    return replace(
        request,
        lst_path=absolute(request.lst_path),
        guidance_paths=[absolute(path) for path in request.guidance_paths],
        output_path=absolute(request.output_path),
        qa_mask_path=absolute(request.qa_mask_path),
        uncertainty_path=absolute(request.uncertainty_path),
        model=model,
    )


def collect(future, request: DownscaleRequest) -> SceneOutcome:
    """A finished future's outcome; for a scene whose workers kept dying, the reason, and the
    last run's scratch folder removed where this machine sees the output folder."""
    if future.status == "finished":
        return future.result()
    if future.status == "error":
        from distributed import KilledWorker

        exc = future.exception()
        if isinstance(exc, KilledWorker):
            error = f"its worker died and the scene was given up ({exc})".replace("\n", " ")
        else:
            error = f"unexpected {type(exc).__name__}: {exc}"
    else:
        error = f"the scheduler dropped it ({future.status})"
    remove_stale_scratch(request.output_path)
    return SceneOutcome(request.lst_path, request.output_path, error)


def downscale_on_dask(
    requests: Sequence[DownscaleRequest], address: str | None, local_workers: int | None, stream: TextIO
) -> BatchReport:
    """The command line's ``--dask ADDRESS`` / ``--dask-local N``: run the scenes on that cluster,
    printing each as it ends and a summary that lists the failures."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise EngineError(
            "--dask needs Dask: install it into this Python with "
            "`python -m pip install 'dask[distributed]'` (see requirements.txt)."
        ) from None
    if local_workers:
        cores_each = max(1, physical_cores() // local_workers)
        requests = [r if r.threads else replace(r, threads=cores_each) for r in requests]
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
            cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1, dashboard_address=None)
        where = f"a local cluster of {local_workers} worker processes"
    else:
        cluster = nullcontext(address)
        where = f"the Dask scheduler at {address}"
    ended: set[str] = set()

    def report(done: int, outcome: SceneOutcome) -> None:
        ended.add(outcome.output_path)
        print(f"[{done}/{len(requests)}] {outcome_line(outcome)}", file=stream, flush=True)

    try:
        with cluster as target:
            try:
                client = Client(target, timeout=CONNECT_TIMEOUT_S)
            except OSError as exc:
                raise EngineError(
                    f"Cannot reach {where} ({exc}); start it (`dask scheduler`) or give its address, "
                    "e.g. --dask tcp://HOST:8786."
                ) from None
            with client:
                workers = len(client.nthreads())
                print(f"Dask: {len(requests)} scenes on {where} ({workers} workers now)", file=stream)
                result = run_batch(client, requests, report)
    except (KeyboardInterrupt, Cancelled):
        for request in requests:
            if request.output_path not in ended:
                remove_stale_scratch(request.output_path)
        raise Cancelled(
            f"{len(ended)} of {len(requests)} scenes had ended (listed above); the others were "
            "cancelled and their scratch folders removed."
        ) from None
    print(result.summary(), file=stream)
    return result


def outcome_line(outcome: SceneOutcome) -> str:
    """One line on a scene's end: what was written or why not, how long, on which worker."""
    where = f"{outcome.seconds:.1f} s on {outcome.worker}" if outcome.worker else ""
    if outcome.ok:
        return f"{outcome.lst_path}: wrote {outcome.output_path} ({outcome.detail}; {where})"
    return f"{outcome.lst_path}: FAILED{f' ({where})' if where else ''}: {outcome.error}"

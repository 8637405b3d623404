"""GDAL sessions and failures: exceptions on, a bounded block cache, GDAL's failures logged and
turned into the engine's errors (the file at fault, what happened and the fix).

The one place that imports osgeo; the other raster modules take ``gdal`` and ``osr`` from here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import EngineError, InputError, OutputError

try:
    from osgeo import gdal, osr
except ImportError:  # pragma: no cover - exercised only where GDAL is missing
    gdal = None
    osr = None


# Bounds GDAL's block cache so that memory does not grow with the scene size.
GDAL_CACHE_BYTES = 32 * 1024 * 1024


def require_gdal() -> None:
    if gdal is None:
        raise InputError(
            "GDAL's Python bindings (osgeo) are not installed; install GDAL (e.g. `apt install "
            "python3-gdal`)."
        )


NO_SPACE_MARKERS = ("no space left on device", "disk full", "not enough space on the disk")


PERMISSION_MARKERS = ("permission denied", "read-only file system", "access is denied")


RECENT_FAILURES = 32


class _FailureLog:
    """GDAL failures (CE_Failure and worse) reported under a ``gdal_session``, counted and the latest kept.

    GDAL reports "No space left on device" once and then raises a vaguer error ("Write error at
    scanline ..."), and it fails while closing a dataset without raising at all; the log keeps both.
    """

    def __init__(self) -> None:
        self.count = 0
        self.recent: list[str] = []

    def __call__(self, error_class: int, _error_number: int, message: str) -> None:
        if error_class >= gdal.CE_Failure:
            self.count += 1
            self.recent = [*self.recent[-(RECENT_FAILURES - 1) :], str(message)]

    def since(self, count: int) -> list[str]:
        return self.recent[-min(self.count - count, len(self.recent)) :] if self.count > count else []


GDAL_FAILURES = _FailureLog()


@contextlib.contextmanager
def gdal_session(cache_bytes: int = GDAL_CACHE_BYTES) -> Iterator[None]:
    """GDAL with exceptions on, a bounded block cache and its failures logged, restored afterwards."""
    require_gdal()
    previous_cache = gdal.GetCacheMax()
    previous_exceptions = gdal.GetUseExceptions()
    gdal.UseExceptions()
    gdal.SetCacheMax(cache_bytes)
    try:
        with gdal_failures_logged():
            yield
    finally:
        gdal.SetCacheMax(previous_cache)
        if not previous_exceptions:
            gdal.DontUseExceptions()


def _free_space_label(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free"
    except OSError:
        return "free space unknown"


def io_failure(
    messages: list[str],
    error_number: int | None,
    file_name: str | None,
    inputs: dict[str, str],
    output_path: str | os.PathLike,
) -> EngineError:
    """The engine's error for a failed read or write: the file at fault, what happened and the fix.

    ``messages`` are GDAL's or the OS's, oldest first; ``inputs`` maps input paths to their layer
    labels. A failure that names no input concerns the output (or its scratch files beside it).
    """
    text = " ".join(messages)
    lower = text.lower()
    output = Path(output_path).resolve()
    folder = output.parent
    if error_number == errno.ENOSPC or any(m in lower for m in NO_SPACE_MARKERS):
        return OutputError(
            f"No space left on the disk of the output folder {folder} ({_free_space_label(folder)}) while "
            f"writing {output.name}; nothing was written. Free some space there, or choose an output in "
            "another folder."
        )
    denied = error_number in (errno.EACCES, errno.EPERM, errno.EROFS) or any(
        m in lower for m in PERMISSION_MARKERS
    )
    culprit = next(
        (
            path
            for path in inputs
            if (file_name and Path(file_name).resolve() == Path(path).resolve())
            or path in text
            or Path(path).name in text
        ),
        None,
    )
    last = messages[-1].strip() if messages else "unknown error"
    if culprit is not None:
        layer = inputs[culprit]
        if denied:
            return InputError(
                f"{layer}: permission denied reading {culprit}; make the file readable for you, or copy it "
                "to a folder you own and use the copy."
            )
        return InputError(
            f"{layer}: GDAL could not read {culprit} ({last}); the file is damaged or truncated (e.g. an "
            "interrupted download or copy). Download or export it again, and check that it opens in QGIS."
        )
    if denied:
        return OutputError(
            f"Permission denied writing {output.name} in the output folder {folder}; choose a folder you can "
            "write to."
        )
    return OutputError(
        f"Writing {output.name} in {folder} failed ({last}); nothing was written. Check that the disk is "
        "healthy and the folder writable, or choose another output folder."
    )


@contextlib.contextmanager
def io_errors(inputs: dict[str, str], output_path: str | os.PathLike) -> Iterator[None]:
    """GDAL and file-system failures inside the block become ``io_failure``'s engine errors.

    Use it inside ``gdal_session`` around everything that reads the inputs or writes the output.
    Other errors pass through unchanged.
    """
    start = GDAL_FAILURES.count
    try:
        yield
    except EngineError:
        raise
    except OSError as exc:
        messages = [*GDAL_FAILURES.since(start), exc.strerror or str(exc)]
        raise io_failure(messages, exc.errno, exc.filename, inputs, output_path) from exc
    except RuntimeError as exc:
        reported = GDAL_FAILURES.since(start)
        # GDAL raises with the message it reported last; other RuntimeErrors are not I/O failures.
        if not any(message and message in str(exc) for message in reported):
            raise
        raise io_failure([*reported, str(exc)], None, None, inputs, output_path) from exc


@contextlib.contextmanager
def gdal_failures_logged() -> Iterator[None]:
    """Send this thread's GDAL failures to the session's log, for the block only. GDAL's error handlers
    are per thread: ``gdal_session`` uses this for its own thread, and a worker thread wraps each read
    it does under the session (so it leaves no handler behind when it ends)."""
    gdal.PushErrorHandler(GDAL_FAILURES)
    try:
        yield
    finally:
        gdal.PopErrorHandler()


def gdal_failure_mark() -> int:
    """A mark for ``require_no_gdal_failures_since``."""
    return GDAL_FAILURES.count


def require_no_gdal_failures_since(mark: int, output_path: str | os.PathLike) -> None:
    """Raise for failures GDAL reported without raising since ``mark``: closing a dataset whose last
    blocks could not be written fails that way. Call it before moving a written file into place."""
    reported = GDAL_FAILURES.since(mark)
    if reported:
        raise io_failure(reported, None, None, {}, output_path)

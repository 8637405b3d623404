"""The run's scratch folder beside the output, locked while the run lives.

A run killed outright (SIGKILL, a crash, a power cut) cannot remove its scratch folder. Each run
therefore holds a lock on a file in its folder for as long as it runs; the next run in that output
folder removes every ``.mocolsk-*`` folder whose lock nobody holds (its run is dead) and leaves
those of live runs alone. The operating system releases a dead process's lock: an advisory
``flock`` on POSIX; on Windows the open lock file, which cannot be deleted while open.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

SCRATCH_PREFIX = ".mocolsk-"
LOCK_NAME = "run.lock"
# A folder without a lock file is left alone this long: a run may have just made it and not yet locked it.
UNLOCKED_GRACE_S = 60.0


@contextlib.contextmanager
def scratch_folder(output_folder: Path, prefix: str, log: Callable[[str], None]) -> Iterator[Path]:
    """A new scratch folder in ``output_folder`` named ``prefix`` (which starts with ``SCRATCH_PREFIX``)
    and a random suffix, locked until the block ends and then removed; first removes the folders that
    runs which died left there."""
    remove_abandoned(output_folder, log)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=output_folder))
    # POSIX: locked under another name, then renamed, so that no run finds a lock file not yet locked
    # (Windows cannot rename an open file, and there the open file itself is the lock).
    opened = folder / (LOCK_NAME + ".new" if fcntl is not None else LOCK_NAME)
    lock = open(opened, "w")  # noqa: SIM115 - held open for the whole run
    try:
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        if fcntl is not None:
            # Where the file system has no locks (some network shares) the folder stays unlocked: then
            # no run can tell this one dead either, and its folder is never removed by another.
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(opened, folder / LOCK_NAME)
        yield folder
    finally:
        lock.close()
        shutil.rmtree(folder, ignore_errors=True)


def remove_abandoned(output_folder: Path, log: Callable[[str], None]) -> list[Path]:
    """Remove the scratch folders in ``output_folder`` whose run is no longer alive; returns them."""
    removed = []
    for folder in sorted(output_folder.glob(SCRATCH_PREFIX + "*")):
        if folder.is_dir() and is_abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
                log(
                    f"Removed {folder}, the scratch folder of a run that was stopped before it could clean up"
                )
    return removed


def is_abandoned(folder: Path) -> bool:
    """Whether no live run holds ``folder``'s lock."""
    lock_path = folder / LOCK_NAME
    if not lock_path.exists():
        try:
            return time.time() - folder.stat().st_mtime > UNLOCKED_GRACE_S
        except OSError:
            return False
    if fcntl is None:
        try:
            lock_path.unlink()  # fails while the owning run holds it open
        except OSError:
            return False
        return True
    try:
        with open(lock_path) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True

"""The caller's hooks (progress, cancel check, log) and the timings, shared by every stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import Cancelled

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]
LogCallback = Callable[[str], None]


@dataclass
class RunContext:
    """What every stage may report to: percent progress, the log, and the cancel check."""

    on_progress: ProgressCallback = lambda _: None
    is_cancelled: CancelCheck = lambda: False
    log: LogCallback = lambda _: None
    timings_s: dict[str, float] = field(default_factory=dict)

    def progress(self, percent: float) -> None:
        self.on_progress(float(min(max(percent, 0.0), 100.0)))

    def check_cancelled(self) -> None:
        if self.is_cancelled():
            raise Cancelled("Downscaling cancelled; no output was written.")

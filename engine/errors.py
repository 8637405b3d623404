"""Exceptions the engine raises; every message names the input at fault and the fix."""


class EngineError(Exception):
    """Base class of all errors a user can act on."""


class PackageError(EngineError):
    """A model package is missing, inconsistent or corrupted."""


class BackendError(EngineError):
    """An inference backend or device is unavailable."""


class RuntimeMissing(BackendError):
    """An optional runtime (onnxruntime, torch) is not installed; ``summary`` says what cannot run,
    so that a caller with a better install route (the QGIS plugin) can offer it instead of ``hint``."""

    def __init__(self, module: str, summary: str, hint: str):
        super().__init__(f"{summary} {hint}")
        self.module = module
        self.summary = summary


class InputError(EngineError):
    """An input raster, band, grid or unit does not fit the request."""


class Cancelled(EngineError):
    """The caller asked to stop; partial outputs have been removed."""


class OutputError(EngineError):
    """The output cannot be written where asked (no space, no permission, unsupported format)."""

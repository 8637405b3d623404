"""Which NVIDIA GPU this machine has, asked of ``nvidia-smi``.

Standard library only and no relative imports: the plugin's runtime installer, a plain script that
runs before any runtime is installed, loads this file by its path (``install_runtime.py``).
"""

from __future__ import annotations

import shutil
import subprocess


def nvidia_gpu_name() -> str | None:
    """The first GPU ``nvidia-smi -L`` lists (e.g. "NVIDIA H100 80GB HBM3"), or None."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listed.stdout.splitlines():
        if line.startswith("GPU "):
            return line.split(":", 1)[1].split("(UUID")[0].strip()
    return None

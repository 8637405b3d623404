"""The pixel an LST's sensor saw, when a product is delivered on a finer grid than that.

Landsat thermal bands are resampled onto the 30 m grid (``engine.landsat``); ECOSTRESS's 70 m LST often
comes reprojected onto finer geographic pixels (its Earth Engine and AppEEARS exports).
"""

from __future__ import annotations

import re
from pathlib import Path

from .landsat import thermal_native_pixel

ECOSTRESS_PIXEL_M = 70.0
_ECOSTRESS = re.compile(r"ECO2LSTE|ECOSTRESS_L2|ECOV00\d_L2T?_LSTE")


def native_lst_pixel(path: str | Path, metadata: dict[str, str]) -> tuple[float, str] | None:
    """The native pixel in metres and how it is known, from the product name, metadata or MTL; else None."""
    landsat = thermal_native_pixel(path, metadata)
    if landsat is not None:
        return landsat
    match = _ECOSTRESS.search(Path(str(path)).name.upper())
    if match:
        return ECOSTRESS_PIXEL_M, f"ECOSTRESS senses {ECOSTRESS_PIXEL_M:g} m; the name says {match.group(0)}"
    return None

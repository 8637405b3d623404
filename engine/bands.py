"""Which guidance band is which: match user bands to the bands a method needs.

Bands are matched by name (the user's list, else GDAL band descriptions), and spectral
indices a method needs but the user did not give are derived from their bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .errors import InputError
from .indices import NORMALISED_DIFFERENCES, IndexBounds, clip_index, clipped_message, normalized_difference

_ALIASES = {
    "near_infrared": "nir",
    "nearinfrared": "nir",
    "nir": "nir",
    "red_edge": "vre",
    "rededge": "vre",
    "vegetation_red_edge": "vre",
    "vre": "vre",
    "elevation": "dem",
    "dsm": "dem",
    "height": "dem",
    "dem": "dem",
    "coastal": "deepblue",
    "coastal_aerosol": "deepblue",
    "deep_blue": "deepblue",
    "deepblue": "deepblue",
}

# Normalised differences: name -> (a, b) for (a - b) / (a + b).
DERIVED_INDICES = {"ndvi": ("nir", "red"), "ndwi": ("green", "nir")}


def normalise_band_name(name: str) -> str:
    key = "_".join(name.strip().lower().replace("-", " ").split())
    return _ALIASES.get(key, key)


@dataclass(frozen=True)
class BandMapping:
    """For each required band, the index of its input band, or the two inputs of an index."""

    names: tuple[str, ...]
    sources: tuple[int | tuple[int, int], ...]
    how: str
    # Positions (in ``names``) of given index bands clipped to -1..1 as they are read.
    clipped: tuple[int, ...] = ()

    def clipping(self, positions) -> BandMapping:
        """This mapping with the given index bands at ``positions`` clipped to -1..1."""
        return replace(self, clipped=tuple(positions))

    def given_indices(self) -> list[int]:
        """Positions of the bands read from an input band and named as a known index (ndvi, ndwi, ...)."""
        return [
            position
            for position, (name, source) in enumerate(zip(self.names, self.sources))
            if not isinstance(source, tuple) and is_index(name)
        ]

    def compose(self, stack: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Required bands (C, H, W) float32 from the input stack (N, H, W) and its validity (H, W).

        Returns the bands and where all of them are valid. Indices derived here are bounded to -1..1 and
        the ``clipped`` ones clipped to it (`engine.indices`): negative reflectance over water pushes them beyond.
        """
        bands = []
        for position, source in enumerate(self.sources):
            if isinstance(source, tuple):
                bands.append(normalized_difference(stack[source[0]], stack[source[1]]))
            elif position in self.clipped:
                bands.append(clip_index(stack[source]))
            else:
                bands.append(stack[source])
        height, width = stack.shape[1:]
        composed = np.stack(bands).astype(np.float32) if bands else np.zeros((0, height, width), np.float32)
        return composed, valid.copy()

    def index_messages(self, stack: np.ndarray, valid: np.ndarray) -> list[str]:
        """Log lines for the indices whose bounds change pixels of a sample (N, H, W) of the input bands."""
        messages = []
        for position, (name, source) in enumerate(zip(self.names, self.sources)):
            if isinstance(source, tuple):
                counter = IndexBounds(f"{name}, derived from {' and '.join(DERIVED_INDICES[name])}")
                counter.add(stack[source[0]][valid], stack[source[1]][valid])
                messages.append(counter.message(sampled=True))
            elif position in self.clipped:
                messages.append(clipped_message(name, stack[source][valid], sampled=True))
        return [message for message in messages if message]


def is_index(name: str) -> bool:
    """Whether a band name is a normalised difference the engine knows (its values lie in -1..1)."""
    return normalise_band_name(name) in NORMALISED_DIFFERENCES


def map_bands(
    required: Sequence[str],
    input_names: Sequence[str | None],
    layer: str,
    needed_by: str,
    order_fallbacks: Sequence[Sequence[str]] = (),
) -> BandMapping:
    """Match ``required`` band names to the input bands.

    ``input_names`` has one entry per input band (``None`` when the band has no name).
    When no input band is named, the first of ``order_fallbacks`` (or ``required``) whose
    length equals the number of input bands names them in the order given.
    """
    names = [normalise_band_name(n) if n else None for n in input_names]
    how = "by band name"
    if not any(names):
        for order in (*order_fallbacks, tuple(required)):
            if len(order) == len(names):
                names = [normalise_band_name(n) for n in order]
                how = f"by the order given ({', '.join(names)})"
                break
        else:
            raise InputError(
                f"{layer}: {needed_by} needs the bands {', '.join(required)} but the {len(names)} guidance "
                f"band(s) have no names; name them in the order given (e.g. --bands {','.join(required)}) "
                f"or set band descriptions."
            )
    sources: list[int | tuple[int, int]] = []
    for name in required:
        name = normalise_band_name(name)
        if name in names:
            sources.append(names.index(name))
        elif name in DERIVED_INDICES and all(part in names for part in DERIVED_INDICES[name]):
            sources.append(tuple(names.index(part) for part in DERIVED_INDICES[name]))
        else:
            derivable = (
                f" (or {' and '.join(DERIVED_INDICES[name])} to derive it)" if name in DERIVED_INDICES else ""
            )
            known = ", ".join(n or "?" for n in names)
            raise InputError(
                f"{layer}: guidance band {name!r}{derivable} needed by {needed_by} is missing; the guidance "
                f"bands are [{known}]. Add that band or name the bands correctly."
            )
    return BandMapping(tuple(normalise_band_name(n) for n in required), tuple(sources), how)


# A guidance band this many training standard deviations away is probably in other units.
UNITS_WARNING_SIGMAS = 10.0


def units_warnings(bands: np.ndarray, valid: np.ndarray, specs: Sequence) -> list[str]:
    """Warnings for bands (C, H, W) whose median is far from the model's training statistics.

    ``specs`` are the card's `BandSpec`s (name, units, mean, std), one per band.
    """
    warnings = []
    for values, spec in zip(bands, specs):
        usable = values[valid]
        if usable.size == 0:
            continue
        median = float(np.median(usable))
        sigmas = (median - spec.mean) / spec.std
        if abs(sigmas) > UNITS_WARNING_SIGMAS:
            warnings.append(
                f"Warning: guidance band {spec.name!r} has a median of {median:.4g}, {sigmas:+.0f} standard "
                f"deviations from the model's training mean {spec.mean:.4g}; check that it is in "
                f"{spec.units}."
            )
    return warnings

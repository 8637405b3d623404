"""Model "auto": which bundled package(s) a run picks from the ratio of the LST pixel to the guidance pixel.

One decision for every caller: the pipeline runs the packages it names and logs its words, the QGIS
Downscale LST dialog shows its ``label``. Geotransform and CRS arithmetic only; no file is read here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InputError
from .grids import MAX_CASCADE_STEPS, SCALE_TOLERANCE, Grid, scale_steps
from .raster import metres_per_unit, pixel_size_in, pixel_size_label

# The model value (besides None or empty) that asks for the bundled package matching the pixel ratio.
AUTO_MODEL = "auto"


@dataclass(frozen=True)
class PixelRatio:
    """How many guidance pixels (a side) the LST's information spans, which chooses the scale."""

    ratio: float
    lst_pixel: str  # the size the ratio stands for, in the guidance CRS's units, e.g. "100 m"
    measured_ratio: float  # the LST's own pixel's ratio, as delivered
    measured_pixel: str  # the LST's own pixel, e.g. "30 m" for a Landsat thermal band on the 30 m grid
    guidance_grid: Grid
    # The sensor's native pixel when it stands in for the LST's finer one, and why; None and "" when not.
    native_pixel_m: float | None = None
    native_reason: str = ""
    # Why a known native pixel was not used ("" when none was known, or it was).
    native_note: str = ""

    @property
    def guidance_pixel(self) -> str:
        return pixel_size_label(self.guidance_grid)

    @property
    def delivered_on_guidance_grid(self) -> bool:
        """The LST's own pixel is as fine as the guidance's (a Landsat thermal band on the 30 m grid)."""
        return self.measured_ratio < 1.0 + SCALE_TOLERANCE

    def pixel_label(self, scale: float) -> str:
        """The size of ``scale`` guidance pixels, e.g. "120 m"."""
        return pixel_size_label(self.guidance_grid, scale * self.guidance_grid.pixel_width)


def measure_pixel_ratio(
    lst_grid: Grid, guidance_grid: Grid, native: tuple[float, str] | None = None
) -> PixelRatio:
    """The LST's pixel ratio over the guidance, or its sensor's ``native`` pixel's (metres, and how it is
    known) when that is coarser.

    The LST pixel is measured in the guidance CRS at the guidance's centre, as the side of the square of its
    area: pixels in degrees over a UTM guidance are not square, and area averaging handles any shape."""
    width, height = pixel_size_in(lst_grid, guidance_grid)
    measured = math.sqrt(width / guidance_grid.pixel_width * height / guidance_grid.pixel_height)
    own = pixel_size_label(guidance_grid, measured * guidance_grid.pixel_width)
    pixels = PixelRatio(measured, own, measured, own, guidance_grid)
    if native is None:
        return pixels
    metres = metres_per_unit(guidance_grid)
    if metres is None:
        note = f"{native[1]}, but the guidance CRS is not in metres; the LST's own pixel is used"
        return PixelRatio(measured, own, measured, own, guidance_grid, native_note=note)
    native_ratio = native[0] / metres / guidance_grid.pixel_width
    if native_ratio <= measured:
        return pixels
    return PixelRatio(
        native_ratio,
        pixels.pixel_label(native_ratio),
        measured,
        own,
        guidance_grid,
        native[0],
        f"its pixel is {own} but {native[1]}",
    )


def auto_packages(bundled: dict[str, int]) -> dict[int, str]:
    """The bundled package "auto" runs for each scale (the first by name), by scale."""
    chosen: dict[int, str] = {}
    for name, scale in sorted(bundled.items()):
        chosen.setdefault(scale, name)
    return dict(sorted(chosen.items()))


@dataclass(frozen=True)
class AutoModel:
    """The bundled packages "auto" runs for a pixel ratio, in turn and coarsest first (one when a single
    scale fits; empty when none or no cascade fits), and what it says about them."""

    pixels: PixelRatio
    steps: tuple[tuple[str, int], ...]  # (package name, scale)
    bundled: tuple[tuple[str, int], ...]  # every bundled (package name, scale), for the messages

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.steps)

    @property
    def scales(self) -> tuple[int, ...]:
        return tuple(scale for _, scale in self.steps)

    @property
    def total_scale(self) -> int:
        """The scale of the whole run (the product of the steps'); 0 when none fits."""
        return math.prod(self.scales) if self.steps else 0

    @property
    def coarser(self) -> bool:
        """Whether the coarse grid is coarser than the LST pixel (no scale fits it): the LST is averaged."""
        return bool(self.steps) and self.total_scale > self.pixels.ratio * (1 + SCALE_TOLERANCE)

    @property
    def coarser_note(self) -> str:
        """Says when the coarse grid is coarser than the LST pixel, for the log's model line."""
        if not self.coarser:
            return ""
        return (
            f"; no bundled scale fits x{self.pixels.ratio:.3g}, so the LST is averaged onto the coarser "
            f"{self.pixels.pixel_label(self.total_scale)} grid"
        )

    def required_steps(self, layer: str) -> tuple[tuple[str, int], ...]:
        """The steps, or an error on ``layer`` saying which ratios the bundled packages reach."""
        if self.steps:
            return self.steps
        pixels = self.pixels
        listed = ", ".join(f"{name} (x{s})" for name, s in self.bundled) or "none are installed"
        top = max((s for _, s in self.bundled), default=0)
        reach = f" (up to x{top**MAX_CASCADE_STEPS} in {MAX_CASCADE_STEPS} steps)" if self.bundled else ""
        raise InputError(
            f"{layer}: its pixel is {pixels.ratio:.3g} times the guidance pixel ({pixels.lst_pixel} / "
            f"{pixels.guidance_pixel}) and no model was given, but no bundled model or cascade of them reaches "
            f"that scale (bundled: {listed}{reach}); use a coarser guidance, or give a model package trained "
            "for this scale."
        )

    @property
    def label(self) -> str:
        """What auto runs for these layers, or why none fits, in a few words (the dialog's Model label)."""
        pixels = self.pixels
        plan = " then ".join(f"x{scale} with {name}" for name, scale in self.steps)
        if pixels.delivered_on_guidance_grid:
            native = pixels.native_pixel_m
            if native is None:
                return (
                    f"auto: LST on the guidance grid ({pixels.measured_pixel}); set Native LST pixel (m) to the "
                    "pixel its sensor saw"
                )
            if not self.steps:
                return (
                    f"auto: LST on the guidance grid, native pixel {native:g} m: no bundled package fits; choose "
                    "a package file"
                )
            if not self.coarser:
                return (
                    f"auto: LST on the guidance grid: averaged to its native {native:g} m pixel, then {plan}"
                )
            return (
                f"auto: LST on the guidance grid, native pixel {native:g} m: averaged onto "
                f"{pixels.pixel_label(self.total_scale)}, then {plan}"
            )
        sizes = f"LST {pixels.measured_pixel}"
        if pixels.native_pixel_m is not None:
            sizes += f", sensed at {pixels.native_pixel_m:g} m"
        sizes += f" / guidance {pixels.guidance_pixel}"
        if not self.steps:
            return f"auto: no bundled package for {sizes} = x{pixels.ratio:.3g}; choose a package file"
        if self.coarser:
            sizes += f", averaged onto {pixels.pixel_label(self.total_scale)}"
        return f"auto runs {' then '.join(self.names)}: {sizes} = " + " then ".join(
            f"x{scale}" for scale in self.scales
        )


def choose_auto_model(pixels: PixelRatio, bundled: dict[str, int]) -> AutoModel:
    """The bundled packages "auto" runs for ``pixels``: the one whose scale fits (the next coarser within
    ``grids.MAX_COARSENING``), else the fewest packages run in turn whose scales multiply to such a scale
    (``grids.scale_steps``)."""
    packages = auto_packages(bundled)
    steps = tuple((packages[scale], scale) for scale in scale_steps(pixels.ratio, tuple(packages)))
    return AutoModel(pixels, steps, tuple(sorted(bundled.items())))


def auto_model(
    lst_grid: Grid, guidance_grid: Grid, bundled: dict[str, int], native: tuple[float, str] | None = None
) -> AutoModel:
    """What "auto" runs for an LST grid over a guidance grid (``native``: the sensor's pixel in metres and
    how it is known, when known)."""
    return choose_auto_model(measure_pixel_ratio(lst_grid, guidance_grid, native), bundled)

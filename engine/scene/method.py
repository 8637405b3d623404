"""Choosing the method: the predictor, its scale and the guidance bands it reads.

MoCoLSK's scale is its model package's (the bundled package for the pixel ratio when none is
given); a classic sharpener takes the integer scale nearest to the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..auto_model import AUTO_MODEL, AutoModel, PixelRatio, choose_auto_model
from ..bands import BandMapping, map_bands, units_warnings
from ..blend import BlendSharpener, check_blend_weights
from ..card import METHOD_TITLES, accuracy_summary, recommended_method
from ..classic import Sharpener, create_sharpener
from ..core import NetworkSharpener, bounds_detail
from ..errors import InputError
from ..grids import SCALE_TOLERANCE, choose_scale, coarse_scale
from ..guidance_values import PLAIN, ReflectanceEncoding, band_kind, check_guidance_values, index_problem
from ..package import bundled_scales
from ..raster import band_count, sample_bands, valid_mask
from ..uncertainty import card_sigma_scale
from .context import RunContext
from .inputs import Guidance, guidance_band_scalings
from .request import DownscaleRequest

# A classic method runs any integer scale in one step (1 km over 30 m is x33).
CLASSIC_SCALES = tuple(range(2, 65))
GUIDANCE_SAMPLE_PX = 1 << 14


@dataclass
class Method:
    scale: int
    mapping: BandMapping
    predictor: Sharpener
    model_name: str = ""
    model_version: str = ""
    device: str = "cpu (numpy)"
    # Factor on the raw uncertainty spread, from the model card's calibration (1 when none).
    sigma_scale: float = 1.0
    sigma_calibrated: bool = False
    # Input guidance band index -> how its stored values become reflectance (none: used as they are).
    guidance_conversions: dict[int, ReflectanceEncoding] = field(default_factory=dict)
    # The method the model card's benchmark found most accurate at its scale ("" when none).
    recommended: str = ""

    def recommendation_note(self, method: str) -> str | None:
        """A log line when the card's benchmark found another method more accurate than ``method``."""
        if not self.recommended or self.recommended == method:
            return None
        return (
            f"Note: on scenes it never saw, {METHOD_TITLES.get(self.recommended, self.recommended)} was more "
            f"accurate than {METHOD_TITLES.get(method, method)} with {self.model_name} at x{self.scale}; "
            "choose that method unless you have checked this one on your data."
        )

    @property
    def bounds_detail(self) -> bool:
        """Whether the predictor's detail is bounded by the local coarse range (the network's is)."""
        return bounds_detail(self.predictor)


def open_method(
    request: DownscaleRequest, guidance: Guidance, pixels: PixelRatio, context: RunContext
) -> Method:
    """The predictor, its scale (for ``pixels.ratio``) and its guidance bands; MoCoLSK's scale is the model's."""
    layer = f"LST {request.lst_path}"
    ratio = pixels.ratio
    if request.method == "blend":
        return open_blend(request, guidance, pixels, context)
    if request.method != "mocolsk":
        scale = choose_scale(ratio, CLASSIC_SCALES, layer, f"method {request.method!r}")
        mapping = classic_mapping(request.method, guidance.names)
        scalings = guidance_band_scalings(guidance)
        for scaling in scalings.values():
            context.log(f"Guidance {scaling.reason}, applied")
        if mapping.sources:
            mapping = classic_index_bounds(mapping, guidance, request.method, context)
        return Method(
            scale,
            mapping,
            create_sharpener(request.method, scale, len(mapping.sources)),
            guidance_conversions=scalings,
        )

    from ..inference import Downscaler

    bundled = bundled_scales()
    model = request.model
    if not model or model == AUTO_MODEL:
        model = bundled_model_for(choose_auto_model(pixels, bundled), layer, context)
    downscaler = Downscaler(model, backend=request.backend, device=request.device, threads=request.threads)
    card = downscaler.card
    context.log(f"Model {card.name} {card.version} (x{card.scale}) on {downscaler.device_description}")
    summary = accuracy_summary(card)
    if summary:
        context.log(summary)
    try:
        scale = choose_scale(ratio, (card.scale,), layer, f"model {card.name!r}")
    except InputError as error:
        fit = coarse_scale(ratio, tuple(bundled.values()))
        fitting = [f"{name} (x{s})" for name, s in bundled.items() if s == fit]
        if not fitting:
            raise
        raise InputError(f"{error} For this LST use {' or '.join(fitting)} instead.") from None
    if scale > ratio * (1 + SCALE_TOLERANCE):
        context.log(
            f"{card.name} is x{scale}: the LST ({pixels.lst_pixel}) is averaged onto its coarser grid "
            f"({pixels.pixel_label(scale)})"
        )
    guidance_layer = f"Guidance {', '.join(request.guidance_paths)}"
    mapping = map_bands(card.guidance_band_names, guidance.names, guidance_layer, f"model {card.name!r}")
    # The value check refuses a given index that looks scaled, so every given index is clipped.
    mapping = mapping.clipping(
        position
        for position, (spec, source) in enumerate(zip(card.guidance_bands, mapping.sources))
        if not isinstance(source, tuple) and band_kind(spec.units) == "index"
    )
    conversions = guidance_conversions(
        request, guidance, mapping, card.guidance_bands, guidance_layer, f"model {card.name!r}", context
    )
    sigma_scale = card_sigma_scale(card.uncertainty_calibration)
    return Method(
        scale,
        mapping,
        NetworkSharpener(downscaler),
        card.name,
        card.version,
        downscaler.device_description,
        sigma_scale or 1.0,
        sigma_scale is not None,
        guidance_conversions=conversions,
        recommended=recommended_method(card) or "",
    )


DELIVERED_WEIGHT_SET = "delivered-band weights"
NATIVE_WEIGHT_SET = "native-resolution weights"


def blend_weights_for(blend: dict, pixels: PixelRatio, card_name: str) -> tuple[dict[str, float], str, str]:
    """The card's blend weights for this LST, how they were fitted and which set they are. A band
    delivered on the guidance grid (a Landsat ``ST_B10``) was blurred by its sensor below its native
    pixel, so it gets the weights fitted on such bands (``delivered_weights``), when the card has them."""
    if pixels.delivered_on_guidance_grid and blend.get("delivered_weights"):
        weights = check_blend_weights(blend["delivered_weights"], f"Model card {card_name}")
        fitted = blend.get("delivered_fitted", "weights for an LST delivered on the guidance grid")
        return weights, fitted, DELIVERED_WEIGHT_SET
    weights = check_blend_weights(blend["weights"], f"Model card {card_name}")
    return weights, blend.get("fitted", "weights from the model card"), NATIVE_WEIGHT_SET


def open_blend(
    request: DownscaleRequest, guidance: Guidance, pixels: PixelRatio, context: RunContext
) -> Method:
    """MoCoLSK and the classic methods its card's blend weights name, all on the network's bands;
    MoCoLSK alone (said in the log, the result and the layer name) for a package without weights."""
    network = open_method(replace(request, method="mocolsk"), guidance, pixels, context)
    card = network.predictor.downscaler.card
    if not card.blend:
        context.log(
            f"Model {card.name!r} carries no blend weights (they are fitted for the bundled packages), so "
            "MoCoLSK runs alone."
        )
        return network
    weights, fitted, weight_set = blend_weights_for(card.blend, pixels, card.name)
    names = list(network.mapping.names)
    members, channels = {}, {}
    for name in weights:
        if name == "mocolsk":
            members[name], channels[name] = network.predictor, list(range(len(names)))
            continue
        if name == "tsharp" and "ndvi" not in names:
            raise InputError(
                f"The blend of {card.name!r} needs TsHARP, which reads NDVI, but the model's bands "
                f"{names} have none; choose MoCoLSK or a classic method."
            )
        if name == "tsharp":
            channels[name] = [names.index("ndvi")]
        elif name == "bicubic":
            channels[name] = []
        else:
            channels[name] = list(range(len(names)))
        members[name] = create_sharpener(name, network.scale, len(channels[name]))
    context.log(
        "Blend of "
        + ", ".join(f"{METHOD_TITLES.get(n, n)} {w:.2f}" for n, w in weights.items())
        + f" ({fitted})"
    )
    if "mocolsk" not in weights:
        context.log(
            f"MoCoLSK takes no part in this blend: the {weight_set} of {card.name!r} leave it out, as it lost "
            "to the classic methods on unseen scenes there (README, Accuracy)."
        )
    sigma_scale = card.blend.get("sigma_scale")
    return replace(
        network,
        predictor=BlendSharpener(network.scale, members, channels, weights, weight_set=weight_set),
        sigma_scale=sigma_scale or 1.0,
        sigma_calibrated=sigma_scale is not None,
    )


def bundled_model_for(auto: AutoModel, layer: str, context: RunContext) -> str:
    """The bundled package "auto" runs (no model given), or an error when none or a cascade fits."""
    steps = auto.required_steps(layer)
    if len(steps) != 1:
        cascade = " then ".join(f"x{scale}" for scale in auto.scales)
        raise InputError(
            f"{layer}: its pixel ratio x{auto.pixels.ratio:.3g} needs a cascade of the bundled packages ({cascade}), "
            "which only the MoCoLSK and blend methods run; choose one of them."
        )
    name, scale = steps[0]
    context.log(
        f"Model: {name}, the bundled package for x{scale} (LST pixel {auto.pixels.lst_pixel} / guidance pixel "
        f"{auto.pixels.guidance_pixel}){auto.coarser_note}"
    )
    return name


def guidance_conversions(
    request: DownscaleRequest,
    guidance: Guidance,
    mapping: BandMapping,
    specs,
    layer: str,
    model: str,
    context: RunContext,
) -> dict[int, ReflectanceEncoding]:
    """Check the guidance values against the card's units: scaled reflectance (Landsat C2 SR, x10000) is
    recognised and converted (logged), other out-of-range values refused. Returns the conversions per input
    band; bands that still look unlike the training data are logged as warnings."""
    samples, valid = guidance_sample(guidance)
    scalings = guidance_band_scalings(guidance)
    for scaling in scalings.values():
        context.log(f"Guidance {scaling.reason}, applied")
    checked, reflectance = [], set()
    for name, spec, source in zip(mapping.names, specs, mapping.sources):
        if isinstance(source, tuple):
            # An index the engine derives: check the reflectance bands it is computed from.
            bands = [(guidance.names[part] or f"band {part + 1}", part) for part in source]
            units = f"reflectance (to derive {name})"
        else:
            bands, units = [(name, source)], spec.units
        for label, part in bands:
            if band_kind(units) == "reflectance":
                reflectance.add(part)
            checked.append((label, units, samples[part][valid]))
    hints = [*request.guidance_paths, *(n for n in guidance.names if n)]
    encoding = check_guidance_values(checked, layer, model, hints)
    conversions = (
        {}
        if encoding is PLAIN
        else {index: encoding for index in sorted(reflectance) if index not in scalings}
    )
    if conversions:
        context.log(f"Guidance read as {encoding.reason}; converted to reflectance for the {model}")
        for index, conversion in conversions.items():
            samples[index] = conversion.to_reflectance(samples[index])
    for message in mapping.index_messages(samples, valid):
        context.log(message)
    for warning in units_warnings(*mapping.compose(samples, valid), specs):
        context.log(warning)
    return {**conversions, **scalings}


def classic_index_bounds(
    mapping: BandMapping, guidance: Guidance, method: str, context: RunContext
) -> BandMapping:
    """The mapping with the given index bands clipped to -1..1 where their excess comes from negative
    reflectance; one that looks scaled is used as it is (TsHARP's and DMS's fits do not depend on its scale)."""
    samples, valid = guidance_sample(guidance)
    clipped = []
    for position in mapping.given_indices():
        name, source = mapping.names[position], mapping.sources[position]
        problem = index_problem(samples[source][valid])
        if problem is None:
            clipped.append(position)
        else:
            context.log(
                f"Index {name}: {problem}; used as it is, since the {method} fit does not depend on its scale."
            )
    mapping = mapping.clipping(clipped)
    for message in mapping.index_messages(samples, valid):
        context.log(message)
    return mapping


def guidance_sample(guidance: Guidance) -> tuple[np.ndarray, np.ndarray]:
    """A sample (N, S) of every guidance band's values as QGIS shows them (the band's scale and offset
    applied), float32, and where all of them are valid (S,)."""
    samples = np.concatenate(
        [
            sample_bands(dataset, list(range(1, band_count(dataset) + 1)), GUIDANCE_SAMPLE_PX)
            for dataset in guidance.datasets
        ]
    ).astype(np.float32)
    valid = np.all([valid_mask(s, nodata) for s, nodata in zip(samples, guidance.nodata)], axis=0)
    for index, scaling in guidance_band_scalings(guidance).items():
        samples[index] = scaling.to_reflectance(samples[index])
    return samples, valid


def classic_mapping(method: str, names: list) -> BandMapping:
    """The guidance bands a classic method uses: none, NDVI (or red and NIR), or all of them."""
    if method == "bicubic":
        return BandMapping((), (), "not used (bicubic ignores the guidance values)")
    if method == "tsharp":
        return map_bands(("ndvi",), names, "Guidance", "TsHARP", order_fallbacks=[("red", "nir")])
    labels = tuple(n or f"band {i + 1}" for i, n in enumerate(names))
    return BandMapping(labels, tuple(range(len(names))), "all as predictors")

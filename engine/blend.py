"""The blend: MoCoLSK and the classic sharpeners averaged with cross-validated weights.

On scenes it never saw, the light network adds real detail on some land covers and invents
some on others, while TsHARP and DMS fail in other places. A weighted mean of their predictions,
with weights fitted leave-site-out on unseen scenes (``training.blend``) and stored in the model
card, is more accurate than any one of them on every such scene measured (see the README). The
network's detail is bounded by the local coarse range before it is mixed, as when it runs alone;
the mean of conserved fields is conserved, so the pipeline conserves the blend like any method.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .classic import CoarseSamples, Sharpener
from .detail import bound_detail, detail_bounds
from .errors import InputError, PackageError

BLEND_MEMBERS = ("mocolsk", "bicubic", "tsharp", "dms")


def check_blend_weights(weights: Mapping[str, float], source: str) -> dict[str, float]:
    """Weights over ``BLEND_MEMBERS``, non-negative and summing to one, or a PackageError."""
    unknown = sorted(set(weights) - set(BLEND_MEMBERS))
    values = np.array([float(w) for w in weights.values()]) if weights else np.zeros(0)
    if unknown or not len(values) or (values < 0).any() or abs(values.sum() - 1.0) > 1e-3:
        raise PackageError(
            f"{source}: blend weights {dict(weights)} must be non-negative weights of "
            f"{', '.join(BLEND_MEMBERS)} summing to 1; re-export the package."
        )
    return {name: float(w) for name, w in weights.items() if float(w) > 0}


class BlendSharpener(Sharpener):
    """Members predict on the same window; the network's detail is bounded, then all are averaged."""

    name = "blend"

    def __init__(
        self,
        scale: int,
        members: Mapping[str, Sharpener],
        channels: Mapping[str, list[int]],
        weights: Mapping[str, float],
        bounded: frozenset[str] = frozenset({"mocolsk"}),
        weight_set: str = "",
    ):
        super().__init__(scale)
        self.weight_set = weight_set
        self.members = dict(members)
        self.channels = dict(channels)
        total = sum(weights[name] for name in self.members)
        self.weights = {name: weights[name] / total for name in self.members}
        self.bounded = bounded
        self.needs_fit = any(m.needs_fit for m in self.members.values())

    def add_samples(self, samples: CoarseSamples) -> None:
        for name, member in self.members.items():
            if member.needs_fit:
                member.add_samples(
                    CoarseSamples(
                        samples.features[:, self.channels[name]], samples.heterogeneity, samples.lst_kelvin
                    )
                )

    def finish_fit(self) -> str:
        """Fit the members that need it; one that cannot fit on this scene (too few coarse pixels)
        leaves the blend, and the others' weights are scaled back to a sum of one."""
        lines = []
        for name, member in list(self.members.items()):
            if not member.needs_fit:
                continue
            try:
                lines.append(member.finish_fit())
            except InputError as error:
                lines.append(f"{name} left out of the blend ({error})")
                del self.members[name]
                del self.weights[name]
        total = sum(self.weights.values())
        self.weights = {name: w / total for name, w in self.weights.items()}
        weights = ", ".join(f"{name} {w:.2f}" for name, w in self.weights.items())
        return "; ".join([*lines, f"blend weights: {weights}"])

    def describe(self) -> str:
        """The members' weights as they ran and which of the card's sets they are, for the output's metadata."""
        weights = ", ".join(f"{name} {w:.4f}" for name, w in self.weights.items())
        return f"{weights} ({self.weight_set})" if self.weight_set else weights

    def predict(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        members, weights = self.predict_members(lst_coarse, coarse_valid, guidance, guidance_valid)
        return np.tensordot(weights, members, axes=1).astype(np.float32)

    def predict_members(self, lst_coarse, coarse_valid, guidance, guidance_valid):
        """Each member's prediction (the network's bounded) and its blend weight; their spread is
        how much the methods disagree."""
        low = high = None
        predictions = []
        for name, member in self.members.items():
            picked = guidance[self.channels[name]]
            prediction = member.predict(lst_coarse, coarse_valid, picked, guidance_valid)
            if name in self.bounded:
                if low is None:
                    low, high = detail_bounds(lst_coarse, coarse_valid, self.scale)
                prediction, _ = bound_detail(prediction, low, high)
            predictions.append(prediction.astype(np.float32))
        return np.stack(predictions), np.array(list(self.weights.values()))

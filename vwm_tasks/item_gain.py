"""Variable precision in the input: a per-item, per-trial gain on each item's stimulus.

The task option ``item_gain`` of :class:`vwm_tasks.recall.VWMRecall` (off by default). Each
present item's stimulus channels are multiplied by a gain ``g`` drawn per trial from a gamma
distribution (van den Berg et al., 2012; Fougnie et al., 2012: the resource an item receives
varies from item to item and trial to trial):

    mean share   w = total / n        (``normalise: true``: a fixed total resource shared by the
                                       n present items, Bays 2014's divisive normalisation)
                 w = total            (``normalise: false``: every item's mean is the same)
    g ~ Gamma(shape = w / scale, scale = scale)       so E[g] = w, Var[g] = w * scale

``scale`` is fixed (in units of a lone item's drive), so the coefficient of variation
``sqrt(scale / w)`` grows with set size when the total is shared: at large set sizes more items
draw a gain near 0, and an item that draws little is barely shown at all. Absent items get 0.
``scale = 0`` gives the deterministic share ``w``.

Every draw comes from the generator the caller passes (the env's own, so trials repeat and a
resumed run continues exactly); the draw is always one ``(..., K)`` array, absent slots included,
so the number of draws does not depend on which slots are present.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ITEM_GAIN_KEYS: tuple[str, ...] = ("scale", "total", "normalise")


@dataclass(frozen=True)
class ItemGain:
    """The gamma gain of each item's stimulus input (see the module docstring).

    Attributes:
        scale: gamma scale (>= 0), in units of a lone item's drive.
        total: the mean total gain of a trial's items when normalised, else each item's mean (> 0).
        normalise: share ``total`` among the present items (True) or give each item ``total``.
    """

    scale: float
    total: float = 1.0
    normalise: bool = True

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> ItemGain | None:
        """The gain of a task's ``item_gain`` option (None: off), with one clear error per key."""
        if spec is None:
            return None
        if not isinstance(spec, Mapping):
            raise ValueError(
                f"item_gain must be null or a mapping with keys {ITEM_GAIN_KEYS}, got {spec!r}"
            )
        unknown = set(spec) - set(ITEM_GAIN_KEYS)
        if unknown:
            raise ValueError(f"item_gain keys must be in {ITEM_GAIN_KEYS}, got {sorted(unknown)}")
        if "scale" not in spec:
            raise ValueError("item_gain.scale: required (gamma scale >= 0, in lone-item units)")
        scale, total = spec["scale"], spec.get("total", 1.0)
        normalise = spec.get("normalise", True)
        for name, value, low_open in (("scale", scale, False), ("total", total, True)):
            if (
                not isinstance(value, numbers.Real)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 0
                or (low_open and value == 0)
            ):
                bound = "> 0" if low_open else ">= 0"
                raise ValueError(
                    f"item_gain.{name}: must be a finite number {bound}, got {value!r}"
                )
        if not isinstance(normalise, bool):
            raise ValueError(f"item_gain.normalise: must be true or false, got {normalise!r}")
        return cls(float(scale), float(total), normalise)

    def mean_share(self, presence: np.ndarray) -> np.ndarray:
        """``(..., K)`` mean gain ``w`` of each slot (0 for absent slots)."""
        presence = np.asarray(presence, dtype=bool)
        if self.normalise:
            n = np.maximum(presence.sum(axis=-1, keepdims=True), 1)
            return np.where(presence, self.total / n, 0.0)
        return np.where(presence, self.total, 0.0)

    def draw(self, rng: np.random.Generator, presence: np.ndarray) -> np.ndarray:
        """``(..., K)`` gains for the slots of ``presence`` (0 where absent), from ``rng``."""
        w = self.mean_share(presence)
        if self.scale == 0:
            # Still one draw per slot, so the stream after it is the same for every scale.
            rng.random(w.shape)
            return w
        # Absent slots draw with shape 1 and are zeroed: the stream never depends on presence.
        shape = np.where(w > 0, w / self.scale, 1.0)
        return np.where(w > 0, rng.gamma(shape, self.scale), 0.0)

    @staticmethod
    def check(value: Any, max_items: int) -> np.ndarray:
        """A forced ``item_gain`` (``new_trial(item_gain=...)``): K finite gains >= 0."""
        gain = np.asarray(value, dtype=float)
        if gain.shape != (max_items,) or not np.isfinite(gain).all() or (gain < 0).any():
            raise ValueError(f"item_gain must be {max_items} finite gains >= 0, got {value!r}")
        return gain

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "total": self.total, "normalise": self.normalise}


def apply_item_gain(stimulus: np.ndarray, gain: np.ndarray | None, channels: int) -> np.ndarray:
    """``stimulus (..., C)`` with each slot's ``channels`` stimulus channels times its gain
    ``(..., K)`` (slot k on channels ``[k * channels, (k + 1) * channels)``); None: as is."""
    if gain is None:
        return stimulus
    per_channel = np.repeat(gain, channels, axis=-1).astype(stimulus.dtype)
    scaled = stimulus.copy()
    scaled[..., : per_channel.shape[-1]] *= per_channel
    return scaled

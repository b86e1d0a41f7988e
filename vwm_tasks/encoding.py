"""Angle <-> network-channel encodings, written once for the env, the trainer and the analyses.

Every function works on numpy arrays and on torch tensors alike (the result has the type of the
first array argument), so the env can build numpy trials and the trainer can build the same
tensors directly on its device.

Layouts
-------
* input, ``"positive"``: three non-negative channels per slot, ``[3k, 3k+1, 3k+2]`` for slot k:
  projections of (cos, sin) on three unit directions 120 degrees apart, scaled by sqrt(2/3), plus
  1, so each channel lies in [0.184, 1.816] and the three sum to 3 (docs/model.md, section Task).
* input, ``"cossin"``: two channels per slot, ``[cos, sin]``.
* target / readout: ``[cos0, sin0, cos1, sin1, ...]``, one (cos, sin) pair per slot.

Inputs are multiplied by presence and by ``strength / max_items`` (K, not the set size, so the
total input grows with the number of items, as in the reference).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ENCODINGS: tuple[str, ...] = ("positive", "cossin")

_SQRT2 = math.sqrt(2.0)
_SQRT6 = math.sqrt(6.0)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _xp(x: Any):
    """The array namespace of ``x``: ``torch`` for tensors, ``numpy`` otherwise."""
    if _is_torch(x):
        import torch

        return torch
    return np


def check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise ValueError(f"input_encoding must be one of {ENCODINGS}, got {encoding!r}")
    return encoding


def channels_per_item(encoding: str) -> int:
    """Number of input channels one slot uses: 3 for ``"positive"``, 2 for ``"cossin"``."""
    return 3 if check_encoding(encoding) == "positive" else 2


def wrap_angle(x):
    """Wrap angles (radians) to [-pi, pi). Works on scalars, numpy arrays and torch tensors."""
    xp = _xp(x)
    return xp.remainder(x + math.pi, 2.0 * math.pi) - math.pi


def encode_angles(
    theta,
    presence,
    *,
    encoding: str = "positive",
    strength: float = 120.0,
    max_items: int | None = None,
):
    """Input channels for angles ``theta`` (..., K) and presence (..., K) -> (..., K * c).

    Absent slots are exactly 0 on all their channels.
    """
    xp = _xp(theta)
    k = theta.shape[-1] if max_items is None else max_items
    c, s = xp.cos(theta), xp.sin(theta)
    if check_encoding(encoding) == "positive":
        channels = xp.stack(
            [1.0 + c / _SQRT2 + s / _SQRT6, 1.0 - c / _SQRT2 + s / _SQRT6, 1.0 - 2.0 * s / _SQRT6],
            -1,
        )
    else:
        channels = xp.stack([c, s], -1)
    weight = presence[..., None] * (strength / k)
    channels = channels * weight
    return channels.reshape(*theta.shape[:-1], -1)


def decode_input_angles(channels, encoding: str = "positive"):
    """Inverse of :func:`encode_angles` up to scale: angles (..., K) from channels (..., K * c)."""
    xp = _xp(channels)
    c = channels_per_item(encoding)
    ch = channels.reshape(*channels.shape[:-1], -1, c)
    if encoding == "positive":
        cos = (ch[..., 0] - ch[..., 1]) * (_SQRT2 / 2.0)
        sin = (ch[..., 0] + ch[..., 1] - 2.0 * ch[..., 2]) * (_SQRT6 / 6.0)
    else:
        cos, sin = ch[..., 0], ch[..., 1]
    return xp.arctan2(sin, cos) if xp is np else xp.atan2(sin, cos)


def angles_to_targets(theta, presence):
    """Targets (..., 2K) = [p cos(theta_k), p sin(theta_k)] interleaved per slot."""
    xp = _xp(theta)
    pairs = xp.stack([xp.cos(theta), xp.sin(theta)], -1) * presence[..., None]
    return pairs.reshape(*theta.shape[:-1], -1)


def targets_to_angles(xy):
    """Angles (..., K) from (cos, sin) pairs (..., 2K): atan2(sin, cos), in (-pi, pi]."""
    xp = _xp(xy)
    pairs = xy.reshape(*xy.shape[:-1], -1, 2)
    if xp is np:
        return np.arctan2(pairs[..., 1], pairs[..., 0])
    return xp.atan2(pairs[..., 1], pairs[..., 0])

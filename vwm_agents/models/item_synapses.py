"""Stochastic input synapses private to each item, inside the network.

The agent option ``item_synapse_noise`` of :class:`vwm_agents.models.dale_rnn.DaleRNN` (None:
off). The synapses that carry one item's input channels into the network share one efficacy per
trial, drawn afresh every trial from the model's own generator and divisively normalised over the
items present, so the network's total input efficacy is fixed on average and items compete for
it:

    w_k = 1 / n                            (n: items present in the trial, seen in the input)
    g_k ~ Gamma(shape w_k / s, scale s): mean w_k, variance w_k s   (s = ``item_synapse_noise``)
    input of item k's channels  <- g_k * input

Variability private to each item arises in the circuit here, not in the stimulus: the task shows
every item at full strength, and which items the network receives weakly is decided by its own
synapses on that trial (cf. the task option ``item_gain``, the same statistics drawn by the env).
The variance ``w s`` makes the coefficient of variation ``sqrt(s / w) = sqrt(n s)`` grow with set
size. torch's gamma sampler takes no generator, so :func:`gamma_draw` samples it from the
generator's normals and uniforms (Marsaglia & Tsang, 2000) with a fixed number of proposals.

Item k's channels are ``[c k, c k + c)`` with ``c = channels_per_item`` (3 for the positive
encoding), for ``k < n_items``; a present item is one with any non-zero input over the trial.
Off (``noise=False`` in forward): the deterministic share ``w_k``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_item_synapse_noise(scale: float | None) -> float | None:
    """``item_synapse_noise`` as a float (None: off); one clear error for a bad value."""
    if scale is None:
        return None
    if (
        isinstance(scale, bool)
        or not isinstance(scale, int | float)
        or not math.isfinite(scale)
        or scale < 0
    ):
        raise ValueError(
            f"item_synapse_noise must be null (off) or a finite number >= 0 "
            f"(variance / mean of an item's efficacy), got {scale!r}"
        )
    return float(scale)


def item_presence(ob: Tensor, n_items: int, channels_per_item: int) -> Tensor:
    """``(B, K)`` bool: items with any non-zero input over the trial in ``ob (B, T, n_in)``."""
    grouped = ob[..., : n_items * channels_per_item].abs().sum(dim=1)
    return grouped.reshape(ob.shape[0], n_items, channels_per_item).sum(dim=-1) > 0


_PROPOSALS = 8  # Marsaglia-Tsang accepts >= 95 % of proposals: all 8 fail with p < 1e-10


def gamma_draw(shape: Tensor, generator: torch.Generator | None) -> Tensor:
    """Gamma(``shape``, 1) samples (any shape > 0) from ``generator``, a fixed number of draws.

    Marsaglia & Tsang (2000) for shape + 1 (>= 1), times U^(1 / shape) to come back to ``shape``;
    each element takes its first accepted of ``_PROPOSALS`` proposals (the mean d if none is, a
    probability below 1e-10), so the generator advances by the same amount on every call.
    """
    d = shape + 1.0 - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    x = torch.randn((_PROPOSALS, *shape.shape), generator=generator, device=shape.device)
    u = torch.rand((_PROPOSALS, *shape.shape), generator=generator, device=shape.device)
    boost = torch.rand(shape.shape, generator=generator, device=shape.device)
    v = (1.0 + c * x) ** 3
    accepted = (v > 0) & (torch.log(u) < 0.5 * x**2 + d - d * v + d * torch.log(v.clamp_min(1e-30)))
    first = torch.argmax(accepted.to(torch.int8), dim=0, keepdim=True)
    value = torch.where(accepted.any(dim=0), (d * v).gather(0, first)[0], d)
    return value * boost.pow(1.0 / shape)


def draw_item_efficacies(
    presence: Tensor, scale: float, *, noise: bool, generator: torch.Generator | None
) -> Tensor:
    """``(B, K)`` efficacies: mean ``1 / n`` per present item, variance ``scale / n``; 0 if absent.

    A gamma is drawn for every slot (absent slots too, then zeroed), so the number of draws
    never depends on the trial.
    """
    n = presence.sum(dim=-1, keepdim=True).clamp_min(1).to(torch.float32)
    w = torch.where(presence, 1.0 / n, torch.zeros_like(n))
    if not noise or scale == 0:
        return w
    shape = torch.where(presence, w / scale, torch.ones_like(w))
    return torch.where(presence, gamma_draw(shape, generator) * scale, torch.zeros_like(w))


def apply_item_efficacies(ob: Tensor, efficacies: Tensor, channels_per_item: int) -> Tensor:
    """``ob`` with each item's channels times its efficacy (other channels unchanged)."""
    n_items = efficacies.shape[-1]
    width = n_items * channels_per_item
    per_channel = efficacies.repeat_interleave(channels_per_item, dim=-1)[:, None, :]
    gained = ob[..., :width] * per_channel.to(ob.dtype)
    return torch.cat([gained, ob[..., width:]], dim=-1) if ob.shape[-1] > width else gained

"""A finite spike count at readout (Bays 2014's neural resource), inside the network.

The agent option ``readout_spikes`` of :class:`vwm_agents.models.dale_rnn.DaleRNN` (None: off,
the readout reads noisy rates as before). When on, the readout of step t is formed from spike
counts of the network's own neurons in that step, with the population's expected total count
fixed by divisive normalisation:

    lambda_t,i = xi * dt / 1000 * r_t,i / sum_j r_t,j         expected count of neuron i in step t
    n_t,i ~ Poisson(lambda_t,i)                                (model.eval(): exact Poisson draws)
    n_t,i = lambda_t,i + sqrt(lambda_t,i) eps,  eps ~ N(0, 1)  (model.train(): the reparameterised
                                                                Gaussian with the same mean and
                                                                variance, so gradients pass)
    out_t = F (N / (xi * dt / 1000)) n_t                       mean: F times the normalised rates

``xi`` (``readout_spikes``, spikes per second) is the whole population's rate, whatever the rates
are: the network cannot buy precision by firing more, only by how it spreads its activity over
neurons, and the items of a trial share one count (Bays 2014: the total spike count is shared
among items as xi / n; a weakly held item is carried by few spikes and decodes to a nearly random
angle). Over the 500 ms decode window the expected total is ``xi / 2`` spikes.

Every draw comes from the generator passed in (the trainer's noise generator in training, the
evaluation's seeded one otherwise), so runs repeat and resume exactly. Steps before
``readout_from`` are read out without a draw (no loss sees them), as the rate readout does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Guards the normalisation against an all-silent population (the first step starts at r = 0).
_TOTAL_RATE_FLOOR = 1e-6


def check_readout_spikes(readout_spikes: float | None) -> float | None:
    """``readout_spikes`` as a float (None: off); one clear error for a bad value."""
    if readout_spikes is None:
        return None
    if (
        isinstance(readout_spikes, bool)
        or not isinstance(readout_spikes, int | float)
        or not math.isfinite(readout_spikes)
        or readout_spikes <= 0
    ):
        raise ValueError(
            f"readout_spikes must be null (off) or a finite number > 0 (population "
            f"spikes per second), got {readout_spikes!r}"
        )
    return float(readout_spikes)


def expected_counts(rates: Tensor, spikes_per_s: float, dt: float) -> Tensor:
    """``lambda (..., T, N)``: each neuron's expected count per step, summing to xi dt / 1000."""
    total = rates.sum(dim=-1, keepdim=True).clamp_min(_TOTAL_RATE_FLOOR)
    return rates / total * (spikes_per_s * dt / 1000.0)


def spike_counts(expected: Tensor, *, exact: bool, generator: torch.Generator | None) -> Tensor:
    """Counts with mean and variance ``expected``: Poisson (``exact``), else the reparameterised
    Gaussian ``expected + sqrt(expected) eps`` (differentiable in ``expected``)."""
    if exact:
        return torch.poisson(expected.detach(), generator=generator)
    eps = torch.randn(
        expected.shape, generator=generator, dtype=expected.dtype, device=expected.device
    )
    return expected + expected.clamp_min(0).sqrt() * eps


def spike_count_readout(
    rates: Tensor,
    readout_weights: Tensor,
    spikes_per_s: float,
    dt: float,
    *,
    noise: bool,
    exact: bool,
    generator: torch.Generator | None,
    readout_from: int = 0,
) -> Tensor:
    """The readout ``(..., T, n_out)`` of spike counts drawn from ``rates (..., T, N)``.

    ``noise=False``: the mean (the normalised rates, no draw). Steps before ``readout_from`` read
    the mean too. ``readout_weights``: F, ``(n_out, N)``.
    """
    expected = expected_counts(rates, spikes_per_s, dt)
    if noise and readout_from < rates.shape[-2]:
        drawn = spike_counts(expected[..., readout_from:, :], exact=exact, generator=generator)
        counts = torch.cat([expected[..., :readout_from, :], drawn], dim=-2)
    else:
        counts = expected
    per_step = spikes_per_s * dt / 1000.0
    return torch.matmul(counts * (rates.shape[-1] / per_step), readout_weights.mT)

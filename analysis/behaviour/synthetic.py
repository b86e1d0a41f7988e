"""Synthetic recall errors drawn from the mixture models, for tests and worked examples with
known answers (the fits of :mod:`analysis.behaviour.mixture` should recover the parameters)."""

from __future__ import annotations

import numpy as np

from analysis.core.circstats import angular_difference

__all__ = ["simulate_swap_responses"]


def simulate_swap_responses(
    rng: np.random.Generator | int | None,
    n_trials: int,
    *,
    kappa: float,
    p_nontarget: float,
    p_guess: float,
    set_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic data from the swap model (targets at 0, non-targets uniform on the circle).

    Returns ``(errors (n,), nontarget_errors (n, set_size - 1))``; ``p_nontarget = 0`` gives the
    von Mises + uniform model.
    """
    rng = np.random.default_rng(rng)
    if set_size < 1 or (set_size == 1 and p_nontarget > 0):
        raise ValueError(f"set_size: need >= 1 (and >= 2 when p_nontarget > 0), got {set_size}")
    nontargets = rng.uniform(-np.pi, np.pi, (n_trials, set_size - 1))
    component = rng.choice(3, size=n_trials, p=[1.0 - p_nontarget - p_guess, p_nontarget, p_guess])
    centre = np.zeros(n_trials)
    swapped = component == 1
    centre[swapped] = nontargets[swapped, rng.integers(0, max(set_size - 1, 1), swapped.sum())]
    response = np.where(
        component == 2,
        rng.uniform(-np.pi, np.pi, n_trials),
        centre + rng.vonmises(0.0, kappa, n_trials),
    )
    return angular_difference(response, 0.0), angular_difference(response[:, None], nontargets)

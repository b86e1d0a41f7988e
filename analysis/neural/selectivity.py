"""Mixed selectivity: how each neuron is tuned to the angle in each slot, against chance
(see docs/model.md, section Mixed selectivity; Rigotti et al. 2013 for the idea).

From set-size-1 trials (random slot, random angle), each neuron's decode-window mean rate gives,
for every slot k, the vector strength over the trials where slot k held the item:

    R_ik = |sum_trials r_i exp(j theta_k)| / sum_trials r_i        (0: untuned, 1: one angle)

and the participation ratio across slots IPR_i = (sum_k R_ik)^2 / (K sum_k R_ik^2), in [1/K, 1]:
1/K for a neuron tuned to a single slot, 1 for equal tuning to every slot (mixed selectivity).

Chance level: R is positive even for a neuron that ignores the angles (a finite sample's
resultant), and an untuned neuron has similar chance R in every slot, so its IPR is near 1 and
looks "mixed". The shuffle control permutes each slot's angles across the trials that hold that
slot (same counts, same rates) ``n_shuffles`` times; a neuron is selective for slot k when its R
exceeds the 95th percentile of its shuffled R for that slot. IPR is reported only for neurons
selective for at least one slot, with the IPR of their shuffled R (the chance IPR) beside it.
A unit selective for exactly one slot is "pure", for several "mixed".

States that can be negative (a GRU's hidden state) are shifted per unit so that their minimum
over trials is 0 before R is computed (R is a ratio to the summed response).

Silent neurons: a rate network's neuron whose decode-window mean rate is below
:data:`MIN_RATE_HZ` is counted as silent and excluded (its R is the resultant of a handful of
spikes-worth of rate, noise however it is tested). The IPR of the selective neurons is compared
with their chance IPR as a paired difference: its mean, SE and effect size d_z (mean difference /
SD of the differences).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from analysis.core.agent_protocol import needs_states
from analysis.core.neural_trials import forced_trials, simulate
from analysis.core.tasks import needs_vwm_task

__all__ = [
    "MIN_RATE_HZ",
    "vector_strength",
    "selectivity_matrix",
    "participation_ratio",
    "shuffled_selectivity",
    "selectivity_with_chance",
    "SelectivityResult",
    "unavailable",
    "run",
]


MIN_RATE_HZ = 0.1
"""Decode-window mean rate below which a rate network's neuron counts as silent (excluded)."""


def vector_strength(rates: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """|sum r exp(j theta)| / sum r over trials: rates (trials, N), theta (trials,) -> (N,).

    0 for a neuron that never fires.
    """
    rates = np.asarray(rates, dtype=float)
    theta = np.asarray(theta, dtype=float)
    if rates.ndim != 2 or theta.shape != rates.shape[:1]:
        raise ValueError(
            f"rates must be (trials, N) and theta (trials,), got {rates.shape}, {theta.shape}"
        )
    total = rates.sum(0)
    resultant = np.abs(np.exp(1j * theta) @ rates)
    return np.divide(resultant, total, out=np.zeros_like(total), where=total > 0)


def selectivity_matrix(rates: np.ndarray, theta: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """R (N, K): vector strength of each neuron for each slot's angle, over the trials where that
    slot is present. rates (trials, N), theta and presence (trials, K)."""
    presence = np.asarray(presence, dtype=bool)
    theta = np.asarray(theta, dtype=float)
    if theta.shape != presence.shape or theta.shape[0] != np.shape(rates)[0]:
        raise ValueError("theta and presence must be (trials, K) with the trials of rates")
    columns = []
    for k in range(presence.shape[1]):
        rows = presence[:, k]
        if not rows.any():
            raise ValueError(f"slot {k} is never present; use more trials")
        columns.append(vector_strength(np.asarray(rates)[rows], theta[rows, k]))
    return np.stack(columns, 1)


def participation_ratio(r_matrix: np.ndarray) -> np.ndarray:
    """IPR per row of ``r_matrix`` (N, K): (sum_k R)^2 / (K sum_k R^2); nan for an all-zero row."""
    r_matrix = np.asarray(r_matrix, dtype=float)
    k = r_matrix.shape[1]
    denominator = k * (r_matrix**2).sum(1)
    return np.divide(
        r_matrix.sum(1) ** 2,
        denominator,
        out=np.full(r_matrix.shape[0], np.nan),
        where=denominator > 0,
    )


def shuffled_selectivity(
    rates: np.ndarray,
    theta: np.ndarray,
    presence: np.ndarray,
    n_shuffles: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """R (n_shuffles, N, K) with each slot's angles permuted across the trials holding that slot."""
    rates = np.asarray(rates, dtype=float)
    presence = np.asarray(presence, dtype=bool)
    out = np.empty((n_shuffles, rates.shape[1], presence.shape[1]))
    for k in range(presence.shape[1]):
        rows = np.flatnonzero(presence[:, k])
        if rows.size == 0:
            raise ValueError(f"slot {k} is never present; use more trials")
        sub = rates[rows]
        total = sub.sum(0)
        angles = np.stack([rng.permutation(theta[rows, k]) for _ in range(n_shuffles)])
        resultant = np.abs(np.exp(1j * angles) @ sub)  # (n_shuffles, N)
        out[:, :, k] = np.divide(resultant, total, out=np.zeros_like(resultant), where=total > 0)
    return out


@dataclass
class SelectivityResult:
    """Vector strengths (N, K) with their chance levels, and the IPR of the selective neurons."""

    r_matrix: np.ndarray
    """(N, K) vector strength per neuron and slot."""
    chance_threshold: np.ndarray
    """(N, K) 95th percentile of the shuffled R."""
    chance_mean: np.ndarray
    """(N, K) mean shuffled R."""
    selective: np.ndarray
    """(N, K) bool, R above its chance threshold."""
    ipr: np.ndarray
    """(N,) IPR of every neuron (nan for a silent one); report only ``selective_neurons``."""
    chance_ipr: np.ndarray
    """(N,) median IPR of the shuffled R matrices."""
    mean_rate: np.ndarray
    n_trials: int
    n_shuffles: int
    state_shift: np.ndarray | None = None
    """(N,) amount subtracted from each unit's state (signed states only), else None."""
    silent: np.ndarray | None = None
    """(N,) bool, mean rate below ``min_rate`` (excluded from every count but ``n_silent``)."""
    min_rate: float = 0.0
    rates_by_epoch: dict[str, dict[str, float]] | None = None
    """Per epoch of the set-size-1 trials: the mean rate over neurons and trials, and the
    fraction of neurons whose mean rate is below ``min_rate`` (rate networks)."""

    def ipr_against_chance(self) -> dict[str, float | None]:
        """Paired IPR - chance IPR over the selective neurons: mean, SE and d_z."""
        sel = self.selective_neurons & np.isfinite(self.ipr) & np.isfinite(self.chance_ipr)
        diff = (self.ipr - self.chance_ipr)[sel]
        if diff.size < 2:
            return {
                "mean": float(diff.mean()) if diff.size else None,
                "se": None,
                "effect_size_dz": None,
                "n": int(diff.size),
            }
        sd = float(diff.std(ddof=1))
        return {
            "mean": float(diff.mean()),
            "se": sd / float(np.sqrt(diff.size)),
            "effect_size_dz": float(diff.mean() / sd) if sd > 0 else None,
            "n": int(diff.size),
        }

    @property
    def selective_neurons(self) -> np.ndarray:
        return self.selective.any(1)

    def to_dict(self) -> dict:
        k = self.r_matrix.shape[1]
        sel = self.selective_neurons & np.isfinite(self.ipr)
        n_slots = self.selective.sum(1)

        def stat(values: np.ndarray, fn) -> float | None:
            values = values[np.isfinite(values)]
            return float(fn(values)) if values.size else None

        return {
            "n_trials": self.n_trials,
            "n_shuffles": self.n_shuffles,
            "n_neurons": int(self.r_matrix.shape[0]),
            "max_items": int(k),
            "R": self.r_matrix.tolist(),
            "R_chance_95": self.chance_threshold.tolist(),
            "selective": self.selective.tolist(),
            "IPR": [
                float(v) if s and np.isfinite(v) else None
                for v, s in zip(self.ipr, sel, strict=True)
            ],
            "IPR_chance": [
                float(v) if s and np.isfinite(v) else None
                for v, s in zip(self.chance_ipr, sel, strict=True)
            ],
            "mean_rate": self.mean_rate.tolist(),
            "state_shift": None if self.state_shift is None else self.state_shift.tolist(),
            "summary": {
                "n_selective": int(sel.sum()),
                "n_pure": int((n_slots == 1).sum()),
                "n_mixed": int((n_slots > 1).sum()),
                "fraction_selective_pairs": float(self.selective.mean()),
                "fraction_selective_pairs_chance": 0.05,
                "IPR_mean": stat(self.ipr[sel], np.mean),
                "IPR_median": stat(self.ipr[sel], np.median),
                "IPR_chance_mean": stat(self.chance_ipr[sel], np.mean),
                "IPR_bounds": [1.0 / k, 1.0],
                "R_mean": float(self.r_matrix.mean()),
                "R_chance_mean": float(self.chance_mean.mean()),
                "n_silent": int(self._silent().sum()),
                "min_rate": self.min_rate,
                "IPR_minus_chance": self.ipr_against_chance(),
            },
            "rates_by_epoch": self.rates_by_epoch,
        }

    def _silent(self) -> np.ndarray:
        silent = ~np.isfinite(self.ipr)
        return silent if self.silent is None else silent | self.silent


def selectivity_with_chance(
    rates: np.ndarray,
    theta: np.ndarray,
    presence: np.ndarray,
    *,
    n_shuffles: int = 200,
    rng: np.random.Generator | int | None = None,
    percentile: float = 95.0,
    min_rate: float = 0.0,
) -> SelectivityResult:
    """R, its shuffle control and the IPR from per-trial responses ``rates (trials, N)`` >= 0;
    neurons whose mean response is below ``min_rate`` are silent: never selective, no IPR."""
    if n_shuffles < 20:
        raise ValueError(f"n_shuffles must be >= 20 for a 95th percentile, got {n_shuffles}")
    rng = np.random.default_rng(rng)
    r_matrix = selectivity_matrix(rates, theta, presence)
    chance = shuffled_selectivity(rates, theta, presence, n_shuffles, rng)
    threshold = np.percentile(chance, percentile, axis=0)
    chance_ipr = (
        np.nanmedian(np.stack([participation_ratio(c) for c in chance]), axis=0)
        if np.any(chance > 0)
        else np.full(r_matrix.shape[0], np.nan)
    )
    mean_rate = np.asarray(rates, float).mean(0)
    silent = mean_rate < min_rate
    return SelectivityResult(
        r_matrix=r_matrix,
        chance_threshold=threshold,
        chance_mean=chance.mean(0),
        selective=(r_matrix > threshold) & ~silent[:, None],
        ipr=np.where(silent, np.nan, participation_ratio(r_matrix)),
        chance_ipr=chance_ipr,
        mean_rate=mean_rate,
        n_trials=int(np.shape(rates)[0]),
        n_shuffles=int(n_shuffles),
        silent=silent,
        min_rate=float(min_rate),
    )


def unavailable(model: torch.nn.Module, env) -> str | None:
    return needs_vwm_task("selectivity", env) or needs_states("selectivity", model, env)


def run(
    model: torch.nn.Module, env, *, n_trials: int = 1000, seed: int = 0, n_shuffles: int = 200
) -> SelectivityResult:
    """R and IPR from ``n_trials`` set-size-1 trials (random slot, random angle), env input
    noise, the agent's noise on, decode-window mean states; chance from ``n_shuffles`` shuffles.
    A rate network's neurons below :data:`MIN_RATE_HZ` are silent (counted, excluded)."""
    task = env.unwrapped
    k = int(task.max_items)
    if n_trials < 2 * k:
        raise ValueError(
            f"n_trials must be >= 2 max_items ({2 * k}) so that every slot is shown twice, "
            f"got {n_trials}"
        )
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-np.pi, np.pi, (n_trials, k))
    presence = np.zeros((n_trials, k), bool)
    # Every slot shown equally often, in random order, so no slot is missing for small n_trials.
    presence[np.arange(n_trials), rng.permutation(np.arange(n_trials) % k)] = True
    trials = forced_trials(env, theta, presence, rng=rng)
    states = simulate(model, trials, noise=True, seed=seed).rates.double().numpy()
    mean = trials.epoch_mean(states, "decode")
    shift = None
    if np.any(mean < 0):
        shift = mean.min(0)
        mean = mean - shift
    rates = shift is None  # signed states are not rates: no minimum rate
    min_rate = MIN_RATE_HZ if rates else 0.0
    result = selectivity_with_chance(
        mean, theta, presence, n_shuffles=n_shuffles, rng=rng, min_rate=min_rate
    )
    result.state_shift = shift
    if rates:
        result.rates_by_epoch = {}
        for name in trials.epochs:
            per_neuron = trials.epoch_mean(states, name).mean(0)
            result.rates_by_epoch[name] = {
                "mean_rate": float(per_neuron.mean()),
                "fraction_silent": float((per_neuron < min_rate).mean()),
            }
    if shift is not None:
        result.mean_rate = result.mean_rate + shift
    return result

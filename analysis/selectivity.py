"""Mixed selectivity: how each neuron is tuned to the angle in each slot
(original_model.md section 6.5).

From set-size-1 trials (random slot, random angle), each neuron's decode-window mean rate gives,
for every slot k, the vector strength over the trials where slot k held the item:

    R_ik = |sum_trials r_i exp(j theta_k)| / sum_trials r_i        (0: untuned, 1: one angle)

and the participation ratio across slots IPR_i = (sum_k R_ik)^2 / (K sum_k R_ik^2), in [1/K, 1]:
1/K for a neuron tuned to a single slot, 1 for equal tuning to every slot (mixed selectivity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from analysis.neural_trials import forced_trials, simulate

__all__ = [
    "vector_strength",
    "selectivity_matrix",
    "participation_ratio",
    "SelectivityResult",
    "run",
    "plot",
]


def vector_strength(rates: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """|sum r exp(j theta)| / sum r over trials: rates (trials, N), theta (trials,) -> (N,).

    0 for a neuron that never fires.
    """
    rates = np.asarray(rates, dtype=float)
    theta = np.asarray(theta, dtype=float)
    if rates.ndim != 2 or theta.shape != rates.shape[:1]:
        raise ValueError(f"rates must be (trials, N) and theta (trials,), got {rates.shape}, {theta.shape}")
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
        r_matrix.sum(1) ** 2, denominator, out=np.full(r_matrix.shape[0], np.nan), where=denominator > 0
    )


@dataclass
class SelectivityResult:
    """Vector strengths (N, K) and the participation ratio per neuron."""

    r_matrix: np.ndarray
    ipr: np.ndarray
    mean_rate: np.ndarray
    n_trials: int

    def to_dict(self) -> dict:
        ipr = self.ipr[np.isfinite(self.ipr)]
        k = self.r_matrix.shape[1]
        return {
            "n_trials": self.n_trials,
            "n_neurons": int(self.r_matrix.shape[0]),
            "max_items": int(k),
            "R": self.r_matrix.tolist(),
            "IPR": [float(v) if np.isfinite(v) else None for v in self.ipr],
            "mean_rate": self.mean_rate.tolist(),
            "summary": {
                "IPR_mean": float(ipr.mean()) if ipr.size else None,
                "IPR_median": float(np.median(ipr)) if ipr.size else None,
                "IPR_bounds": [1.0 / k, 1.0],
                "R_mean": float(self.r_matrix.mean()),
                "n_silent": int((~np.isfinite(self.ipr)).sum()),
            },
        }


def run(model: torch.nn.Module, env, *, n_trials: int = 1000, seed: int = 0) -> SelectivityResult:
    """R and IPR from ``n_trials`` set-size-1 trials (random slot, random angle), env input
    noise, spiking noise on, decode-window mean rates."""
    task = env.unwrapped
    k = int(task.max_items)
    if n_trials < k:
        raise ValueError(f"n_trials must be >= max_items ({k}) so that every slot is shown, got {n_trials}")
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-np.pi, np.pi, (n_trials, k))
    presence = np.zeros((n_trials, k), bool)
    # Every slot shown equally often, in random order, so no slot is missing for small n_trials.
    presence[np.arange(n_trials), rng.permutation(np.arange(n_trials) % k)] = True
    trials = forced_trials(env, theta, presence, rng=rng)
    rates = simulate(model, trials, noise=True, seed=seed).rates.double().numpy()
    mean = trials.epoch_mean(rates, "decode")
    r_matrix = selectivity_matrix(mean, theta, presence)
    return SelectivityResult(r_matrix, participation_ratio(r_matrix), mean.mean(0), n_trials)


def plot(result: SelectivityResult, out_dir: Path) -> list[Path]:
    """IPR above a heatmap of R^T, and the IPR histogram."""
    from analysis.plotting_neural import plot_selectivity

    return plot_selectivity(result, Path(out_dir))

"""Population trajectories of any agent on any neurogym task, in the space of their first PCs.

The agent's states (the Dale RNN's rates, a GRU's hidden state) on ``n_trials`` trials drawn by
the task itself are projected on the principal components of all their (trial, step) states.
Each trial keeps the epoch boundaries the env gave it (neurogym's ``start_ind``/``end_ind``), so
the figure colours every step by the epoch it belongs to in its own trial, whatever the task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from analysis.core.agent_protocol import needs_states
from analysis.core.neural_trials import simulate, task_trials
from analysis.core.pca import fit_pca
from analysis.core.tasks import task_name

__all__ = ["TrajectoryResult", "unavailable", "run", "MAX_SAVED_TRIALS"]

MAX_SAVED_TRIALS = 50
"""Trials whose projected trajectories go into the JSON and the figure (all go into the PCA)."""


@dataclass
class TrajectoryResult:
    """Projected trajectories with each trial's own epoch boundaries."""

    task: str
    projection: np.ndarray
    """(B, T, k) states in PC coordinates (the first MAX_SAVED_TRIALS trials)."""
    epochs: dict[str, np.ndarray]
    """epoch name -> (B, 2) [start, end) steps of each trial, from the env."""
    valid: np.ndarray
    """(B, T) bool, steps inside each trial."""
    explained_variance_ratio: np.ndarray
    n_trials: int
    n_states: int

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "n_trials": self.n_trials,
            "n_states": self.n_states,
            "explained_variance_ratio": self.explained_variance_ratio.tolist(),
            "epochs": {name: bounds.tolist() for name, bounds in self.epochs.items()},
            "trial_lengths": self.valid.sum(1).tolist(),
            "projection": [p[v].tolist() for p, v in zip(self.projection, self.valid, strict=True)],
        }


def unavailable(model: torch.nn.Module, env) -> str | None:
    return needs_states("trajectories", model, env)


def run(
    model: torch.nn.Module,
    env,
    *,
    n_trials: int = 20,
    seed: int = 0,
    n_components: int = 3,
    noise: bool = False,
) -> TrajectoryResult:
    """PCA of the agent's states on ``n_trials`` of the task's own trials (noise off by default)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    trials = task_trials(env, n_trials, np.random.default_rng(seed))
    states = simulate(model, trials, noise=noise, seed=seed).rates.double().numpy()
    pca = fit_pca(states[trials.valid], n_components)
    keep = slice(0, MAX_SAVED_TRIALS)
    return TrajectoryResult(
        task=task_name(env),
        projection=pca.transform(states[keep]),
        epochs={name: bounds[keep] for name, bounds in trials.epochs.items()},
        valid=trials.valid[keep],
        explained_variance_ratio=pca.explained_variance_ratio,
        n_trials=int(n_trials),
        n_states=int(states.shape[-1]),
    )

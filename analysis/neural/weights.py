"""The trained weights (see docs/model.md, section Weights and trajectories).

For a rate network with Dale's law: the input weights B (N x n_in), the effective recurrent
weights W_eff (N x N, column j signed by neuron j's type) and the readout transposed F^T
(N x n_out), with the E and I blocks of the neuron axes marked in the figure. For any other agent:
each of its 2-D parameters under its own name (a GRU: the stacked gate weights and the readout).
Nothing is simulated, so ``n_trials`` and ``seed`` are accepted and unused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from analysis.core.agent_protocol import is_rate_network

__all__ = ["WeightsResult", "weight_matrices", "unavailable", "run"]


@dataclass
class WeightsResult:
    """Named weight matrices with, for each, which of its axes index the agent's neurons."""

    matrices: dict[str, np.ndarray]
    neuron_axes: dict[str, tuple[bool, bool]]
    """name -> (rows are neurons, columns are neurons)."""
    n_excitatory: int | None = None
    """E neurons come first; None without Dale's law."""
    agent: str = ""
    checks: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict:
        summary = {}
        for name, m in self.matrices.items():
            summary[name] = {
                "shape": list(m.shape),
                "min": float(m.min()),
                "max": float(m.max()),
                "mean": float(m.mean()),
                "mean_abs": float(np.abs(m).mean()),
                "fraction_zero": float((m == 0).mean()),
            }
        return {
            "agent": self.agent,
            "n_excitatory": self.n_excitatory,
            "matrices": summary,
            "checks": self.checks,
        }


def weight_matrices(model: torch.nn.Module) -> WeightsResult:
    """The matrices to show for ``model`` (see the module docstring)."""

    def array(t) -> np.ndarray:
        return t.detach().double().cpu().numpy()

    name = type(model).__name__
    if is_rate_network(model) and hasattr(model, "readout_weights"):
        w_eff = array(model.W_eff)
        n_exc = int(model.n_excitatory) if getattr(model, "dales_law", False) else None
        checks = {}
        if n_exc is not None:
            checks = {
                "E columns >= 0": bool(np.all(w_eff[:, :n_exc] >= 0)),
                "I columns <= 0": bool(np.all(w_eff[:, n_exc:] <= 0)),
            }
        return WeightsResult(
            matrices={
                "B": array(model.input_weights),
                "W_eff": w_eff,
                "F^T": array(model.readout_weights).T,
            },
            neuron_axes={"B": (True, False), "W_eff": (True, True), "F^T": (True, False)},
            n_excitatory=n_exc,
            agent=name,
            checks=checks,
        )
    matrices = {n: array(p) for n, p in model.named_parameters() if p.ndim == 2}
    return WeightsResult(
        matrices=matrices, neuron_axes={n: (False, False) for n in matrices}, agent=name
    )


def unavailable(model: torch.nn.Module, env) -> str | None:
    if not any(p.ndim == 2 for p in model.parameters()):
        return f"weights: {type(model).__name__} has no weight matrices (2-D parameters)"
    return None


def run(model: torch.nn.Module, env, *, n_trials: int = 0, seed: int = 0) -> WeightsResult:
    """The agent's weight matrices (nothing is simulated)."""
    del env, n_trials, seed
    return weight_matrices(model)

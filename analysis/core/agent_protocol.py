"""What the neural analyses need from an agent, and how they ask for it.

The agent protocol of training (``vwm_agents.models``) asks only for ``forward(ob) -> outputs``.
The neural analyses need more, and each asks only for what it uses (duck typing, no base class):

* **states**: ``forward(ob (B, T, n_in))`` returns ``(outputs (B, T, n_out), states (B, T, N))``.
  ``states`` are what the analyses call "rates": the Dale RNN's clean firing rates, the GRU's
  hidden state. Every neural analysis needs them.
* **noise switch** (optional): ``forward(..., noise: bool, generator: torch.Generator)``. Agents
  with their own noise (the Dale RNN's spiking noise) take ``noise=False`` to switch it off and a
  generator for reproducible draws. An agent without these keywords is treated as noiseless.
* **one-step map** (fixed points): ``step(states (M, N), inputs (M, n_in) | None) -> (M, N)``,
  one update of the same states that ``forward`` returns, with the agent's noise off. An agent
  that cannot provide it (e.g. a stacked GRU, whose state is more than its last layer) raises
  from ``step``; the analysis then says so and is skipped.
* **readout** (optional, decoded angle of a fixed point): a linear ``readout_weights``
  ``(n_out, N)`` or a callable ``readout(states) -> outputs``.
* **rate network** (divisive normalisation, the E/I weights view): ``input_weights (N, n_in)``,
  ``W_eff (N, N)``, ``phi`` and non-negative rates (the Dale RNN).

Tasks: the VWM analyses (SNR, normalisation, selectivity) need a VWM recall task (``max_items``,
``sample_batch``, ``trial_vectors``); trajectories and fixed points run on any neurogym task.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from vwm_agents.training.evaluation import forward_parameters

__all__ = [
    "takes_noise_switch",
    "run_agent",
    "step_map",
    "readout_map",
    "is_rate_network",
    "needs_states",
    "needs_step",
    "needs_rate_network",
]


def takes_noise_switch(model: nn.Module) -> bool:
    """Whether ``model.forward`` takes ``noise=`` (and so has noise of its own to switch off)."""
    return "noise" in forward_parameters(model)


def run_agent(
    model: nn.Module, ob: Tensor, *, noise: bool = True, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``(outputs, states)`` of ``model`` on ``ob``, with its noise on or off where it has a switch."""
    parameters = forward_parameters(model)
    options = {}
    if "noise" in parameters:
        options["noise"] = noise
    if "generator" in parameters:
        options["generator"] = generator
    out = model(ob, **options)
    if not (isinstance(out, tuple) and len(out) >= 2):
        raise TypeError(
            f"{type(model).__name__}.forward must return (outputs, states) for the neural analyses"
        )
    return out[0], out[1]


def step_map(model: nn.Module, inputs: Tensor | None = None) -> Callable[[Tensor], Tensor]:
    """F(x) = ``model.step(x, inputs)`` at a constant input (zeros when None), noise off."""
    step = model.step
    takes_noise = "noise" in inspect.signature(step).parameters

    def f(states: Tensor) -> Tensor:
        u = None if inputs is None else inputs.to(states).expand(states.shape[0], -1)
        return step(states, u, noise=False) if takes_noise else step(states, u)

    return f


def readout_map(model: nn.Module) -> Callable[[Tensor], Tensor] | None:
    """states -> outputs through the agent's readout, or None when it has none we can call."""
    weights = getattr(model, "readout_weights", None)
    if isinstance(weights, Tensor):
        return lambda states: states @ weights.to(states).mT
    readout = getattr(model, "readout", None)
    if callable(readout):
        return readout
    return None


def is_rate_network(model: nn.Module) -> bool:
    """A rate network in the sense of the normalisation analysis (see the module docstring)."""
    return all(hasattr(model, name) for name in ("input_weights", "W_eff", "phi"))


def needs_states(analysis: str, model: nn.Module, env=None) -> str | None:
    """A reason when ``model.forward`` does not return (outputs, states (B, T, N)); with ``env``,
    checked by running one step of zero input."""
    name = type(model).__name__
    if not callable(getattr(model, "forward", None)):
        return f"{analysis}: needs an agent with forward(ob) -> (outputs, states); {name} has none"
    if env is None:
        return None
    parameter = next(iter(model.parameters()), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    device = parameter.device if parameter is not None else torch.device("cpu")
    n_inputs = int(np.prod(env.observation_space.shape))
    try:
        with torch.no_grad():
            _, states = run_agent(
                model, torch.zeros(1, 1, n_inputs, dtype=dtype, device=device), noise=False
            )
    except TypeError as exc:
        return f"{analysis}: needs forward(ob) -> (outputs, states (B, T, N)); {name}: {exc}"
    if not isinstance(states, Tensor) or states.ndim != 3:
        return f"{analysis}: needs forward(ob) -> (outputs, states (B, T, N)); {name} returns no such states"
    return None


def needs_step(analysis: str, model: nn.Module, n_inputs: int) -> str | None:
    """A reason when the agent has no working one-step map ``step(states, inputs)``."""
    name = type(model).__name__
    if not callable(getattr(model, "step", None)):
        return f"{analysis}: needs a one-step map step(states, inputs); {name} has none"
    parameter = next(iter(model.parameters()), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    device = parameter.device if parameter is not None else torch.device("cpu")
    try:
        with torch.no_grad():
            n_states = _state_size(model, n_inputs, dtype, device)
            step_map(model)(torch.zeros(1, n_states, dtype=dtype, device=device))
    except Exception as exc:  # noqa: BLE001 - any failure means the map is not usable
        return f"{analysis}: {name}.step failed: {' '.join(str(exc).split())}"
    return None


def _state_size(model: nn.Module, n_inputs: int, dtype, device) -> int:
    _, states = run_agent(
        model, torch.zeros(1, 1, n_inputs, dtype=dtype, device=device), noise=False
    )
    return int(states.shape[-1])


def needs_rate_network(analysis: str, model: nn.Module) -> str | None:
    if is_rate_network(model):
        return None
    return (
        f"{analysis}: specific to rate networks with non-negative rates and inputs "
        f"(input_weights, W_eff, phi); {type(model).__name__} has none"
    )

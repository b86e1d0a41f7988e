"""Agents: the registry of built-in models and :func:`build_agent`.

Agent protocol: any ``nn.Module`` whose constructor takes ``(n_inputs, n_outputs, **kwargs)`` and
whose ``forward(ob (B, T, n_in))`` returns outputs ``(B, T, n_out)`` or a pair
``(outputs (B, T, n_out), rates (B, T, N))``. Optional hooks the trainer calls when present:
``apply_constraints()`` after every optimiser step and ``set_noise_factor(k)`` (noise curriculum);
a class attribute ``nonnegative_rates = True`` states that the rates ``forward`` returns are >= 0
by construction (the activity penalty then takes its constant-gradient form).
Register nothing: pass ``"package.module:ClassName"`` as the agent name. The neural analyses ask
for a little more (states from ``forward``, an optional ``noise``/``generator`` switch, a one-step
map ``step(states, inputs)`` for fixed points): see the analysis protocol in docs/analyses.md and
``analysis.core.agent_protocol``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from types import MappingProxyType

from torch import nn

from vwm_agents.models.dale_rnn import DaleRNN
from vwm_agents.models.euler import simulate
from vwm_agents.models.gru import GRUAgent

AGENTS: Mapping[str, type[nn.Module]] = MappingProxyType({"dale_rnn": DaleRNN, "gru": GRUAgent})

__all__ = ["AGENTS", "DaleRNN", "GRUAgent", "build_agent", "resolve_agent", "simulate"]


def resolve_agent(name: str) -> type[nn.Module]:
    """The agent class for a registered name or a ``"package.module:ClassName"`` import path."""
    if name in AGENTS:
        return AGENTS[name]
    allowed = f"one of {tuple(AGENTS)} or an import path 'package.module:ClassName'"
    if not isinstance(name, str) or name.count(":") != 1:
        raise ValueError(f"agent name must be {allowed}, got {name!r}")
    module_name, class_name = name.split(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(
            f"agent name {name!r} could not be imported ({error}); must be {allowed}"
        ) from None
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise ValueError(f"agent {name!r} must name an nn.Module subclass, got {cls!r}")
    return cls


def build_agent(name: str, n_inputs: int, n_outputs: int, **kwargs) -> nn.Module:
    """Construct agent ``name`` for a task with ``n_inputs`` channels and ``n_outputs`` outputs.

    The kwargs are not checked here: a config's agent kwargs are checked once, when the config
    is validated (:meth:`vwm_agents.config.AgentConfig.check`), and the agent judges its values.
    Called directly, an unknown keyword fails as any Python call does (TypeError).

    >>> import torch
    >>> from vwm_agents import build_agent
    >>> agent = build_agent("dale_rnn", 3, 2, n_neurons=16)
    >>> outputs, rates = agent(torch.zeros(1, 5, 3))
    >>> tuple(outputs.shape), tuple(rates.shape)
    ((1, 5, 2), (1, 5, 16))
    """
    return resolve_agent(name)(n_inputs, n_outputs, **kwargs)

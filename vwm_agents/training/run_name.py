"""The name of a run directory, from the config alone (nothing is built).

``vwm_agents.training.rundir`` re-exports :func:`run_name`; a sweep names its trials with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vwm_agents.config import Config

__all__ = ["run_name"]


def run_name(config: Config, *, agent_class: type | None = None) -> str:
    """The run directory name, the reference's pattern where its fields apply.

    ``{run_name}_n{N}item{K}PI{0|1}{noise_type[:5]}{k}{error_def}``, e.g.
    ``EasyTask1_n256item10PI1gamma0.05rad``. Each piece appears only when it applies: ``n`` for
    agents with ``n_neurons``, ``n_hidden`` or ``hidden_size``, ``item`` for tasks with
    ``max_items``, ``PI`` for agents with ``positive_input``, the noise for agents with
    ``spike_noise_type``. VWM tasks (those with ``sample_batch``) end in the error definition,
    other tasks in ``xent`` (cross-entropy). Values not set in the config are the defaults of the
    agent's and the env's signatures: nothing is built. ``agent_class``: the class of
    ``agent.name`` when the caller resolved it already.
    """
    if agent_class is None:
        agent_class = config.agent_class()
    agent = _defaults(agent_class.__init__, config.agent.kwargs)
    env_class = config.task.env_class()
    task = _defaults(env_class.__init__, config.task.kwargs) if env_class is not None else {}
    parts = [config.logging.run_name, "_"]
    for key in ("n_neurons", "n_hidden", "hidden_size"):
        if key in agent:
            parts.append(f"n{agent[key]}")
            break
    if "max_items" in task:
        parts.append(f"item{task['max_items']}")
    if "positive_input" in agent:
        parts.append(f"PI{int(bool(agent['positive_input']))}")
    if "spike_noise_type" in agent:
        parts.append(
            f"{str(agent['spike_noise_type']).lower()[:5]}{agent.get('spike_noise_factor', '')}"
        )
    is_vwm = env_class is not None and hasattr(env_class, "sample_batch")
    parts.append(config.training.error_def if is_vwm else "xent")
    return "".join(parts)


def _defaults(function: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """``function``'s keyword defaults, updated with ``given``."""
    settings = {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    settings.update(given)
    return settings

"""vwm_tasks: the delayed multi-item orientation recall task as neurogym/gymnasium environments.

Importing this package registers ``VWMRecall-v0`` and ``VWMRecallCued-v0`` with gymnasium.
``gym.make("vwm_tasks:VWMRecall-v0")`` imports it first and works on every gymnasium version;
plain ``gym.make("VWMRecall-v0")`` works without an import through the ``gymnasium.envs`` entry
point, which gymnasium loads before 1.0 (neurogym 2.3 requires gymnasium 0.29). The package stays
light: the env classes, which import neurogym, load on first attribute access.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from vwm_tasks._gym_plugin import register_envs

__all__ = [
    "VWMRecall",
    "VWMRecallCued",
    "TrialBatch",
    "collect_batch",
    "batch_tensors",
    "plot_trial",
    "register_envs",
]

_LAZY = {
    "VWMRecall": "vwm_tasks.recall",
    "VWMRecallCued": "vwm_tasks.recall_cued",
    "TrialBatch": "vwm_tasks.batch",
    "collect_batch": "vwm_tasks.batch",
    "batch_tensors": "vwm_tasks.batch",
    "plot_trial": "vwm_tasks.plotting",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vwm_tasks' has no attribute {name!r}")


register_envs()

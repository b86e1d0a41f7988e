"""analysis: behavioural and neural analyses of trained agents, and the comparison with people.

Entry points: ``python -m analysis RUN_DIR`` (every analysis of a run that applies to its agent
and task; the list is :data:`analysis.registry.ANALYSES`) and ``python -m analysis.fit_table
DATA.csv`` (mixture models for anyone's behavioural data table).

Sub-packages by topic; lower never imports higher, compute never imports ``viz``:

1. ``core``: the agent protocol, trials from a run (behavioural and neural), the task helpers,
   circular statistics, PCA, the JSON form of results;
2. ``behaviour`` (errors, mixture models, performance) and ``neural`` (SNR, divisive
   normalisation, selectivity, fixed points, weights, trajectories);
3. ``human``: people's data, the comparison, the distance and the criteria of a human-like fit;
4. ``viz``: every figure; 5. ``report``: the HTML reports;
6. the registry and the CLIs (``__main__``, ``fit_table``) on top.

Modules of the old flat layout (``analysis.mixture``, ``analysis.plotting_neural``, ...) are not
kept as aliases: importing one fails with one line naming its new place (:data:`MOVED`).
"""

from __future__ import annotations

import importlib.abc
import sys
from types import MappingProxyType

__all__ = ["MOVED"]

MOVED = MappingProxyType(
    {
        "analysis.agent_protocol": "analysis.core.agent_protocol",
        "analysis.trials": "analysis.core.trials",
        "analysis.neural_trials": "analysis.core.neural_trials",
        "analysis.circstats": "analysis.core.circstats",
        "analysis.errors": "analysis.behaviour.errors",
        "analysis.mixture": "analysis.behaviour.mixture",
        "analysis.performance": "analysis.behaviour.performance",
        "analysis.human_data": "analysis.human.data",
        "analysis.distance": "analysis.human.distance",
        "analysis.snr": "analysis.neural.snr",
        "analysis.normalization": "analysis.neural.dn",
        "analysis.selectivity": "analysis.neural.selectivity",
        "analysis.fixed_points": "analysis.neural.fixed_points",
        "analysis.fixed_point_finder": "analysis.neural.fixed_point_finder",
        "analysis.weights": "analysis.neural.weights",
        "analysis.trajectories": "analysis.neural.trajectories",
        "analysis.plotting_behaviour": "analysis.viz.behaviour",
        "analysis.plotting_dynamics": "analysis.viz.dynamics",
        "analysis.plotting_human": "analysis.viz.human",
        "analysis.plotting_neural": "analysis.viz.neural",
        "analysis.fit": "analysis.fit_table",
    }
)
"""Old module -> its place since the topic layout (CHANGELOG.md, "analysis layout")."""


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Turns an import of a module listed in :data:`MOVED` into one line naming the new place."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ARG002 - the finder protocol
        if fullname in MOVED:
            raise ModuleNotFoundError(
                f"{fullname} moved to {MOVED[fullname]}; import that instead (see CHANGELOG.md)",
                name=fullname,
            )
        return None


def __getattr__(name: str):
    if f"analysis.{name}" in MOVED:
        raise ImportError(
            f"analysis.{name} moved to {MOVED[f'analysis.{name}']}; import that "
            "instead (see CHANGELOG.md)"
        )
    raise AttributeError(name)


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())

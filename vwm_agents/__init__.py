"""vwm_agents: the Dale's-law noisy rate RNN, other agents, the supervised trainer and sweeps.

The public API, one straight path: a config is loaded and validated once, trained into a run
directory, and loaded back for analysis::

    load_config -> train -> RunDir (the run directory) -> load_run

>>> import tempfile
>>> from vwm_agents import load_config, load_run, train
>>> config = load_config(overrides=[
...     "task.max_items=2", "agent.n_neurons=16", "training.num_iterations=2",
...     "training.batch_size=4", "training.eval_batch_size=8", "training.threads=1",
...     "training.device=cpu", "logging.period=1", "logging.progress=false"])
>>> run_dir = train(config, tempfile.mkdtemp())
>>> load_run(run_dir, checkpoint="latest").iteration
2

Packages: :mod:`vwm_agents.config` (the schema, loading, the original format; no torch at
import), :mod:`vwm_agents.models` (the networks, the Euler loop, noise, random numbers, the C
kernels), :mod:`vwm_agents.training` (trainers, the run directory, checkpoints, losses,
schedules, evaluation), :mod:`vwm_agents.sweep` (Ray Tune sweeps). Command lines:
``python -m vwm_agents.train`` and ``python -m vwm_agents.sweep``.

The names below are imported on first use, so ``import vwm_agents.config`` loads no torch.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from typing import Any

# name -> the module that defines it
_PUBLIC = {
    "Config": "vwm_agents.config",
    "ConfigError": "vwm_agents.config",
    "load_config": "vwm_agents.config",
    "build_agent": "vwm_agents.models",
    "load_run": "vwm_agents.training.run",
    "LoadedRun": "vwm_agents.training.run",
    "RunDir": "vwm_agents.training.rundir",
    "RunDirError": "vwm_agents.training.rundir",
    "CheckpointError": "vwm_agents.training.checkpoint",
    "TrainingDiverged": "vwm_agents.training.trainer",
    "TrainingInterrupted": "vwm_agents.training.trainer",
    "TrainingOutOfMemory": "vwm_agents.training.trainer",
}

# Modules that sat at the top of vwm_agents before the sub-packages (0.1): importing one fails
# with one line naming its new place.
MOVED_MODULES = {
    "accel": "vwm_agents.training.accel",
    "checkpoint": "vwm_agents.training.checkpoint",
    "ensemble": "vwm_agents.models.ensemble",
    "ensemble_trainer": "vwm_agents.training.ensemble_trainer",
    "evaluation": "vwm_agents.training.evaluation",
    "losses": "vwm_agents.training.losses",
    "native": "vwm_agents.models.native",
    "noise": "vwm_agents.models.noise",
    "philox": "vwm_agents.models.philox",
    "plotting": "vwm_agents.training.plotting",
    "run": "vwm_agents.training.run",
    "rundir": "vwm_agents.training.rundir",
    "schedules": "vwm_agents.training.schedules",
    "tensorboard_log": "vwm_agents.training.tensorboard_log",
    "trainer": "vwm_agents.training.trainer",
}

__all__ = sorted([*_PUBLIC, "train"])


def moved_message(name: str) -> str:
    """The one line that an old module path ``vwm_agents.<name>`` fails with."""
    return (
        f"vwm_agents.{name} moved to {MOVED_MODULES[name]}; the public API is "
        "vwm_agents.load_config, train, load_run, build_agent and RunDir"
    )


class _MovedModules(importlib.abc.MetaPathFinder):
    """Consulted after the normal finders (it is last on ``sys.meta_path``), so it only sees
    module names that no longer exist: those of :data:`MOVED_MODULES` fail with their new place."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        package, _, name = fullname.partition(".")
        if package == __name__ and name in MOVED_MODULES:
            # ImportError, not ModuleNotFoundError: "from vwm_agents import trainer" would
            # swallow the latter and say only "cannot import name".
            raise ImportError(moved_message(name), name=fullname)
        return None


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str) -> Any:
    if name == "train":  # the command line's module, callable as the function (see its doc)
        return importlib.import_module("vwm_agents.train")
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in MOVED_MODULES:
        raise AttributeError(moved_message(name))
    raise AttributeError(f"module 'vwm_agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})

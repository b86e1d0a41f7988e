"""Building the env and the agent of a config, naming runs, and loading finished runs.

A run directory (written by :func:`vwm_agents.trainer.train`)::

    runs/<name>/
        config.yaml            the resolved config (our schema)
        history.yaml           one record per logging step
        metrics.json           final evaluation on the fixed held-out batch
        training_history.png
        checkpoints/latest.pt  everything needed to resume exactly
        checkpoints/best.pt    weights with the lowest held-out error
"""

from __future__ import annotations

import inspect
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from vwm_agents.checkpoint import CheckpointError, load_checkpoint, load_model_state
from vwm_agents.config import Config, ConfigError, load_config
from vwm_agents.rundir import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    PLOT_FILE,
    RunDirError,
    read_history,
    run_name,
)

__all__ = [
    "RunDirError",
    "LoadedRun",
    "make_env",
    "build_model",
    "is_discrete",
    "run_name",
    "resolve_device",
    "load_run",
    "CONFIG_FILE",
    "HISTORY_FILE",
    "METRICS_FILE",
    "PLOT_FILE",
    "CHECKPOINT_DIR",
    "read_history",
]

def make_env(config: Config) -> gym.Env:
    """``gym.make(task.id, **task kwargs)``; the env's own ValueError becomes ``task.<arg>: ...``."""
    from vwm_agents.config import _env_class

    _env_class(config.task.id)  # raises ConfigError for unknown ids (and imports neurogym)
    kwargs = config.task.kwargs
    try:
        with warnings.catch_warnings():
            # gymnasium's checker warns about neurogym's metadata on every make
            warnings.filterwarnings("ignore", message=".*render_modes.*")
            return gym.make(config.task.id, disable_env_checker=True, **kwargs)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(_name_argument("task", kwargs, exc)) from None


def is_discrete(env: gym.Env) -> bool:
    """Whether the env's actions are class labels (cross-entropy) rather than a Box (VWM error)."""
    return isinstance(env.action_space, gym.spaces.Discrete)


def build_model(config: Config, env: gym.Env) -> nn.Module:
    """The configured agent sized for ``env``, on the CPU, with weights from ``training.seed``.

    The agent's ``dt`` (if it takes one) comes from the env; setting a different ``agent.dt`` is
    an error. Seeding uses a forked torch RNG, so building a model leaves the global RNG alone.
    """
    from vwm_agents.models import build_agent

    agent_class = config.agent_class()
    kwargs = dict(config.agent.kwargs)
    env_dt = getattr(env.unwrapped, "dt", None)
    if "dt" in inspect.signature(agent_class.__init__).parameters and env_dt is not None:
        if "dt" in kwargs and not math.isclose(float(kwargs["dt"]), float(env_dt)):
            raise ConfigError(f"agent.dt: must equal the task's dt ({env_dt}), got {kwargs['dt']}")
        kwargs["dt"] = float(env_dt)
    n_inputs = int(env.observation_space.shape[-1])
    n_outputs = int(env.action_space.n) if is_discrete(env) else int(env.action_space.shape[-1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.training.seed)
        try:
            return build_agent(config.agent.name, n_inputs, n_outputs, **kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigError(_name_argument("agent", kwargs, exc)) from None


def _name_argument(section: str, kwargs: dict[str, Any], exc: Exception) -> str:
    """One line ``section.arg: message``, naming the kwarg the message talks about if it can."""
    text = str(exc)
    if isinstance(exc, KeyError):  # str(KeyError) is the repr of its argument
        text = text.strip("'\"")
    message = " ".join(text.split()) or type(exc).__name__
    # The argument a message is about comes first in it ("set_sizes must be ... max_items=10").
    positions = {}
    for key in kwargs:
        found = re.search(rf"\b{re.escape(key)}\b", message)
        if found:
            positions[key] = (found.start(), -len(key))
    if positions:
        return f"{section}.{min(positions, key=positions.get)}: {message}"
    return f"{section}: {message}"


def resolve_device(requested: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; an explicit cuda request without CUDA is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"training.device: {requested} requested but this torch has no usable CUDA; "
                "use auto or cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"training.device: {requested} requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist"
            )
    return device


@dataclass
class LoadedRun:
    """A trained run, ready for analysis."""

    config: Config
    model: nn.Module
    env: Any
    run_dir: Path
    iteration: int
    checkpoint: str


def load_run(run_dir: str | Path, checkpoint: str = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild a run's env and model (eval mode) from ``run_dir/config.yaml`` and a checkpoint.

    Args:
        checkpoint: ``"best"`` (lowest held-out error) or ``"latest"``; ``"best"`` falls back to
            ``"latest"`` only if the run never reached a logging step.

    Raises:
        RunDirError: missing directory, config or checkpoint, or a corrupt/mismatching file.
    """
    if checkpoint not in ("best", "latest"):
        raise ValueError(f"checkpoint must be 'best' or 'latest', got {checkpoint!r}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: run directory not found")
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise RunDirError(f"{run_dir}: no {CONFIG_FILE}; not a run directory")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise RunDirError(f"{config_path}: {exc}") from None
    path = run_dir / CHECKPOINT_DIR / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.exists():
        path = run_dir / CHECKPOINT_DIR / "latest.pt"
    if not path.exists():
        raise RunDirError(f"{run_dir}: no checkpoint {checkpoint}.pt in {CHECKPOINT_DIR}/")
    try:
        env = make_env(config)
        model = build_model(config, env)
        payload = load_checkpoint(path)
        load_model_state(model, payload["model"], path)
    except (CheckpointError, ConfigError) as exc:
        raise RunDirError(str(exc)) from None
    model.to(torch.device(device)).eval()
    return LoadedRun(
        config=config,
        model=model,
        env=env.unwrapped,
        run_dir=run_dir,
        iteration=int(payload.get("iteration", 0)),
        checkpoint=str(payload.get("kind", path.stem)),
    )

"""A sweep's trials: the grid crossed with the explicit trials, and each trial's configuration.

:func:`expand_trials` turns the sweep file's ``grid`` and ``trials`` into the swept values of
every trial; :func:`trial_config` builds one trial's configuration from the validated base (its
env and agent built once, so a bad value fails before the sweep starts, naming the key as the
sweep file wrote it). The sweep file itself, its keys and their validation, is
:mod:`vwm_agents.sweep.spec`, which re-exports the names here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vwm_agents.config import Config, ConfigError

__all__ = [
    "SweepError",
    "TrialPlan",
    "expand_trials",
    "trial_config",
    "override",
    "show_params",
    "check_builds",
]


class SweepError(ValueError):
    """A bad sweep file or command line; the message is one line naming the key."""


@dataclass(frozen=True)
class TrialPlan:
    """One trial: its swept values, the resolved config and where its run directory goes."""

    name: str
    params: dict[str, Any]
    config: dict[str, Any]
    run_dir: Path

    def to_payload(self) -> dict[str, Any]:
        """Plain data for Ray's parameter space (the config travels resolved, so nodes need no
        access to the base file)."""
        return {
            "name": self.name,
            "params": self.params,
            "config": self.config,
            "run_dir": str(self.run_dir),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> TrialPlan:
        return cls(
            name=payload["name"],
            params=dict(payload["params"]),
            config=dict(payload["config"]),
            run_dir=Path(payload["run_dir"]),
        )


def expand_trials(
    grid: Mapping[str, Sequence[Any]], trials: Sequence[Mapping[str, Any]] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The swept values of every trial: each explicit trial crossed with the grid's cartesian
    product (grid keys vary fastest), and for each value where it came from (``grid.`` or
    ``trials[i].``, used to name the key in error messages)."""
    explicit = list(trials) or [{}]
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    param_sets, sources = [], []
    for i, trial in enumerate(explicit):
        for key in trial:
            if key in grid:
                raise SweepError(f"trials[{i}].{key}: is also swept by grid.{key}; keep one")
        for point in points:
            params = {**trial, **point}
            if params in param_sets:
                raise SweepError(f"trials[{i}]: repeats the trial {show_params(params)}")
            param_sets.append(params)
            sources.append(
                {**{key: f"trials[{i}]." for key in trial}, **{key: "grid." for key in point}}
            )
    if param_sets == [{}]:
        raise SweepError("sweep: has no trials; give a grid and/or a list of trials")
    return param_sets, sources


def show_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in params.items())


def override(key: str, value: Any) -> str:
    """``key=value`` in the YAML form load_config parses back to the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31).strip()
    if text.endswith("\n..."):  # a document-end marker follows plain scalars
        text = text[: -len("\n...")]
    return f"{key}={text}"


def trial_config(
    base_config: Config,
    params: Mapping[str, Any],
    source: Mapping[str, str],
    trial_name: str,
    output: Path,
    *,
    gpus: float,
    threads: int,
) -> Config:
    """The configuration of one trial: the base with the trial's values and the values the
    sweep manages (run name, output folder, quiet; on a CPU-only reservation the CPU and
    ``threads`` threads), its env and agent built once.

    Raises:
        SweepError: naming the offending key as the sweep file wrote it (``source``).
    """
    # The base is loaded and validated once; a trial changes only its own values (checked as they
    # are set), then the values the sweep manages.
    managed: dict[str, Any] = {
        "logging.run_name": trial_name,
        "logging.out_dir": str(output),
        "logging.progress": False,
    }
    if gpus == 0:
        device = params.get("training.device", base_config.training.device)
        if device != "auto" and device != "cpu":
            where = source.get("training.device", "base: ")
            raise SweepError(
                f"{where}training.device: is {device!r} but resources.gpus is 0; reserve a GPU "
                "(e.g. resources: {gpus: 0.5}) or run on cpu"
            )
        managed["training.device"] = "cpu"
        if "training.threads" not in params:
            managed["training.threads"] = threads
    try:
        config = base_config.with_values({**params, **managed})
        check_builds(config)
    except ConfigError as exc:
        message = " ".join(str(exc).split())
        for key in sorted(params, key=len, reverse=True):
            if message.startswith(f"{key}:") or message.startswith(f"{key}."):
                raise SweepError(f"{source[key]}{message}") from None
        # a check between two values names one of them ("agent.dt: dt / tau_min must be ..."):
        # name the swept one the message mentions, as the sweep file wrote it
        for key in sorted(params, key=len, reverse=True):
            if re.search(rf"\b{re.escape(key.rsplit('.', 1)[-1])}\b", message):
                raise SweepError(f"{source[key]}{key}: {message}") from None
        raise SweepError(f"trial {trial_name} ({show_params(params)}): {message}") from None
    return config


def check_builds(config: Config) -> None:
    """Build the trial's env and agent once, so that values only they can judge (an
    ``ilc_noise`` below 0, a ``tau_min`` below ``dt``) fail now, naming the key, rather than on a
    worker after the sweep started. Raises ConfigError."""
    from vwm_agents.training.resources import check_memory
    from vwm_agents.training.run import build_model, make_env

    env = make_env(config)
    try:
        if config.training.device == "cpu":  # GPU trials may run on other machines
            check_memory(config, env, "cpu")  # before an absurd size hangs building the agent
        build_model(config, env)
    finally:
        env.close()

"""The sweep file: its keys, the trials it expands to, and their validation.

A sweep file (YAML)::

    name: noise_level              # optional; default: the file's stem
    base: default                  # config file (relative to the sweep file) or a shipped name
    set:                           # optional overrides of the base for every trial (not swept)
      task.input_strength: 120
    grid:                          # dotted config keys, as in --set -> values (cartesian product)
      agent.spike_noise_factor: [0.05, 0.1, 0.2]
      training.seed: [0, 1, 2]
    trials:                        # optional explicit override mappings, crossed with the grid
      - {agent.n_neurons: 64}
      - {agent.n_neurons: 256, training.batch_size: 256}
    resources: {cpus: 1, gpus: 0}  # per trial; gpus may be a fraction
    output: sweeps/noise_level     # relative to the working directory
    max_failures: 1                # Ray retries of a crashed trial (resumed from its checkpoint)
    human:                         # optional: score every trial's closeness to people
      target: shipped              # the shipped van den Berg et al. (2012) data, or a data path
      trials: 2000                 # trials per set size of the comparison (default: analysis's)

The whole file is validated here -- its keys, the grid, and every trial's configuration (loaded
through :func:`vwm_agents.config.load_config`, its env and agent built once) -- and nothing is
written when any of it is wrong: a bad value ends in one :class:`SweepError` line naming the key
as the sweep file wrote it (``grid.task.ilc_noise: ...``). Expanding the grid and the explicit
trials, and building each trial's configuration, is :mod:`vwm_agents.sweep.plan` (its
:class:`SweepError`, :class:`TrialPlan` and :func:`expand_trials` are re-exported here).

Each trial's run directory is named like the reference's sweeps (``logging.run_name`` = the swept
values, e.g. ``spike_noise_factor-0.1_seed-0``) by :func:`vwm_agents.training.rundir.run_name`, under
``output``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vwm_agents.config import ConfigError, load_config
from vwm_agents.config.loading import shipped_configs
from vwm_agents.sweep.names import trial_names
from vwm_agents.sweep.plan import SweepError, TrialPlan, expand_trials, override, trial_config
from vwm_agents.training.rundir import run_name

__all__ = [
    "SweepError",
    "Resources",
    "HumanTarget",
    "TrialPlan",
    "SweepSpec",
    "load_sweep",
    "sweep_from_dict",
    "expand_trials",
    "check_output",
    "shipped_sweeps",
]

SWEEP_KEYS: tuple[str, ...] = (
    "name",
    "base",
    "set",
    "grid",
    "trials",
    "resources",
    "output",
    "max_failures",
    "human",
)
RESOURCE_KEYS: tuple[str, ...] = ("cpus", "gpus")
HUMAN_KEYS: tuple[str, ...] = ("target", "trials")
SHIPPED_TARGET = "shipped"
SEED_KEY = "training.seed"
# Keys the sweep sets for every trial: its run directory and a quiet, single-threaded CPU run.
MANAGED_KEYS: tuple[str, ...] = ("logging.run_name", "logging.out_dir", "logging.progress")


# ----------------------------------------------------------------------------------------------
# The sweep file


@dataclass(frozen=True)
class Resources:
    """What Ray reserves for one trial."""

    cpus: float = 1.0
    gpus: float = 0.0

    @property
    def threads(self) -> int:
        """Torch threads of a CPU trial: one per reserved core."""
        return max(1, int(self.cpus))


@dataclass(frozen=True)
class HumanTarget:
    """The sweep file's ``human`` section: after training, each trial is compared with people.

    ``target`` is ``"shipped"`` (the data set shipped with ``analysis``) or the absolute path of
    a data set ``python -m analysis --human-data`` reads; ``trials`` the trials per set size of
    the comparison (None: the analysis's default).
    """

    target: str = SHIPPED_TARGET
    trials: int | None = None

    def analysis_args(self) -> list[str]:
        """The options of ``python -m analysis RUN_DIR --only human`` that ask for this."""
        args = [] if self.target == SHIPPED_TARGET else ["--human-data", self.target]
        return args if self.trials is None else [*args, "--trials", str(self.trials)]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file."""

    name: str
    path: Path | None
    base: str
    swept_keys: tuple[str, ...]
    trials: tuple[TrialPlan, ...]
    resources: Resources
    output: Path
    max_failures: int = 1
    human: HumanTarget | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # as written to sweep.yaml


class _SweepLoader(yaml.SafeLoader):
    """YAML loader that also reads ``1e-5`` as a number (PyYAML follows YAML 1.1, where a float
    needs a dot: a grid written ``[1e-6, 1e-5]`` would otherwise hold strings)."""


_SweepLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_sweep(path: str | Path, *, output: str | Path | None = None) -> SweepSpec:
    """Read and validate a sweep file (or the name of a shipped sweep, e.g. ``noise_level_tiny``).

    Every trial's configuration is built and checked here; nothing is written.
    ``output`` overrides the file's ``output`` folder.

    Raises:
        SweepError: naming the offending key, e.g. ``grid.agent.spike_noise_factr: unknown ...``.
    """
    path = _resolve_sweep_path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_SweepLoader)
    except OSError as exc:
        raise SweepError(f"sweep: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"sweep: {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    return sweep_from_dict(data, path=path, output=output)


def sweep_from_dict(
    data: Any, *, path: Path | None = None, output: str | Path | None = None
) -> SweepSpec:
    """Validate sweep-file data (see :func:`load_sweep`); relative ``base`` paths are taken from
    ``path``'s folder (the working directory when ``path`` is None)."""
    if not isinstance(data, Mapping):
        raise SweepError(f"sweep: must be a mapping with keys {', '.join(SWEEP_KEYS)}")
    for key in data:
        if key not in SWEEP_KEYS:
            raise SweepError(
                f"{key}: unknown key of a sweep file; allowed: {', '.join(SWEEP_KEYS)}"
            )
    name = data.get("name", path.stem if path is not None else "sweep")
    if not isinstance(name, str) or not re.fullmatch(r"[\w.+-]+", name):
        raise SweepError(f"name: must be a name of letters, digits and ._+-, got {name!r}")
    base_dir = path.parent if path is not None else Path.cwd()
    base_path, base_label = _resolve_base(data.get("base", "default"), base_dir)
    fixed = _check_set(data.get("set"))
    grid = _check_grid(data.get("grid"))
    explicit = _check_trials(data.get("trials"))
    resources_ = _check_resources(data.get("resources"))
    human = _check_human(data.get("human"), base_dir)
    max_failures = data.get("max_failures", 1)
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 0:
        raise SweepError(f"max_failures: must be an integer >= 0, got {max_failures!r}")
    if output is None:
        output = data.get("output", f"sweeps/{name}")
        if not isinstance(output, str) or not output:
            raise SweepError(f"output: must be a folder path, got {output!r}")
    output = Path(output).expanduser().resolve()

    fixed_overrides = [override(key, value) for key, value in fixed.items()]
    try:
        base_config = load_config(base_path, fixed_overrides)
    except ConfigError as exc:
        message = str(exc)
        where = (
            "set."
            if any(message.startswith(f"{key}:") for key in fixed)
            else f"base ({base_label}): "
        )
        raise SweepError(f"{where}{message}") from None
    param_sets, sources = expand_trials(grid, explicit)
    for key in fixed:
        if any(key in params for params in param_sets):
            raise SweepError(f"set.{key}: is also swept (by grid or trials); keep one")
    swept_keys = tuple(dict.fromkeys(key for params in param_sets for key in params))
    names = trial_names(param_sets, swept_keys)
    plans = []
    for params, source, trial_name in zip(param_sets, sources, names, strict=True):
        config = trial_config(
            base_config,
            params,
            source,
            trial_name,
            output,
            gpus=resources_.gpus,
            threads=resources_.threads,
        )
        plans.append(TrialPlan(trial_name, params, config.to_dict(), output / run_name(config)))
    raw = {
        "name": name,
        "base": base_label,
        "set": fixed,
        "grid": grid,
        "trials": explicit,
        "resources": asdict(resources_),
        "output": str(output),
        "max_failures": max_failures,
    }
    if human is not None:
        raw["human"] = asdict(human)
    return SweepSpec(
        name=name,
        path=path,
        base=base_label,
        swept_keys=swept_keys,
        trials=tuple(plans),
        resources=resources_,
        output=output,
        max_failures=max_failures,
        human=human,
        raw=raw,
    )


def shipped_sweeps() -> list[str]:
    """Names of the sweep files shipped with the package (``configs/sweeps/*.yaml``)."""
    return _shipped_names("sweeps")


def _resolve_sweep_path(path: str | Path) -> Path:
    path = Path(path)
    if path.exists() or path.suffix:
        return path
    shipped = shipped_configs().joinpath("sweeps", f"{path}.yaml")
    if shipped.is_file():
        return Path(str(shipped))
    names = ", ".join(_shipped_names("sweeps")) or "none"
    raise SweepError(f"sweep: no file {path!s}; shipped sweeps: {names}")


def _shipped_names(folder: str | None = None) -> list[str]:
    root = shipped_configs()
    if folder is not None:
        root = root.joinpath(folder)
    if not root.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def _resolve_base(base: Any, base_dir: Path) -> tuple[str | None, str]:
    """(path for load_config -- None for the embedded default --, label for messages)."""
    if not isinstance(base, str) or not base:
        raise SweepError(f"base: must be a config file or a shipped config name, got {base!r}")
    for candidate in (base_dir / base, base_dir / f"{base}.yaml"):
        if candidate.is_file():
            return str(candidate), str(candidate)
    if base == "default":
        return None, "default"
    shipped = shipped_configs().joinpath(f"{base}.yaml")
    if shipped.is_file():
        return str(shipped), base
    raise SweepError(
        f"base: no config file {base!r} next to the sweep file and no shipped config of that "
        f"name; shipped: {', '.join(_shipped_names()) or 'default'}"
    )


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", key):
        raise SweepError(f"{where}{key}: must be a dotted config key such as agent.n_neurons")
    if key in MANAGED_KEYS:
        raise SweepError(
            f"{where}{key}: is set by the sweep (each trial's run directory is named after its "
            "swept values, under the sweep's output folder); remove it"
        )
    return key


def _check_set(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SweepError("set: must be a mapping of dotted config keys to values")
    return {_check_key(key, "set."): value for key, value in data.items()}


def _check_grid(grid: Any) -> dict[str, list[Any]]:
    if grid is None:
        return {}
    if not isinstance(grid, Mapping):
        raise SweepError("grid: must be a mapping of dotted config keys to lists of values")
    out = {}
    for key, values in grid.items():
        _check_key(key, "grid.")
        if not isinstance(values, list) or not values:
            raise SweepError(f"grid.{key}: must be a non-empty list of values, got {values!r}")
        for i, value in enumerate(values):
            if value in values[:i]:
                raise SweepError(f"grid.{key}: lists {value!r} twice")
        out[key] = list(values)
    return out


def _check_trials(trials: Any) -> list[dict[str, Any]]:
    if trials is None:
        return []
    if not isinstance(trials, list) or not trials:
        raise SweepError(
            "trials: must be a non-empty list of mappings of dotted config keys to values"
        )
    out = []
    for i, trial in enumerate(trials):
        if not isinstance(trial, Mapping) or not trial:
            raise SweepError(
                f"trials[{i}]: must be a non-empty mapping of dotted config keys to values"
            )
        out.append({_check_key(key, f"trials[{i}]."): value for key, value in trial.items()})
    return out


def _check_human(data: Any, base_dir: Path) -> HumanTarget | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise SweepError(
            f"human: must be a mapping with keys {', '.join(HUMAN_KEYS)}, got {data!r}"
        )
    for key in data:
        if key not in HUMAN_KEYS:
            raise SweepError(f"human.{key}: unknown key; allowed: {', '.join(HUMAN_KEYS)}")
    target = data.get("target", SHIPPED_TARGET)
    if not isinstance(target, str) or not target:
        raise SweepError(
            f"human.target: must be '{SHIPPED_TARGET}' or the path of a data set, got {target!r}"
        )
    if target != SHIPPED_TARGET:
        # relative to the sweep file, like base; resolved now so that every node reads the same
        path = (base_dir / Path(target).expanduser()).resolve()
        if not path.exists():
            raise SweepError(
                f"human.target: no file or folder {target!r} (looked for {path}); "
                f"give '{SHIPPED_TARGET}' or the path of a data set"
            )
        target = str(path)
    trials = data.get("trials")
    if trials is not None and (
        isinstance(trials, bool) or not isinstance(trials, int) or trials < 1
    ):
        raise SweepError(
            f"human.trials: must be a positive integer (trials per set size), got {trials!r}"
        )
    return HumanTarget(target=target, trials=trials)


def _check_resources(data: Any) -> Resources:
    if data is None:
        return Resources()
    if not isinstance(data, Mapping):
        raise SweepError(f"resources: must be a mapping with keys {', '.join(RESOURCE_KEYS)}")
    for key in data:
        if key not in RESOURCE_KEYS:
            raise SweepError(f"resources.{key}: unknown key; allowed: {', '.join(RESOURCE_KEYS)}")
    cpus, gpus = data.get("cpus", 1), data.get("gpus", 0)
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not cpus > 0:
        raise SweepError(f"resources.cpus: must be a positive number, got {cpus!r}")
    if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not gpus >= 0:
        raise SweepError(
            f"resources.gpus: must be a number >= 0 (a fraction shares a GPU), got {gpus!r}"
        )
    return Resources(cpus=float(cpus), gpus=float(gpus))


def check_output(spec: SweepSpec, *, resume: bool) -> None:
    """Refuse to start a new sweep in a folder that already holds something."""
    if resume or not spec.output.exists():
        return
    if spec.output.is_dir() and not any(spec.output.iterdir()):
        return
    raise SweepError(
        f"output: {spec.output} is not empty; pass --resume to continue the sweep there or "
        "choose another output folder"
    )

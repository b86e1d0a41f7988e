"""Parameter sweeps on Ray Tune, from one laptop to a cluster.

::

    python -m vwm_agents.sweep SWEEP.yaml [--address ADDR] [--max-concurrent N] [--resume]

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

The whole file is validated first -- its keys, the grid, and every trial's configuration through
:func:`vwm_agents.config.load_config` -- and nothing is written when any of it is wrong.

Each trial is an ordinary run directory of :func:`vwm_agents.trainer.train`, named like the
reference's sweeps (``logging.run_name`` = the swept values, e.g. ``spike_noise_factor-0.1_seed-0``)
and written under ``output``; it reports every history record to Ray and continues from its
latest checkpoint when Ray retries it or the sweep is resumed. A trial that fails is recorded (in
``output/_errors/``) and the sweep goes on. Finished trials (those with ``metrics.json``) are
skipped by ``--resume``. At the end, ``sweep_results.csv``/``.yaml`` hold one row per trial and
``sweep_error_vs_set_size.png`` shows error against set size, one curve per swept setting (mean
+/- SEM over ``training.seed``).

Ray runs embedded on this machine unless ``--address`` names a running cluster (``auto`` finds
the one this node belongs to). On a cluster, the output folder must be on a filesystem that all
nodes share, and every node needs this package installed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import itertools
import json
import logging
import math
import os
import re
import shutil
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from vwm_agents.config import Config, ConfigError, load_config

__all__ = [
    "SweepError",
    "Resources",
    "TrialPlan",
    "SweepSpec",
    "TrialResult",
    "ErrorCurve",
    "load_sweep",
    "expand_trials",
    "check_output",
    "run_sweep",
    "collect_results",
    "write_results",
    "error_vs_set_size",
    "plot_error_vs_set_size",
    "main",
]

SWEEP_KEYS: tuple[str, ...] = (
    "name", "base", "set", "grid", "trials", "resources", "output", "max_failures",
)
RESOURCE_KEYS: tuple[str, ...] = ("cpus", "gpus")
SEED_KEY = "training.seed"
# Keys the sweep sets for every trial: its run directory and a quiet, single-threaded CPU run.
MANAGED_KEYS: tuple[str, ...] = ("logging.run_name", "logging.out_dir", "logging.progress")

RESULTS_CSV = "sweep_results.csv"
RESULTS_YAML = "sweep_results.yaml"
FIGURE = "sweep_error_vs_set_size.png"
SPEC_COPY = "sweep.yaml"
ERRORS_DIR = "_errors"
RAY_DIR = "_ray"

# A trial raising one of these (or vwm_agents.trainer.TrainingDiverged) failed because of what it
# was given; retrying it would fail again, so Ray is not asked to.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, ArithmeticError)

TrainFn = Callable[..., Path]


class SweepError(ValueError):
    """A bad sweep file or command line; the message is one line naming the key."""


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
class TrialPlan:
    """One trial: its swept values, the resolved config and where its run directory goes."""

    name: str
    params: dict[str, Any]
    config: dict[str, Any]
    run_dir: Path

    def to_payload(self) -> dict[str, Any]:
        """Plain data for Ray's parameter space (the config travels resolved, so nodes need no
        access to the base file)."""
        return {"name": self.name, "params": self.params, "config": self.config,
                "run_dir": str(self.run_dir)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> TrialPlan:
        return cls(name=payload["name"], params=dict(payload["params"]),
                   config=dict(payload["config"]), run_dir=Path(payload["run_dir"]))


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
            raise SweepError(f"{key}: unknown key of a sweep file; allowed: {', '.join(SWEEP_KEYS)}")
    name = data.get("name", path.stem if path is not None else "sweep")
    if not isinstance(name, str) or not re.fullmatch(r"[\w.+-]+", name):
        raise SweepError(f"name: must be a name of letters, digits and ._+-, got {name!r}")
    base_dir = path.parent if path is not None else Path.cwd()
    base_path, base_label = _resolve_base(data.get("base", "default"), base_dir)
    fixed = _check_set(data.get("set"))
    grid = _check_grid(data.get("grid"))
    explicit = _check_trials(data.get("trials"))
    resources_ = _check_resources(data.get("resources"))
    max_failures = data.get("max_failures", 1)
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 0:
        raise SweepError(f"max_failures: must be an integer >= 0, got {max_failures!r}")
    if output is None:
        output = data.get("output", f"sweeps/{name}")
        if not isinstance(output, str) or not output:
            raise SweepError(f"output: must be a folder path, got {output!r}")
    output = Path(output).expanduser().resolve()

    fixed_overrides = [_override(key, value) for key, value in fixed.items()]
    try:
        base_config = load_config(base_path, fixed_overrides)
    except ConfigError as exc:
        message = str(exc)
        where = "set." if any(message.startswith(f"{key}:") for key in fixed) else f"base ({base_label}): "
        raise SweepError(f"{where}{message}") from None
    param_sets, sources = expand_trials(grid, explicit)
    for key in fixed:
        if any(key in params for params in param_sets):
            raise SweepError(f"set.{key}: is also swept (by grid or trials); keep one")
    swept_keys = tuple(dict.fromkeys(key for params in param_sets for key in params))
    names = _trial_names(param_sets, swept_keys)
    plans = []
    for params, source, trial_name in zip(param_sets, sources, names, strict=True):
        config = _trial_config(base_path, base_config, fixed_overrides, params, source, trial_name,
                               output, resources_)
        plans.append(TrialPlan(trial_name, params, config.to_dict(), _run_dir(config, output)))
    raw = {"name": name, "base": base_label, "set": fixed, "grid": grid, "trials": explicit,
           "resources": asdict(resources_), "output": str(output), "max_failures": max_failures}
    return SweepSpec(name=name, path=path, base=base_label, swept_keys=swept_keys,
                     trials=tuple(plans), resources=resources_, output=output,
                     max_failures=max_failures, raw=raw)


def _resolve_sweep_path(path: str | Path) -> Path:
    path = Path(path)
    if path.exists() or path.suffix:
        return path
    shipped = resources.files("vwm_agents.configs").joinpath("sweeps", f"{path}.yaml")
    if shipped.is_file():
        return Path(str(shipped))
    names = ", ".join(_shipped_names("sweeps")) or "none"
    raise SweepError(f"sweep: no file {path!s}; shipped sweeps: {names}")


def _shipped_names(folder: str | None = None) -> list[str]:
    root = resources.files("vwm_agents.configs")
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
    shipped = resources.files("vwm_agents.configs").joinpath(f"{base}.yaml")
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
        raise SweepError("trials: must be a non-empty list of mappings of dotted config keys to values")
    out = []
    for i, trial in enumerate(trials):
        if not isinstance(trial, Mapping) or not trial:
            raise SweepError(f"trials[{i}]: must be a non-empty mapping of dotted config keys to values")
        out.append({_check_key(key, f"trials[{i}]."): value for key, value in trial.items()})
    return out


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
        raise SweepError(f"resources.gpus: must be a number >= 0 (a fraction shares a GPU), got {gpus!r}")
    return Resources(cpus=float(cpus), gpus=float(gpus))


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
                raise SweepError(f"trials[{i}]: repeats the trial {_show_params(params)}")
            param_sets.append(params)
            sources.append({**{key: f"trials[{i}]." for key in trial}, **{key: "grid." for key in point}})
    if param_sets == [{}]:
        raise SweepError("sweep: has no trials; give a grid and/or a list of trials")
    return param_sets, sources


def _show_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in params.items())


def _override(key: str, value: Any) -> str:
    """``key=value`` in the YAML form load_config parses back to the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31).strip()
    if text.endswith("\n..."):  # a document-end marker follows plain scalars
        text = text[: -len("\n...")]
    return f"{key}={text}"


def _trial_config(
    base_path: str | None,
    base_config: Config,
    fixed_overrides: Sequence[str],
    params: Mapping[str, Any],
    source: Mapping[str, str],
    trial_name: str,
    output: Path,
    resources_: Resources,
) -> Config:
    user = [_override(key, value) for key, value in params.items()]
    managed = [
        _override("logging.run_name", trial_name),
        _override("logging.out_dir", str(output)),
        _override("logging.progress", False),
    ]
    if resources_.gpus == 0:
        device = params.get("training.device", base_config.training.device)
        if device != "auto" and device != "cpu":
            where = source.get("training.device", "base: ")
            raise SweepError(
                f"{where}training.device: is {device!r} but resources.gpus is 0; reserve a GPU "
                "(e.g. resources: {gpus: 0.5}) or run on cpu"
            )
        managed.append(_override("training.device", "cpu"))
        if "training.threads" not in params:
            managed.append(_override("training.threads", resources_.threads))
    try:
        return load_config(base_path, [*fixed_overrides, *user, *managed])
    except ConfigError as exc:
        message = str(exc)
        for key in sorted(params, key=len, reverse=True):
            if message.startswith(f"{key}:") or message.startswith(f"{key}."):
                raise SweepError(f"{source[key]}{message}") from None
        raise SweepError(f"trial {trial_name} ({_show_params(params)}): {message}") from None


def _run_dir(config: Config, output: Path) -> Path:
    from vwm_agents.run import run_name

    return output / run_name(config)


def _trial_names(param_sets: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """Readable, unique, filesystem-safe names: ``spike_noise_factor-0.1_seed-0``.

    Keys are shortened to their last part unless two swept keys share it; names that still
    collide after sanitising get a short hash of their values.
    """
    last = [key.rsplit(".", 1)[-1] for key in keys]
    labels = {key: (short if last.count(short) == 1 else key) for key, short in zip(keys, last, strict=True)}
    names = [
        "_".join(f"{labels[key]}-{_format_value(value)}" for key, value in params.items())
        for params in param_sets
    ]
    for i, name in enumerate(names):
        if names.count(name) > 1:
            digest = hashlib.sha1(repr(sorted(param_sets[i].items())).encode()).hexdigest()[:8]
            names[i] = f"{name}_{digest}"
    return names


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        text = "-".join(_format_value(v) for v in value)
    elif isinstance(value, Mapping):
        text = "-".join(f"{k}{_format_value(v)}" for k, v in value.items())
    else:
        text = str(value)
    return re.sub(r"[^\w.+-]", "", text) or "none"


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


# ----------------------------------------------------------------------------------------------
# Running


def run_sweep(
    spec: SweepSpec,
    *,
    address: str | None = None,
    max_concurrent: int | None = None,
    resume: bool = False,
    train_fn: TrainFn | None = None,
    verbose: int = 1,
) -> list[TrialResult]:
    """Run the sweep's unfinished trials on Ray Tune, then write and return the results.

    Args:
        address: a running Ray cluster (``auto``, ``ray://host:10001``, ...); None starts Ray on
            this machine (unless this process already initialised Ray, which is then reused).
        max_concurrent: at most this many trials at once (default: as many as resources allow).
        resume: continue a sweep in a non-empty output folder: finished trials are skipped and
            unfinished ones continue from their checkpoints.
        train_fn: the training function (default :func:`vwm_agents.trainer.train`); tests pass a
            stand-in with the same signature.
        verbose: Ray Tune's verbosity (0 silent, 1 status updates, 2 every result).
    """
    check_output(spec, resume=resume)
    pending = [plan for plan in spec.trials if not _is_finished(plan)]
    if pending:
        num_cpus = _local_cpus(spec.resources, len(pending), max_concurrent)
        with _ray_session(address, num_cpus) as tune:  # connect before writing anything
            _write_yaml(spec.output / SPEC_COPY, spec.raw)
            _fit(tune, spec, pending, max_concurrent=max_concurrent, train_fn=train_fn,
                 verbose=verbose)
    else:
        _write_yaml(spec.output / SPEC_COPY, spec.raw)
    results = collect_results(spec)
    write_results(spec, results)
    return results


def _is_finished(plan: TrialPlan) -> bool:
    """Finished without error: a diverged run also writes metrics.json (of its best checkpoint)."""
    return (plan.run_dir / "metrics.json").is_file() and not _error_file(plan).is_file()


def _error_file(plan: TrialPlan) -> Path:
    return plan.run_dir.parent / ERRORS_DIR / f"{plan.name}.yaml"


@contextlib.contextmanager
def _ray_session(address: str | None, num_cpus: int) -> Iterator[Any]:
    """Ray Tune, connected: to ``address``, else to a Ray this process already started, else to
    a new embedded Ray with ``num_cpus`` CPUs (shut down on exit)."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise SweepError("ray: Ray Tune is not installed; pip install 'vwm-rnn[sweep]'") from None

    started_here = not ray.is_initialized()
    if started_here:
        # Ray itself connects to $RAY_ADDRESS when no address is given
        address = address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
        if address is None:
            kwargs.update(num_cpus=num_cpus, include_dashboard=False)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = "ray: cannot start Ray here" if address is None else (
                f"--address {address}: cannot connect to a Ray cluster")
            raise SweepError(f"{where}: {' '.join(str(exc).split())}") from None
    try:
        yield tune
    finally:
        if started_here:
            ray.shutdown()


def _fit(
    tune: Any,
    spec: SweepSpec,
    plans: Sequence[TrialPlan],
    *,
    max_concurrent: int | None,
    train_fn: TrainFn | None,
    verbose: int,
) -> None:
    """Run ``plans`` as one Tune experiment; failed trials are recorded by :func:`run_trial`
    and the results are read back from the run directories."""
    # Tune's parameter is the trial name (its status table shows it); the plans travel in
    # Ray's object store
    payloads = {plan.name: plan.to_payload() for plan in plans}
    trainable = tune.with_resources(
        tune.with_parameters(_ray_trial, payloads=payloads, train_fn=train_fn),
        {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus},
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(list(payloads))},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,  # a trial's worker keeps torch imported for the next one
            trial_name_creator=_ray_trial_name,
            trial_dirname_creator=_ray_trial_name,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(spec.output / RAY_DIR),
            verbose=verbose,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        ),
    )
    tuner.fit()


def _local_cpus(resources_: Resources, n_trials: int, max_concurrent: int | None) -> int:
    """CPUs for an embedded Ray: what the trials can use at once, at most what this machine has."""
    concurrent = n_trials if max_concurrent is None else min(n_trials, max_concurrent)
    wanted = math.ceil(resources_.cpus * concurrent)
    return max(math.ceil(resources_.cpus), min(wanted, os.cpu_count() or 1))


def _ray_trial_name(trial: Any) -> str:
    return trial.config["trial"]


def _ray_trial(
    params: Mapping[str, Any],
    payloads: Mapping[str, Mapping[str, Any]],
    train_fn: TrainFn | None = None,
) -> None:
    """The Ray Tune function trainable: one trial, reporting each history record to Tune."""
    from ray import tune

    plan = TrialPlan.from_payload(payloads[params["trial"]])
    run_trial(plan, train_fn=train_fn, report=tune.report)


def run_trial(
    plan: TrialPlan,
    *,
    train_fn: TrainFn | None = None,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> bool:
    """Train one trial (continuing from its checkpoint if it has one); returns whether it finished.

    A failure is written to ``<output>/_errors/<trial>.yaml``. Failures caused by the trial's
    values (:data:`PERMANENT_ERRORS`) are returned as False; others (a lost node, out of memory)
    are raised again so that Ray retries the trial.
    """
    from vwm_agents.trainer import TrainingDiverged

    if train_fn is None:
        from vwm_agents.trainer import train as train_fn
    config = Config.from_dict(plan.config)
    error_file = _error_file(plan)
    resume = (plan.run_dir / "checkpoints" / "latest.pt").is_file()
    if not resume and plan.run_dir.is_dir():
        # a start that crashed before its first checkpoint: nothing to keep, and the trainer
        # refuses to start over in an existing run directory
        shutil.rmtree(plan.run_dir)
    callback = None if report is None else (lambda record: report(_scalar_metrics(record)))
    try:
        train_fn(config, plan.run_dir.parent, resume=resume, device=config.training.device,
                 callback=callback, progress=False)
    except Exception as exc:
        permanent = isinstance(exc, (*PERMANENT_ERRORS, TrainingDiverged))
        _write_yaml(error_file, {
            "trial": plan.name,
            "error": f"{type(exc).__name__}: {exc}",
            "retried_by_ray": not permanent,
            "traceback": traceback.format_exc(),
        })
        if permanent:
            return False
        raise
    error_file.unlink(missing_ok=True)
    return True


def _scalar_metrics(record: Mapping[str, Any]) -> dict[str, Any]:
    """The numeric part of a history record (Ray flattens nested dicts to ``a/b/c``)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            nested = _scalar_metrics(value)
            if nested:
                out[str(key)] = nested
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(key)] = value
    return out


# ----------------------------------------------------------------------------------------------
# Results


@dataclass
class TrialResult:
    """One row of the results table."""

    trial: str
    run_dir: str
    params: dict[str, Any]
    status: str  # "ok" or "error"
    message: str = ""
    final_iteration: int | None = None  # the last history record's
    checkpoint: str | None = None  # which checkpoint metrics.json evaluated: "best" or "latest"
    checkpoint_iteration: int | None = None
    error: float | None = None
    error_std: float | None = None
    rate: float | None = None
    per_set_size: dict[int, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_results(spec: SweepSpec) -> list[TrialResult]:
    """Read every trial's outcome from its run directory (``metrics.json``) or error record."""
    return [_trial_result(spec.output, plan) for plan in spec.trials]


def _trial_result(output: Path, plan: TrialPlan) -> TrialResult:
    row = TrialResult(trial=plan.name, run_dir=os.path.relpath(plan.run_dir, output),
                      params=dict(plan.params), status="error")
    metrics_file = plan.run_dir / "metrics.json"
    error_file = _error_file(plan)
    if error_file.is_file():
        record = yaml.safe_load(error_file.read_text()) or {}
        row.message = str(record.get("error", "failed"))
    elif not metrics_file.is_file():
        row.message = "did not finish (no metrics.json); run the sweep again with --resume"
    if metrics_file.is_file():  # also after a divergence: the metrics of its best checkpoint
        try:
            metrics = json.loads(metrics_file.read_text())
        except (OSError, ValueError) as exc:
            row.message = row.message or f"unreadable {metrics_file.name}: {exc}"
            return row
        row.status = "error" if row.message else "ok"
        row.checkpoint = metrics.get("checkpoint")
        row.checkpoint_iteration = metrics.get("iteration")
        row.error, row.error_std, row.rate = (metrics.get(k) for k in ("error", "error_std", "rate"))
        row.per_set_size = {
            int(size): {k: values[k] for k in ("error", "error_std", "rate") if k in values}
            for size, values in sorted(metrics.get("per_set_size", {}).items(), key=lambda kv: int(kv[0]))
        }
    row.final_iteration = _final_iteration(plan.run_dir / "history.yaml")
    return row


def _final_iteration(history_file: Path) -> int | None:
    if not history_file.is_file():
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # histories run to 1000s of records
    try:
        history = yaml.load(history_file.read_text(), Loader=loader)
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(history, list) or not history or not isinstance(history[-1], Mapping):
        return None
    return history[-1].get("iteration")


def write_results(spec: SweepSpec, results: Sequence[TrialResult]) -> dict[str, Path]:
    """Write ``sweep_results.csv``, ``sweep_results.yaml`` and the error-vs-set-size figure."""
    out = spec.output
    set_sizes = sorted({size for row in results for size in row.per_set_size})
    columns = ["trial", *spec.swept_keys, "status", "message", "final_iteration", "checkpoint",
               "checkpoint_iteration", "error", "error_std", "rate", *(f"{name}_ss{size}" for size in set_sizes for name in ("error", "rate")),
               "run_dir"]
    csv_path = out / RESULTS_CSV
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in results:
            flat = {key: value for key, value in row.to_dict().items() if key in columns}
            flat.update({key: _csv_value(row.params.get(key)) for key in spec.swept_keys})
            for size, values in row.per_set_size.items():
                flat[f"error_ss{size}"] = values.get("error")
                flat[f"rate_ss{size}"] = values.get("rate")
            writer.writerow(flat)
    yaml_path = out / RESULTS_YAML
    _write_yaml(yaml_path, {"sweep": spec.name, "swept_keys": list(spec.swept_keys),
                            "trials": [row.to_dict() for row in results]})
    paths = {"csv": csv_path, "yaml": yaml_path}
    curves = error_vs_set_size(results, spec.swept_keys)
    if curves:
        paths["figure"] = plot_error_vs_set_size(curves, out / FIGURE, title=spec.name)
    return paths


def _csv_value(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, width=2**31).strip()
    return value


def _write_yaml(path: Path, data: Any) -> None:
    """Write atomically, so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)


@dataclass
class ErrorCurve:
    """Error against set size for one swept setting, mean and SEM over seeds."""

    setting: dict[str, Any]
    set_sizes: list[int]
    mean: list[float]
    sem: list[float]  # nan where only one seed finished
    n_seeds: list[int]

    @property
    def label(self) -> str:
        if not self.setting:
            return "all trials"
        return ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in self.setting.items())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_vs_set_size(
    results: Iterable[TrialResult], swept_keys: Sequence[str], *, seed_key: str = SEED_KEY
) -> list[ErrorCurve]:
    """One curve per setting of the swept keys other than ``seed_key``, over finished trials."""
    setting_keys = [key for key in swept_keys if key != seed_key]
    groups: dict[str, tuple[dict[str, Any], list[TrialResult]]] = {}
    for row in results:
        if row.status != "ok" or not row.per_set_size:
            continue
        setting = {key: row.params.get(key) for key in setting_keys}
        groups.setdefault(repr(setting), (setting, []))[1].append(row)
    curves = []
    for setting, rows in groups.values():
        sizes = sorted({size for row in rows for size in row.per_set_size})
        means, sems, counts = [], [], []
        for size in sizes:
            values = [row.per_set_size[size]["error"] for row in rows
                      if size in row.per_set_size and row.per_set_size[size].get("error") is not None]
            n = len(values)
            mean = math.fsum(values) / n
            sem = (math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1) / n)
                   if n > 1 else math.nan)
            means.append(mean)
            sems.append(sem)
            counts.append(n)
        curves.append(ErrorCurve(setting, sizes, means, sems, counts))
    return curves


def plot_error_vs_set_size(curves: Sequence[ErrorCurve], path: str | Path, *, title: str = "") -> Path:
    """Save the curves of :func:`error_vs_set_size` as a figure (mean +/- SEM over seeds)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for curve in curves:
        sem = [0.0 if math.isnan(s) else s for s in curve.sem]
        ax.errorbar(curve.set_sizes, curve.mean, yerr=sem, marker="o", capsize=3, label=curve.label)
    ax.axhline(math.pi / 2, linestyle=":", color="grey", label="chance (\u03c0/2)")
    ax.set_xticks(sorted({size for curve in curves for size in curve.set_sizes}))
    ax.set_xlabel("set size")
    ax.set_ylabel("mean absolute error (rad)")
    ax.set_title(f"{title}: mean \u00b1 SEM over seeds" if title else "mean \u00b1 SEM over seeds")
    ax.legend(fontsize="small")
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


# ----------------------------------------------------------------------------------------------
# Command line


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vwm_agents.sweep",
        description="Run a parameter sweep of vwm_agents training runs on Ray Tune.",
    )
    parser.add_argument("sweep", help="sweep file (YAML), or the name of a shipped sweep "
                        f"({', '.join(_shipped_names('sweeps')) or 'see configs/sweeps'})")
    parser.add_argument("--address", default=None,
                        help="address of a running Ray cluster ('auto': the one this node is in); "
                        "default: start Ray on this machine")
    parser.add_argument("--max-concurrent", type=_positive_int, default=None, metavar="N",
                        help="run at most N trials at once (default: as many as resources allow)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the sweep in its output folder: skip finished trials, "
                        "continue unfinished ones from their checkpoints")
    parser.add_argument("--output", default=None, help="output folder (overrides the file's)")
    parser.add_argument("--quiet", action="store_true", help="no Ray Tune status table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0 when every trial finished, 1 when some failed, 2 for
    a bad sweep file or command line."""
    args = build_parser().parse_args(argv)
    try:
        spec = load_sweep(args.sweep, output=args.output)
        check_output(spec, resume=args.resume)
        results = run_sweep(spec, address=args.address, max_concurrent=args.max_concurrent,
                            resume=args.resume, verbose=0 if args.quiet else 1)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [row for row in results if row.status != "ok"]
    print(f"sweep {spec.name}: {len(results) - len(failed)} of {len(results)} trials finished; "
          f"results in {spec.output / RESULTS_CSV}")
    for row in failed:
        print(f"  failed: {row.trial}: {row.message}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

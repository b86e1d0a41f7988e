"""Run configuration: schema, validation, ``section.key=value`` overrides, the original format.

A configuration has five sections::

    task:      {id: VWMRecall-v0, <env kwargs, flat>}        -> gym.make(id, **kwargs)
    agent:     {name: dale_rnn, <agent kwargs, flat>}        -> build_agent(name, n_in, n_out, **kwargs)
    training:  seed, num_iterations, batch_size, learning_rate, ...   (TrainingConfig)
    logging:   run_name, out_dir, period, progress                    (LoggingConfig)
    analysis:  trials, only, human_data, fixed_points                 (AnalysisConfig)

Keys left out take the schema defaults below, which are the reference model's defaults
(original_model.md section 8); env and agent kwargs left out take the env's / agent's own
defaults. Everything is checked here, before anything is written: unknown keys, wrong types and
out-of-range values raise :class:`ConfigError` with one line naming the key. Agent kwargs are
checked against the agent class's ``__init__`` signature; what only the env or the model itself
can judge (e.g. an impossible timing) is checked by :func:`vwm_agents.run.make_env` /
:func:`vwm_agents.run.build_model`, which raise the same error.

The original code's four-section ``config.yaml`` (``model_params``, ``training_params``,
``model_and_logging_params``, ``fpf_params``) is recognised and mapped onto this schema by
:func:`from_original` (see ``_ORIGINAL_KEYS`` for the key-by-key table); :func:`to_original` maps
back.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "Config",
    "TaskConfig",
    "AgentConfig",
    "TrainingConfig",
    "LoggingConfig",
    "AnalysisConfig",
    "FixedPointConfig",
    "load_config",
    "parse_override",
    "apply_overrides",
    "from_original",
    "to_original",
    "is_original_format",
    "check_kwargs",
    "ERROR_DEFS",
]

# The names the schema accepts; vwm_agents.losses and vwm_agents.accel import them from here
# (this module does not import torch, so reading a config stays light).
ERROR_DEFS: tuple[str, ...] = ("l2", "sqrtl2", "rad", "exp", "norml2")
COMPILE_MODES: tuple[str, ...] = ("auto", "off", "graph", "inductor")


class ConfigError(ValueError):
    """A bad configuration; the message is one line naming the key and what is allowed."""


# ----------------------------------------------------------------------------------------------
# Value specifications


@dataclass(frozen=True)
class _Spec:
    """What one schema key accepts."""

    kind: str  # "int", "float", "bool", "str", "choice", "device", "str_list"
    low: float | None = None
    low_open: bool = False  # low is exclusive
    high: float | None = None
    high_open: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(self.choices)
        elif self.kind == "device":
            text = "one of auto, cpu, cuda, cuda:<index>"
        elif self.kind == "str":
            text = "a non-empty string"
        elif self.kind == "str_list":
            text = "a list of strings"
        else:
            noun = "an integer" if self.kind == "int" else "a number"
            if self.low == 0 and self.low_open and self.high is None:
                text = "a positive " + noun[noun.index(" ") + 1 :]
            else:
                bounds = []
                if self.low is not None:
                    bounds.append(f"{'>' if self.low_open else '>='} {_fmt(self.low)}")
                if self.high is not None:
                    bounds.append(f"{'<' if self.high_open else '<='} {_fmt(self.high)}")
                text = noun + (" " + " and ".join(bounds) if bounds else "")
        return ("null or " + text) if self.nullable else text

    def check(self, key: str, value: Any) -> Any:
        """Return ``value`` (ints widened to float for float keys) or raise ConfigError."""
        if value is None:
            if self.nullable:
                return None
            raise _bad(key, self.describe(), value)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise _bad(key, self.describe(), value)
            return value
        if self.kind == "choice" and value is False and "off" in self.choices:
            value = "off"  # YAML 1.1 reads a bare ``off`` as false
        if self.kind in ("str", "choice", "device"):
            ok = isinstance(value, str) and value != ""
            if self.kind == "choice":
                ok = ok and value in self.choices
            if self.kind == "device":
                ok = ok and (value in ("auto", "cpu", "cuda") or _is_cuda_index(value))
            if not ok:
                raise _bad(key, self.describe(), value)
            return value
        if self.kind == "str_list":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise _bad(key, self.describe(), value)
            return list(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(key, self.describe(), value)
        if self.kind == "int" and not isinstance(value, int):
            raise _bad(key, self.describe(), value)
        if self.kind == "float":
            value = float(value)
            if not math.isfinite(value):
                raise _bad(key, self.describe(), value)
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise _bad(key, self.describe(), value)
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise _bad(key, self.describe(), value)
        return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _is_cuda_index(value: str) -> bool:
    head, _, index = value.partition(":")
    return head == "cuda" and index.isdigit()


def _bad(key: str, allowed: str, value: Any) -> ConfigError:
    return ConfigError(f"{key}: must be {allowed}, got {_show(value)}")


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    text = json.dumps(value, default=repr) if isinstance(value, (list, dict)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _spec(default: Any, spec: _Spec, doc: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"spec": spec, "doc": doc})
    return field(default=default, metadata={"spec": spec, "doc": doc})


_POS_INT = _Spec("int", low=1)
_NONNEG_INT = _Spec("int", low=0)
_POS_FLOAT = _Spec("float", low=0, low_open=True)
_NONNEG_FLOAT = _Spec("float", low=0)


# ----------------------------------------------------------------------------------------------
# Sections


class _Section:
    """Shared behaviour of the fixed-schema sections (dataclasses whose fields carry a _Spec)."""

    @classmethod
    def from_dict(cls, data: Any, section: str):
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{section}: must be a mapping of keys to values, got {_show(data)}")
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(
                    f"{section}.{key}: unknown key; allowed: {', '.join(known)}"
                )
            spec = known[key].metadata.get("spec")
            if spec is not None:
                value = spec.check(f"{section}.{key}", value)
            else:  # a nested section
                value = known[key].metadata["section"].from_dict(value, f"{section}.{key}")
            values[key] = value
        section_obj = cls(**values)
        section_obj._check_consistency(section)
        return section_obj

    def _check_consistency(self, section: str) -> None:
        """Cross-key checks; overridden where needed."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, _Section) else copy.deepcopy(value)
        return out


@dataclass
class TrainingConfig(_Section):
    """The ``training`` section (defaults: the reference model, original_model.md section 5)."""

    seed: int = _spec(0, _NONNEG_INT, "seed of the data, noise and initial weights")
    num_iterations: int = _spec(50_000, _POS_INT, "optimiser steps")
    batch_size: int = _spec(512, _POS_INT, "fresh trials per iteration")
    balance_set_sizes: bool = _spec(True, _Spec("bool"), "split the batch evenly over set sizes")
    learning_rate: float = _spec(1e-4, _POS_FLOAT, "Adam step size (reference: eta)")
    lr_factor: float = _spec(
        0.5, _Spec("float", low=0, low_open=True, high=1, high_open=True), "ReduceLROnPlateau factor"
    )
    lr_patience: int = _spec(400, _NONNEG_INT, "ReduceLROnPlateau patience (iterations)")
    early_stop_patience: int | None = _spec(
        600, _Spec("int", low=1, nullable=True), "iterations without a lower loss; null: never stop"
    )
    error_def: str = _spec("rad", _Spec("choice", choices=ERROR_DEFS), "VWM error definition")
    lambda_err: float = _spec(1.0, _NONNEG_FLOAT, "weight of the task error")
    lambda_reg: float = _spec(1e-5, _NONNEG_FLOAT, "weight of the L1 rate penalty (per Hz)")
    grad_clip: float | None = _spec(
        None, _Spec("float", low=0, low_open=True, nullable=True), "max gradient norm; null: off"
    )
    noise_stages: int = _spec(1, _POS_INT, "noise curriculum stages (1: final noise throughout)")
    eval_batch_size: int = _spec(512, _POS_INT, "trials in the fixed held-out batch")
    checkpoint_period: int | None = _spec(
        None, _Spec("int", low=1, nullable=True), "iterations between checkpoints; null: logging.period"
    )
    device: str = _spec("auto", _Spec("device"), "auto: cuda if available, else cpu")
    compile: str = _spec(
        "auto", _Spec("choice", choices=COMPILE_MODES),
        "auto: graph on cuda, off on cpu; graph/inductor without CUDA run eagerly (warning)",
    )
    num_models: int = _spec(
        1, _POS_INT, "models trained side by side in one stacked pass, seeds seed, seed+1, ...; "
        "each in runs/<name>/seed_<s>/",
    )
    threads: int | None = _spec(
        None, _Spec("int", low=1, nullable=True), "torch CPU threads; null: torch's default"
    )


@dataclass
class LoggingConfig(_Section):
    """The ``logging`` section."""

    run_name: str = _spec("EasyTask1", _Spec("str"), "prefix of the run directory name (rnn_name)")
    out_dir: str = _spec("runs", _Spec("str"), "directory that holds run directories")
    period: int = _spec(50, _POS_INT, "iterations between history records")
    progress: bool = _spec(True, _Spec("bool"), "show a tqdm progress bar")

    def _check_consistency(self, section: str) -> None:
        parts = Path(self.run_name).parts
        if Path(self.run_name).is_absolute() or ".." in parts:
            raise ConfigError(
                f"{section}.run_name: must be a relative name without '..', got {_show(self.run_name)}"
            )


@dataclass
class FixedPointConfig(_Section):
    """``analysis.fixed_points``: settings of the fixed-point finder (reference ``fpf_params``)."""

    trials: int = _spec(20, _POS_INT, "trials whose states seed the search")
    n_init: int = _spec(20, _POS_INT, "initial states")
    noise_scale: float = _spec(0.0, _NONNEG_FLOAT, "noise added to the initial states")
    max_iters: int = _spec(50, _POS_INT, "optimiser iterations")
    lr_init: float = _spec(0.01, _POS_FLOAT, "initial learning rate")
    outlier_distance_scale: float = _spec(10.0, _POS_FLOAT, "outlier rejection distance")
    pca: bool = _spec(True, _Spec("bool"), "plot fixed points in PCA space")


@dataclass
class AnalysisConfig(_Section):
    """The ``analysis`` section, read by the ``analysis`` package."""

    trials: int = _spec(1000, _POS_INT, "trials per set size simulated for the analyses")
    only: list[str] | None = _spec(
        None, _Spec("str_list", nullable=True), "names of the analyses to run; null: all"
    )
    human_data: str | None = _spec(
        None, _Spec("str", nullable=True), "directory of the human data; null: the bundled set"
    )
    fixed_points: FixedPointConfig = field(
        default_factory=FixedPointConfig, metadata={"section": FixedPointConfig}
    )


@dataclass
class TaskConfig:
    """The ``task`` section: a gymnasium id and the env's keyword arguments."""

    id: str = "VWMRecall-v0"
    kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> TaskConfig:
        env_id, kwargs = _split_named(data, "task", "id", cls.id, "a gymnasium environment id")
        return cls(id=env_id, kwargs=kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **copy.deepcopy(self.kwargs)}


@dataclass
class AgentConfig:
    """The ``agent`` section: a registered agent name (or ``module:Class``) and its kwargs."""

    name: str = "dale_rnn"
    kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> AgentConfig:
        name, kwargs = _split_named(data, "agent", "name", cls.name,
                                    "an agent name or 'package.module:Class'")
        return cls(name=name, kwargs=kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **copy.deepcopy(self.kwargs)}


def _split_named(data: Any, section: str, key: str, default: str, allowed: str) -> tuple[str, dict]:
    """``{key: name, **kwargs}`` -> (name, kwargs), checking the mapping and the name."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section}: must be a mapping of keys to values, got {_show(data)}")
    kwargs = dict(copy.deepcopy(data))
    for name in kwargs:
        if not isinstance(name, str):
            raise ConfigError(f"{section}.{name}: keys must be strings")
    name = kwargs.pop(key, default)
    if not isinstance(name, str) or not name:
        raise _bad(f"{section}.{key}", allowed, name)
    return name, kwargs


SECTIONS: tuple[str, ...] = ("task", "agent", "training", "logging", "analysis")


@dataclass
class Config:
    """A validated run configuration (see the module docstring)."""

    task: TaskConfig = field(default_factory=TaskConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    @classmethod
    def from_dict(cls, data: Any) -> Config:
        """Validate a plain mapping in our schema (or the original format) into a Config."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"config: must be a mapping of sections, got {_show(data)}")
        if is_original_format(data):
            data = from_original(data)
        for key in data:
            if key not in SECTIONS:
                raise ConfigError(f"{key}: unknown section; allowed: {', '.join(SECTIONS)}")
        config = cls(
            task=TaskConfig.from_dict(data.get("task")),
            agent=AgentConfig.from_dict(data.get("agent")),
            training=TrainingConfig.from_dict(data.get("training"), "training"),
            logging=LoggingConfig.from_dict(data.get("logging"), "logging"),
            analysis=AnalysisConfig.from_dict(data.get("analysis"), "analysis"),
        )
        config._check_agent_kwargs()
        config._check_task_kwargs()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain data in our schema (YAML/JSON-serialisable); ``from_dict`` inverts it."""
        return {
            "task": self.task.to_dict(),
            "agent": self.agent.to_dict(),
            "training": self.training.to_dict(),
            "logging": self.logging.to_dict(),
            "analysis": self.analysis.to_dict(),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def agent_class(self) -> type:
        """The agent's class (resolves names and ``module:Class`` import paths)."""
        from vwm_agents.models import AGENTS, resolve_agent

        try:
            return resolve_agent(self.agent.name)
        except ValueError:
            raise ConfigError(
                f"agent.name: unknown agent {self.agent.name!r}; allowed: {', '.join(AGENTS)} "
                "or 'package.module:ClassName'"
            ) from None

    def _check_agent_kwargs(self) -> None:
        cls = self.agent_class()
        check_kwargs(
            cls.__init__, self.agent.kwargs, "agent", owner=self.agent.name,
            skip=("self", "n_inputs", "n_outputs"),
        )

    def _check_task_kwargs(self) -> None:
        env_class = _env_class(self.task.id)
        if env_class is not None:
            check_kwargs(env_class.__init__, self.task.kwargs, "task", owner=self.task.id, skip=("self",))


def _env_class(env_id: str) -> type | None:
    """The class behind a gymnasium id, or None when it cannot be resolved to a class."""
    import gymnasium as gym

    if env_id not in gym.envs.registry:
        try:  # neurogym registers its tasks on import
            import neurogym  # noqa: F401
        except ImportError:
            pass
    if env_id not in gym.envs.registry:
        raise ConfigError(
            f"task.id: unknown environment {env_id!r}; allowed: a registered gymnasium id, "
            "e.g. VWMRecall-v0, VWMRecallCued-v0 or a neurogym id such as DelayMatchSample-v0"
        )
    entry_point = gym.envs.registry[env_id].entry_point
    if callable(entry_point):
        return entry_point if inspect.isclass(entry_point) else None
    module_name, _, attr = str(entry_point).partition(":")
    try:
        module = __import__(module_name, fromlist=[attr])
        target = getattr(module, attr)
    except (ImportError, AttributeError):
        return None  # gym.make will report it when the env is built
    return target if inspect.isclass(target) else None


def check_kwargs(
    function: Any, kwargs: Mapping[str, Any], section: str, *, owner: str, skip: Iterable[str] = ()
) -> None:
    """Check ``kwargs`` against ``function``'s signature: names, and types from its annotations.

    Raises ConfigError naming ``{section}.{key}``. Functions taking ``**kwargs`` accept any name.
    """
    signature = inspect.signature(function)
    skip = set(skip)
    params = {
        name: p for name, p in signature.parameters.items()
        if name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # unresolvable annotations: names are still checked
        hints = {}
    for key, value in kwargs.items():
        if key not in params:
            if open_ended:
                continue
            allowed = ", ".join(params) or "none"
            raise ConfigError(f"{section}.{key}: unknown argument of {owner}; allowed: {allowed}")
        hint = hints.get(key)
        if hint is not None and not _matches(value, hint):
            raise ConfigError(
                f"{section}.{key}: must be {_describe_type(hint)}, got {_show(value)}"
            )


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (plain YAML data) fits the annotation ``hint``; unknown hints accept."""
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    container = origin or hint
    if container in (list, tuple, typing.Sequence) or (
        inspect.isclass(container) and issubclass(container, (list, tuple))
    ):
        return isinstance(value, (list, tuple))
    if container in (dict, typing.Mapping) or (
        inspect.isclass(container) and issubclass(container, dict)
    ):
        return isinstance(value, dict)
    return True


def _describe_type(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if hint is type(None):
        return "null"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    container = origin or hint
    if container in (list, tuple) or container is typing.Sequence:
        return "a list"
    if container in (dict,) or container is typing.Mapping:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


# ----------------------------------------------------------------------------------------------
# Loading and overrides


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-3`` is a number, not the string '1e-3'."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Read, override and validate a configuration.

    Args:
        path: a YAML or JSON file in our schema or the original four-section format;
            ``None`` reads the embedded ``configs/default.yaml``.
        overrides: ``"section.key=value"`` strings applied after reading (value parsed as YAML;
            nested keys such as ``task.timing.delay=500`` work too). Overrides address our schema,
            also when the file is in the original format.
    """
    data = _read(path)
    if is_original_format(data):
        data = from_original(data)
    return Config.from_dict(apply_overrides(data, overrides))


def _read(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        text = resources.files("vwm_agents.configs").joinpath("default.yaml").read_text()
        source = "configs/default.yaml"
    else:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from None
        source = str(path)
    try:
        if path is not None and Path(path).suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = _yaml_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"config: {source} is not valid YAML/JSON: {detail}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {source} must hold a mapping of sections, got {_show(data)}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"section.key=value"`` into the key path and the YAML-parsed value."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or not all(path):
        raise ConfigError(f"--set {text}: must look like section.key=value")
    if path[0] not in SECTIONS:
        raise ConfigError(f"--set {text}: unknown section {path[0]!r}; allowed: {', '.join(SECTIONS)}")
    try:
        value = _yaml_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"{key}: value {raw!r} is not valid YAML") from None
    return path, value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``data`` (our schema) with the ``section.key=value`` overrides applied."""
    data = copy.deepcopy(dict(data))
    if isinstance(overrides, str):
        overrides = [overrides]
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(path[: depth + 1])}: is not a mapping, cannot set {text}")
            node = child
        node[path[-1]] = value
    return data


# ----------------------------------------------------------------------------------------------
# The original four-section format (original_model.md section 8)

ORIGINAL_SECTIONS: tuple[str, ...] = (
    "model_params", "training_params", "model_and_logging_params", "fpf_params",
)

# (original section, original key) -> our key path. Keys mapped to None are accepted, type-checked
# and dropped, because our package gives them no meaning (reasons in _ORIGINAL_DROPPED).
_ORIGINAL_KEYS: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("model_params", "max_item_num"): ("task", "max_items"),
    ("model_params", "item_num"): ("task", "set_sizes"),
    ("model_params", "num_neurons"): ("agent", "n_neurons"),
    ("model_params", "dt"): ("task", "dt"),  # the agent takes its dt from the env
    ("model_params", "tau_max"): ("agent", "tau_max"),
    ("model_params", "tau_min"): ("agent", "tau_min"),
    ("model_params", "ILC_noise"): ("task", "ilc_noise"),
    ("model_params", "spike_noise_factor"): ("agent", "spike_noise_factor"),
    ("model_params", "final_spike_noise_factor"): ("agent", "spike_noise_factor"),
    ("model_params", "spike_noise_type"): ("agent", "spike_noise_type"),
    ("model_params", "positive_input"): ("agent", "positive_input"),  # + task.input_encoding
    ("model_params", "input_strength"): ("task", "input_strength"),
    ("model_params", "saturation_firing_rate"): ("agent", "saturation_firing_rate"),
    ("model_params", "dales_law"): ("agent", "dales_law"),
    ("model_params", "T_init"): ("task", "timing", "init"),
    ("model_params", "T_stimi"): ("task", "timing", "stimulus"),
    ("model_params", "T_delay"): ("task", "timing", "delay"),
    ("model_params", "T_decode"): ("task", "timing", "decode"),
    ("training_params", "train_rnn"): None,
    ("training_params", "load_history"): None,
    ("training_params", "use_scripted_model"): None,
    ("training_params", "num_iterations"): ("training", "num_iterations"),
    ("training_params", "error_def"): ("training", "error_def"),
    ("training_params", "eta"): ("training", "learning_rate"),
    ("training_params", "lambda_reg"): ("training", "lambda_reg"),
    ("training_params", "lambda_err"): ("training", "lambda_err"),
    ("training_params", "num_trials"): ("training", "batch_size"),
    ("training_params", "logging_period"): ("logging", "period"),
    ("training_params", "early_stop_patience"): ("training", "early_stop_patience"),
    ("training_params", "adaptive_lr_patience"): ("training", "lr_patience"),
    ("training_params", "multi_stage_training"): ("training", "noise_stages"),  # {num_stage: S}
    ("model_and_logging_params", "rnn_name"): ("logging", "run_name"),
    ("model_and_logging_params", "cuda_device"): ("training", "device"),
    ("model_and_logging_params", "plot_weights_bool"): ("analysis", "only", "weights"),
    ("model_and_logging_params", "error_dist_bool"): ("analysis", "only", "errors"),
    ("model_and_logging_params", "fit_mixture_bool"): ("analysis", "only", "mixture"),
    ("model_and_logging_params", "snr_analy_bool"): ("analysis", "only", "snr"),
    ("model_and_logging_params", "mixed_selec_bool"): ("analysis", "only", "selectivity"),
    ("model_and_logging_params", "divis_norma_bool"): ("analysis", "only", "dn"),
    ("fpf_params", "fpf_bool"): ("analysis", "only", "fixed_points"),
    ("fpf_params", "fpf_pca_bool"): ("analysis", "fixed_points", "pca"),
    ("fpf_params", "fpf_names"): None,
    ("fpf_params", "fpf_trials"): ("analysis", "fixed_points", "trials"),
    ("fpf_params", "fpf_N_init"): ("analysis", "fixed_points", "n_init"),
    ("fpf_params", "fpf_noise_scale"): ("analysis", "fixed_points", "noise_scale"),
    ("fpf_params", "fpf_hps"): ("analysis", "fixed_points"),  # nested, see _ORIGINAL_FPF_HPS
}
_ORIGINAL_FPF_HPS: dict[str, str | None] = {
    "max_iters": "max_iters",
    "lr_init": "lr_init",
    "outlier_distance_scale": "outlier_distance_scale",
    "verbose": None,
    "super_verbose": None,
}
_ORIGINAL_DROPPED: dict[str, str] = {
    "train_rnn": "the CLI always trains; analyse a saved run with the analysis package",
    "load_history": "use --resume (which restores the optimiser and RNG state too)",
    "use_scripted_model": "use training.compile",
    "fpf_names": "file names of the fixed-point plots are fixed by the analysis package",
    "verbose": "logging verbosity",
    "super_verbose": "logging verbosity",
}
# The divisive-normalisation analysis ran unconditionally in the README-era code.
_ORIGINAL_ANALYSES_ALWAYS_ON: tuple[str, ...] = ("dn",)
_ORIGINAL_ANALYSES: tuple[str, ...] = (
    "weights", "errors", "mixture", "snr", "selectivity", "dn", "fixed_points",
)
_ORIGINAL_BOOL_KEYS = {
    key for key, target in _ORIGINAL_KEYS.items()
    if target is not None and target[:2] == ("analysis", "only")
} | {("model_params", "positive_input"), ("model_params", "dales_law"),
      ("training_params", "train_rnn"), ("training_params", "load_history"),
      ("training_params", "use_scripted_model"), ("fpf_params", "fpf_pca_bool")}


def is_original_format(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` uses the original code's section names."""
    return isinstance(data, Mapping) and any(key in ORIGINAL_SECTIONS for key in data)


def from_original(data: Mapping[str, Any]) -> dict[str, Any]:
    """Map an original four-section config onto our schema (plain data, not yet validated).

    Semantics kept: ``positive_input`` sets both the agent's input sign constraint and the env's
    input encoding (``positive`` or ``cossin``); ``dt`` is the env's and the agent inherits it;
    ``cuda_device: n`` means "cuda:n if available else cpu", i.e. ``device: auto`` for n = 0;
    ``multi_stage_training.num_stage`` becomes ``noise_stages``; gradient clipping stays off (the
    reference has none); the ``*_bool`` analysis switches become ``analysis.only``.
    """
    out: dict[str, Any] = {"task": {"id": "VWMRecall-v0"}, "agent": {"name": "dale_rnn"},
                           "training": {}, "logging": {}, "analysis": {}}
    enabled: list[str] = list(_ORIGINAL_ANALYSES_ALWAYS_ON)
    for section, body in data.items():
        if section not in ORIGINAL_SECTIONS:
            raise ConfigError(
                f"{section}: unknown section of the original format; allowed: "
                f"{', '.join(ORIGINAL_SECTIONS)}"
            )
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"{section}: must be a mapping of keys to values, got {_show(body)}")
        allowed = [key for (sec, key) in _ORIGINAL_KEYS if sec == section]
        for key, value in body.items():
            name = f"{section}.{key}"
            if (section, key) not in _ORIGINAL_KEYS:
                raise ConfigError(f"{name}: unknown key of the original format; allowed: {', '.join(allowed)}")
            if (section, key) in _ORIGINAL_BOOL_KEYS:
                _Spec("bool").check(name, value)
            target = _ORIGINAL_KEYS[(section, key)]
            if target is None:
                continue
            if key == "positive_input":
                out["agent"]["positive_input"] = value
                out["task"]["input_encoding"] = "positive" if value else "cossin"
            elif key == "multi_stage_training":
                out["training"]["noise_stages"] = _original_num_stage(name, value)
            elif key == "cuda_device":
                _Spec("int", low=0).check(name, value)
                out["training"]["device"] = "auto" if value == 0 else f"cuda:{value}"
            elif key == "fpf_hps":
                out["analysis"].setdefault("fixed_points", {}).update(_original_fpf_hps(name, value))
            elif target[:2] == ("analysis", "only"):
                if value:
                    enabled.append(target[2])
                elif target[2] in enabled:
                    enabled.remove(target[2])
            else:
                node = out
                for part in target[:-1]:
                    node = node.setdefault(part, {})
                node[target[-1]] = value
    out["analysis"]["only"] = [name for name in _ORIGINAL_ANALYSES if name in enabled]
    return out


def _original_num_stage(name: str, value: Any) -> Any:
    if not isinstance(value, Mapping) or set(value) - {"num_stage"}:
        raise ConfigError(f"{name}: must be a mapping with the single key num_stage, got {_show(value)}")
    return value.get("num_stage", 1)


def _original_fpf_hps(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: must be a mapping of keys to values, got {_show(value)}")
    out = {}
    for key, item in value.items():
        if key not in _ORIGINAL_FPF_HPS:
            raise ConfigError(
                f"{name}.{key}: unknown key of the original format; allowed: {', '.join(_ORIGINAL_FPF_HPS)}"
            )
        if _ORIGINAL_FPF_HPS[key] is None:
            _Spec("bool").check(f"{name}.{key}", item)
        else:
            out[_ORIGINAL_FPF_HPS[key]] = item
    return out


def to_original(config: Config) -> dict[str, Any]:
    """Our config in the original four-section format (only keys the reference knew).

    Raises ConfigError when the config uses something the original format cannot express
    (another task or agent, gradient clipping, agent/task kwargs without an original key).
    """
    if config.task.id != "VWMRecall-v0" or config.agent.name != "dale_rnn":
        raise ConfigError("config: only dale_rnn on VWMRecall-v0 has an original-format equivalent")
    if config.training.grad_clip is not None:
        raise ConfigError("training.grad_clip: the original format has no gradient clipping")
    out: dict[str, dict[str, Any]] = {section: {} for section in ORIGINAL_SECTIONS}
    data = config.to_dict()
    reverse = {
        target: key for key, target in _ORIGINAL_KEYS.items()
        if target is not None and target[:2] != ("analysis", "only") and key[1] not in (
            "spike_noise_factor", "final_spike_noise_factor", "multi_stage_training", "cuda_device",
            "fpf_hps")
    }
    used = set()
    for target, (section, key) in reverse.items():
        node: Any = data
        for part in target:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            out[section][key] = node
            used.add(target)
    for section_name in ("task", "agent"):
        for key in data[section_name]:
            if key in ("id", "name", "timing", "input_encoding", "spike_noise_factor"):
                continue
            if (section_name, key) not in used:
                raise ConfigError(f"{section_name}.{key}: has no original-format equivalent")
    if "spike_noise_factor" in config.agent.kwargs:
        key = "final_spike_noise_factor" if config.training.noise_stages > 1 else "spike_noise_factor"
        out["model_params"][key] = config.agent.kwargs["spike_noise_factor"]
    if config.training.noise_stages > 1:
        out["training_params"]["multi_stage_training"] = {"num_stage": config.training.noise_stages}
    device = config.training.device
    if device.startswith("cuda:"):
        out["model_and_logging_params"]["cuda_device"] = int(device.split(":")[1])
    elif device == "auto":
        out["model_and_logging_params"]["cuda_device"] = 0
    only = config.analysis.only
    for (section, key), target in _ORIGINAL_KEYS.items():
        if target is not None and target[:2] == ("analysis", "only"):
            enabled = only is None or target[2] in only
            if key == "divis_norma_bool" and enabled:
                continue  # on by default in the original code; the key is from its latest version
            out[section][key] = enabled
    fpf = config.analysis.fixed_points.to_dict()
    out["fpf_params"]["fpf_hps"] = {
        ours: fpf[ours] for ours in _ORIGINAL_FPF_HPS.values() if ours is not None
    }
    return out

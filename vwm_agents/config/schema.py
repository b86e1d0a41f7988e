"""The schema: five sections, each key with its type, range, default and meaning.

A configuration has five sections::

    task:      {id: VWMRecall-v0, <env kwargs, flat>}        -> gym.make(id, **kwargs)
    agent:     {name: dale_rnn, <agent kwargs, flat>}        -> build_agent(name, n_in, n_out, **kwargs)
    training:  seed, num_iterations, batch_size, learning_rate, ...   (TrainingConfig)
    logging:   run_name, out_dir, period, progress, tensorboard       (LoggingConfig)
    analysis:  trials, only, human_data, <analysis>: {settings}       (analysis_section())

**Defaults.** A key left out takes the reference model's value: the schema defaults below are
the reference's (``configs/original.yaml`` lists them all), and env and agent kwargs left out take
the env's / agent's own defaults, which are the reference's too. So ``Config.from_dict({})`` is
the reference model at full scale (50,000 iterations of 512 trials, hours on a GPU). The command
line without ``--config`` reads ``configs/default.yaml`` (:func:`vwm_agents.config.load_config`
with no path), an ordinary config file that overrides a few keys for a CPU-sized run; it is
not a second set of defaults, and a config file of your own starts from the reference as well.

**Validation happens once**, in :meth:`Config.from_dict`: unknown keys, wrong types and
out-of-range values raise :class:`ConfigError` with one line naming the key. Agent and env kwargs
are checked against the constructor they go to (names, and types where annotated); their values
are judged by the agent and the env themselves when the run is built. A validated Config is
immutable: change a value with :meth:`Config.with_value`, which checks that one value only.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from vwm_agents.config.named import AgentConfig, TaskConfig, set_nested
from vwm_agents.config.original import is_original_format, map_original
from vwm_agents.config.specs import SECTIONS, ConfigError, Spec, show

__all__ = [
    "ERROR_DEFS",
    "COMPILE_MODES",
    "RANDOM_NUMBERS",
    "DISTRIBUTED_BACKENDS",
    "SECTIONS",
    "Config",
    "TaskConfig",
    "AgentConfig",
    "TrainingConfig",
    "LoggingConfig",
    "Section",
    "spec_field",
    "analysis_section",
    "ANALYSIS_SECTION_GROUP",
]

# The names the schema accepts; vwm_agents.training.losses and vwm_agents.training.accel import them from here
# (the schema does not import torch).
ERROR_DEFS: tuple[str, ...] = ("l2", "sqrtl2", "rad", "exp", "norml2")
COMPILE_MODES: tuple[str, ...] = ("auto", "off", "graph", "inductor")
# Sources of the noise's random numbers (vwm_agents.models.noise.RANDOM_NUMBERS; no torch here).
RANDOM_NUMBERS: tuple[str, ...] = ("auto", "philox", "torch")
# torch.distributed backends of a torchrun launch (vwm_agents.training.distributed).
DISTRIBUTED_BACKENDS: tuple[str, ...] = ("auto", "gloo", "nccl")


def spec_field(default: Any, spec: Spec, doc: str) -> Any:
    """A dataclass field of a :class:`Section`: its default, what it accepts and its meaning."""
    if isinstance(default, (list, dict)):
        return field(
            default_factory=lambda: copy.deepcopy(default), metadata={"spec": spec, "doc": doc}
        )
    return field(default=default, metadata={"spec": spec, "doc": doc})


_POS_INT = Spec("int", low=1)
_NONNEG_INT = Spec("int", low=0)
_POS_FLOAT = Spec("float", low=0, low_open=True)
_NONNEG_FLOAT = Spec("float", low=0)


# ----------------------------------------------------------------------------------------------
# Fixed-schema sections


class Section:
    """Shared behaviour of the fixed-schema sections (frozen dataclasses whose fields carry a Spec)."""

    @classmethod
    def from_dict(cls, data: Any, section: str):
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{section}: must be a mapping of keys to values, got {show(data)}")
        values = {key: cls._check_value(section, key, value) for key, value in data.items()}
        section_obj = cls(**values)
        section_obj._check_consistency(section)
        return section_obj

    @classmethod
    def _check_value(cls, section: str, key: Any, value: Any) -> Any:
        known = {f.name: f for f in fields(cls)}
        if key not in known:
            raise ConfigError(f"{section}.{key}: unknown key; allowed: {', '.join(known)}")
        spec = known[key].metadata.get("spec")
        if spec is not None:
            return spec.check(f"{section}.{key}", value)
        return known[key].metadata["section"].from_dict(value, f"{section}.{key}")

    def _with(self, section: str, path: list[str], value: Any):
        """A copy with the key at ``path`` set to ``value`` (checked)."""
        known = [f.name for f in fields(self)]
        if path[0] not in known:
            raise ConfigError(f"{section}.{path[0]}: unknown key; allowed: {', '.join(known)}")
        if len(path) > 1:
            child = getattr(self, path[0])
            if not isinstance(child, Section):
                raise ConfigError(
                    f"{section}.{path[0]}: is not a mapping, cannot set {section}.{'.'.join(path)}"
                )
            value = child._with(f"{section}.{path[0]}", path[1:], value)
        else:
            value = self._check_value(section, path[0], value)
        new = replace(self, **{path[0]: value})
        new._check_consistency(section)
        return new

    def _check_consistency(self, section: str) -> None:
        """Cross-key checks; overridden where needed."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Section) else copy.deepcopy(value)
        return out


@dataclass(frozen=True)
class TrainingConfig(Section):
    """The ``training`` section (defaults: the reference model, see docs/model.md, section Training)."""

    seed: int = spec_field(0, _NONNEG_INT, "seed of the data, noise and initial weights")
    num_iterations: int = spec_field(50_000, _POS_INT, "optimiser steps")
    batch_size: int = spec_field(
        512, _POS_INT, "fresh trials per iteration (reference: num_trials)"
    )
    balance_set_sizes: bool = spec_field(
        True, Spec("bool"), "split the batch evenly over set sizes"
    )
    learning_rate: float = spec_field(1e-4, _POS_FLOAT, "Adam step size (reference: eta)")
    lr_factor: float = spec_field(
        0.5, Spec("float", low=0, low_open=True, high=1, high_open=True), "ReduceLROnPlateau factor"
    )
    lr_patience: int = spec_field(400, _NONNEG_INT, "ReduceLROnPlateau patience (iterations)")
    early_stop_patience: int | None = spec_field(
        600, Spec("int", low=1, nullable=True), "iterations without a lower loss; null: never stop"
    )
    error_def: str = spec_field("rad", Spec("choice", choices=ERROR_DEFS), "VWM error definition")
    lambda_err: float = spec_field(1.0, _NONNEG_FLOAT, "weight of the task error")
    lambda_reg: float = spec_field(1e-5, _NONNEG_FLOAT, "weight of the L1 rate penalty (per Hz)")
    report_cost: float = spec_field(
        0.0,
        _NONNEG_FLOAT,
        "weight c of the cost of reporting (VWM tasks): c times the mean over present items of "
        "the length of the item's decode-window readout (vwm_agents.training.losses.report_cost); 0: off",
    )
    grad_clip: float | None = spec_field(
        None,
        Spec("float", low=0, low_open=True, nullable=True),
        "max gradient norm; null: off (the reference has no clipping)",
    )
    noise_stages: int = spec_field(
        1,
        _POS_INT,
        "noise curriculum stages, log-spaced from 0.001 to agent.spike_noise_factor (1: the final "
        "noise throughout). A stage ends when the learning rate would drop or early stopping would "
        "fire; that rule is our choice, the reference's is not known (see docs/model.md, section "
        "What is ours)",
    )
    eval_batch_size: int = spec_field(512, _POS_INT, "trials in the fixed held-out batch")
    checkpoint_period: int | None = spec_field(
        None,
        Spec("int", low=1, nullable=True),
        "iterations between checkpoints; null: logging.period",
    )
    device: str = spec_field(
        "auto",
        Spec("device"),
        "auto: cuda if available, else cpu; cuda:<index> must exist when the run starts",
    )
    compile: str = spec_field(
        "auto",
        Spec("choice", choices=COMPILE_MODES),
        "auto: graph on cuda, off on cpu; graph/inductor without CUDA run eagerly (warning)",
    )
    num_models: int = spec_field(
        1,
        _POS_INT,
        "models trained side by side in one stacked pass, seeds seed, seed+1, ...; "
        "each in runs/<name>/seed_<s>/",
    )
    threads: int | None = spec_field(
        None, Spec("int", low=1, nullable=True), "torch CPU threads; null: torch's default"
    )
    random_numbers: str = spec_field(
        "auto",
        Spec("choice", choices=RANDOM_NUMBERS),
        "source of the noise's random numbers: philox (CPU; the C kernels' Philox, or the same "
        "numbers from PyTorch integer ops where they cannot be built, slower), torch (PyTorch's "
        "generator), auto: philox on a CPU with the kernels, else torch. A run records what auto "
        "chose, and a resume keeps it on any machine",
    )
    distributed_backend: str = spec_field(
        "auto",
        Spec("choice", choices=DISTRIBUTED_BACKENDS),
        "under torchrun: the torch.distributed backend; auto: nccl on CUDA, gloo on the CPU",
    )
    distributed_timeout_s: float = spec_field(
        300.0,
        _POS_FLOAT,
        "under torchrun: seconds a rank waits for the others in a collective before the job "
        "ends (a rank that dies ends it at once)",
    )


@dataclass(frozen=True)
class LoggingConfig(Section):
    """The ``logging`` section."""

    run_name: str = spec_field(
        "EasyTask1", Spec("str"), "prefix of the run directory name (rnn_name)"
    )
    out_dir: str = spec_field("runs", Spec("str"), "directory that holds run directories")
    period: int = spec_field(50, _POS_INT, "iterations between history records")
    progress: bool = spec_field(True, Spec("bool"), "show a tqdm progress bar")
    tensorboard: bool = spec_field(
        False, Spec("bool"), "write TensorBoard scalars; needs the [tensorboard] extra"
    )

    def _check_consistency(self, section: str) -> None:
        parts = Path(self.run_name).parts
        if Path(self.run_name).is_absolute() or ".." in parts:
            raise ConfigError(
                f"{section}.run_name: must be a relative name without '..', got {show(self.run_name)}"
            )


ANALYSIS_SECTION_GROUP = "vwm_rnn.config_sections"
"""The entry-point group whose ``analysis`` entry is the class of the ``analysis`` section. The
``analysis`` package declares it (its registry derives the section from the analyses' settings),
so that the schema checks those keys without importing ``analysis``, which depends on us."""


@functools.cache
def analysis_section() -> type:
    """The class of the ``analysis`` section: the ``analysis`` entry point of
    :data:`ANALYSIS_SECTION_GROUP` (loaded once), or, with no such entry point (``analysis`` not
    installed), :class:`UncheckedSection`."""
    found = entry_points(group=ANALYSIS_SECTION_GROUP, name="analysis")
    return next(iter(found)).load() if found else UncheckedSection


@dataclass(frozen=True)
class UncheckedSection:
    """The ``analysis`` section when no package declares its schema: kept as written."""

    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, section: str) -> UncheckedSection:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{section}: must be a mapping of keys to values, got {show(data)}")
        return cls(copy.deepcopy(dict(data)))

    def _with(self, section: str, path: list[str], value: Any) -> UncheckedSection:
        return UncheckedSection(set_nested(self.values, section, path, value))

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.values)


# ----------------------------------------------------------------------------------------------
# The whole config


@dataclass(frozen=True)
class Config:
    """A validated run configuration (see the module docstring; defaults: the reference model).

    ``origin`` maps keys of ours to the key the user wrote, where that differs (an original-format
    file's ``model_params.num_neurons`` for ``agent.n_neurons``, or a command-line option), so
    that errors found later, when the env and the agent are built, can name the key as written:
    see :meth:`user_error`. It is not part of the config's value (equality, ``to_dict``).
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    analysis: Any = field(default_factory=lambda: analysis_section()())
    origin: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Any, origin: Mapping[str, str] | None = None) -> Config:
        """Validate a plain mapping in our schema (or the original format) into a Config.

        Keys left out take the reference model's values (not ``configs/default.yaml``'s).
        ``origin``: see the class docstring (filled in here for the original format).
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"config: must be a mapping of sections, got {show(data)}")
        origin = dict(origin or {})
        if is_original_format(data):
            data, mapped = map_original(data)
            origin = {**mapped, **origin}
        try:
            for key in data:
                if key not in SECTIONS:
                    raise ConfigError(f"{key}: unknown section; allowed: {', '.join(SECTIONS)}")
            config = cls(
                task=TaskConfig.from_dict(data.get("task")),
                agent=AgentConfig.from_dict(data.get("agent")),
                training=TrainingConfig.from_dict(data.get("training"), "training"),
                logging=LoggingConfig.from_dict(data.get("logging"), "logging"),
                analysis=analysis_section().from_dict(data.get("analysis"), "analysis"),
                origin=origin,
            )
            config.agent.check()
            config.task.check()
        except ConfigError as exc:
            raise _renamed(exc, origin) from None
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
        return self.agent.agent_class()

    def with_value(self, key: str, value: Any, *, written_as: str | None = None) -> Config:
        """A copy with one dotted key set (``config.with_value("training.seed", 3)``).

        Only the changed value is checked (with its section's cross-key checks; a new
        ``agent.name`` or ``task.id`` re-checks that section's kwargs). ``written_as``: how the
        user wrote the key (e.g. ``"--out"``), for error messages.
        """
        return self.with_values({key: value}, written_as={key: written_as} if written_as else None)

    def with_values(
        self, changes: Mapping[str, Any], *, written_as: Mapping[str, str] | None = None
    ) -> Config:
        """:meth:`with_value` for several keys at once (applied in order)."""
        origin = dict(self.origin)
        for key in changes:
            for known in [k for k in origin if k == key or k.startswith(key + ".")]:
                del origin[known]
        origin.update(written_as or {})
        config = replace(self, origin=origin)
        try:
            for key, value in changes.items():
                config = config._with(key, value)
        except ConfigError as exc:
            raise _renamed(exc, origin) from None
        return config

    def _with(self, key: str, value: Any) -> Config:
        path = key.split(".")
        section = path[0]
        if section not in SECTIONS or len(path) < 2 or not all(path):
            raise ConfigError(
                f"{key}: must be a dotted key section.key with a section among {', '.join(SECTIONS)}"
            )
        if section in ("task", "agent"):
            current = getattr(self, section)
            name_key = "id" if section == "task" else "name"
            data = current.to_dict()
            if path[1:] == [name_key]:
                data[name_key] = value
            else:
                data.pop(name_key)
                data = {
                    name_key: getattr(current, name_key),
                    **set_nested(data, section, path[1:], value),
                }
            new = type(current).from_dict(data)
            new.check()
            return replace(self, **{section: new})
        return replace(self, **{section: getattr(self, section)._with(section, path[1:], value)})

    def user_error(self, exc: ConfigError) -> ConfigError:
        """``exc`` with the key it names replaced by the key as the user wrote it.

        For errors raised after validation, when the env or the agent is built from this config:
        ``agent.n_neurons: ...`` becomes ``model_params.num_neurons (agent.n_neurons): ...`` for
        a config read from an original-format file.
        """
        return _renamed(exc, self.origin)


_KEY_AT_START = re.compile(r"([A-Za-z_][\w-]*(?:\.[\w-]+)*): ")


def _renamed(exc: ConfigError, origin: Mapping[str, str]) -> ConfigError:
    message = str(exc)
    match = _KEY_AT_START.match(message)
    if not origin or match is None:
        return exc
    key = match.group(1)
    written = origin.get(key)
    if written is None:  # e.g. task.timing, written as model_params.T_stimi, T_delay, ...
        under = {k: v for k, v in origin.items() if k.startswith(key + ".")}
        rest = message[match.end() :]
        named = [
            v for k, v in under.items() if re.search(rf"\b{re.escape(k.rsplit('.', 1)[1])}\b", rest)
        ]
        candidates = named if len(named) == 1 else list(dict.fromkeys(under.values()))
        written = " / ".join(candidates) if candidates else None
    if written is None or written == key:
        return exc
    return ConfigError(f"{written} ({key}): {message[match.end() :]}")

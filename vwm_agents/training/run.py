"""From a validated config to a resolved run (env, model, device, run directory), and back.

The one path of a training: :func:`vwm_agents.config.load_config` validates, :func:`resolve_run`
builds the env and the model once and checks everything only they can judge (nothing is written
before), :func:`vwm_agents.training.api.train` trains into the run directory (a
:class:`~vwm_agents.training.rundir.RunDir`, which owns its layout), and :func:`load_run` rebuilds
a finished run for the analyses.
"""

from __future__ import annotations

import importlib.util
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

from vwm_agents.config import Config, ConfigError, load_config
from vwm_agents.training.checkpoint import CheckpointError, load_checkpoint, load_model_state
from vwm_agents.training.resources import check_memory
from vwm_agents.training.rundir import CHECKPOINT_DIR, CONFIG_FILE, RunDir, RunDirError

__all__ = [
    "RunDirError",
    "ResolvedRun",
    "resolve_run",
    "LoadedRun",
    "make_env",
    "build_model",
    "is_discrete",
    "resolve_device",
    "load_run",
]


def make_env(config: Config) -> gym.Env:
    """``gym.make(task.id, **task kwargs)``; the env's own ValueError becomes ``task.<arg>: ...``."""
    config.task.env_class()  # resolved once at validation; registers the env's package
    kwargs = config.task.kwargs
    try:
        with warnings.catch_warnings():
            # gymnasium's checker warns about neurogym's metadata on every make
            warnings.filterwarnings("ignore", message=".*render_modes.*")
            return gym.make(config.task.id, disable_env_checker=True, **kwargs)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(_name_argument("task", kwargs, exc)) from None
    except MemoryError:  # e.g. observation bounds of 3 task.max_items floats
        sizes = {
            key: value
            for key, value in kwargs.items()
            if isinstance(value, int) and not isinstance(value, bool)
        }
        largest = max(sizes, key=sizes.get, default=None)
        named = f"task.{largest}={sizes[largest]}" if largest else "task"
        raise ConfigError(
            f"{named}: building the env {config.task.id} ran out of memory; lower it"
        ) from None


def is_discrete(env: gym.Env) -> bool:
    """Whether the env's actions are class labels (cross-entropy) rather than a Box (VWM error)."""
    return isinstance(env.action_space, gym.spaces.Discrete)


def build_model(
    config: Config, env: gym.Env, *, agent_class: type | None = None, seed: int | None = None
) -> nn.Module:
    """The configured agent sized for ``env``, on the CPU, with weights from ``seed``
    (default ``training.seed``).

    The agent's ``dt`` (if it takes one) comes from the env; setting a different ``agent.dt`` is
    an error. An agent that takes ``random_numbers`` gets ``training.random_numbers``.
    ``agent_class``: the class of ``agent.name`` when the caller resolved it already.
    Seeding uses a forked torch RNG, so building a model leaves the global RNG alone.
    """
    if agent_class is None:
        agent_class = config.agent_class()
    kwargs = dict(config.agent.kwargs)
    env_dt = getattr(env.unwrapped, "dt", None)
    if "dt" in inspect.signature(agent_class.__init__).parameters and env_dt is not None:
        if "dt" in kwargs and not math.isclose(float(kwargs["dt"]), float(env_dt)):
            raise ConfigError(f"agent.dt: must equal the task's dt ({env_dt}), got {kwargs['dt']}")
        kwargs["dt"] = float(env_dt)
    if "random_numbers" in inspect.signature(agent_class.__init__).parameters:
        if "random_numbers" in kwargs:
            raise ConfigError("agent.random_numbers: set training.random_numbers instead")
        kwargs["random_numbers"] = config.training.random_numbers
    n_inputs = int(env.observation_space.shape[-1])
    n_outputs = int(env.action_space.n) if is_discrete(env) else int(env.action_space.shape[-1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.training.seed if seed is None else seed)
        try:
            return agent_class(n_inputs, n_outputs, **kwargs)
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
class ResolvedRun:
    """Everything a training needs, built once from a validated config.

    ``models`` holds one model per ensemble member (``training.num_models``; member s has the
    weights of the single run with seed ``training.seed + s``); all members share ``env``, whose
    batches depend only on the generator they are drawn with.
    """

    config: Config
    env: gym.Env
    models: list[nn.Module]
    agent_class: type
    device: torch.device
    compile_mode: str
    run_dir: RunDir
    discrete: bool
    final_noise: float

    @property
    def model(self) -> nn.Module:
        return self.models[0]


def resolve_run(
    config: Config,
    *,
    out_dir: str | Path | None = None,
    device: str | None = None,
    progress: bool | None = None,
    resume: bool = False,
) -> ResolvedRun:
    """Build ``config``'s env and model(s) and name its run directory; write nothing.

    ``out_dir``, ``device`` and ``progress`` override ``logging.out_dir``, ``training.device``
    and ``logging.progress`` (and are part of the returned config). ``training.random_numbers:
    auto`` is resolved for this machine (:func:`resolve_random_numbers`), or, with ``resume``,
    to what the run recorded.

    Raises:
        ConfigError: anything only the env, the model or this machine can judge (a timing the
            env refuses, an agent without ``set_noise_factor`` given noise stages, a CUDA device
            that is not there, TensorBoard requested but not installed, sizes that need more
            memory than the machine has: :class:`~vwm_agents.training.resources.ResourceError`).
    """
    from vwm_agents.training.accel import resolve_compile_mode

    config = _with_overrides(config, out_dir=out_dir, device=device, progress=progress)
    cfg = config.training
    torch_device = resolve_device(cfg.device)
    compile_mode = resolve_compile_mode(cfg.compile, torch_device)  # warns and falls back on CPU
    if (
        getattr(config.logging, "tensorboard", False)
        and importlib.util.find_spec("tensorboard") is None
    ):
        raise ConfigError(
            "logging.tensorboard: true needs the tensorboard package, which is not installed; "
            "pip install 'vwm-rnn[tensorboard]' or set it to false"
        )
    agent_class = config.agent_class()
    run_dir = RunDir.for_config(config, agent_class=agent_class)
    config = config.with_value(
        "training.random_numbers",
        resolve_random_numbers(cfg.random_numbers, torch_device, run_dir if resume else None),
    )
    cfg = config.training
    try:
        env = make_env(config)
        check_memory(config, env, torch_device)  # before the model takes any of it
        models = [
            build_model(config, env, agent_class=agent_class, seed=cfg.seed + index)
            for index in range(cfg.num_models)
        ]
    except ConfigError as exc:  # name the key as the user wrote it (original-format files)
        raise config.user_error(exc) from None
    final_noise = float(
        config.agent.kwargs.get(
            "spike_noise_factor", _signature_default(agent_class, "spike_noise_factor", 0.0)
        )
    )
    if cfg.noise_stages > 1:
        if not hasattr(models[0], "set_noise_factor"):
            raise ConfigError(
                f"training.noise_stages: agent {config.agent.name} has no set_noise_factor, must be 1"
            )
        if final_noise <= 1e-3:
            raise ConfigError(
                "training.noise_stages: a curriculum needs agent.spike_noise_factor > 0.001, "
                f"got {final_noise}"
            )
    return ResolvedRun(
        config=config,
        env=env,
        models=models,
        agent_class=agent_class,
        device=torch_device,
        compile_mode=compile_mode,
        run_dir=run_dir,
        discrete=is_discrete(env),
        final_noise=final_noise,
    )


def resolve_random_numbers(
    requested: str, device: torch.device, resumed: RunDir | None = None
) -> str:
    """``training.random_numbers`` for a run on ``device``: ``philox`` or ``torch`` as given;
    ``auto`` becomes what the ``resumed`` run recorded, else this machine's choice
    (:func:`vwm_agents.models.noise.resolve_random_numbers`). A resumed run that recorded
    nothing (written before 0.2) keeps ``auto``, so its config still matches.

    Raises:
        ConfigError: ``philox`` on a GPU (the GPU draws with PyTorch's generator).
    """
    from vwm_agents.models.noise import resolve_random_numbers as source_on

    chosen = requested
    if requested == "auto" and resumed is not None and resumed.config_file.is_file():
        recorded = resumed.saved_config().get("training", {}).get("random_numbers", "auto")
        chosen = recorded if recorded in ("philox", "torch") else "auto"
    elif requested == "auto":
        chosen = source_on(requested, device)
    if chosen == "philox" and device.type != "cpu":
        raise ConfigError(
            f"training.random_numbers: philox (the run's noise source) runs on the "
            f"CPU only, not on {device}; use the CPU, or torch/auto for a new run"
        )
    return chosen


def _with_overrides(
    config: Config, *, out_dir: str | Path | None, device: str | None, progress: bool | None
) -> Config:
    changes: dict[str, Any] = {}
    if out_dir is not None:
        changes["logging.out_dir"] = str(out_dir)
    if progress is not None:
        changes["logging.progress"] = bool(progress)
    if device is not None:
        changes["training.device"] = str(device)
    return config.with_values(changes) if changes else config


def _signature_default(cls: type, name: str, fallback: Any) -> Any:
    parameter = inspect.signature(cls.__init__).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return fallback
    return parameter.default


@dataclass
class LoadedRun:
    """A trained run, ready for analysis."""

    config: Config
    model: nn.Module
    env: Any
    run_dir: Path
    iteration: int
    checkpoint: str

    @property
    def rundir(self) -> RunDir:
        """The run directory's files (history, metrics, checkpoints)."""
        return RunDir(self.run_dir)


def load_run(
    run_dir: str | Path, checkpoint: str = "best", device: str = "cpu", *, trust_code: bool = False
) -> LoadedRun:
    """Rebuild a run's env and model (eval mode) from ``run_dir/config.yaml`` and a checkpoint.

    Args:
        checkpoint: ``"best"`` (lowest validation error) or ``"latest"``; ``"best"`` falls back
            to ``"latest"`` only if the run never reached a logging step.
        trust_code: allow a config that names code from outside the toolkit (``agent.name`` or
            ``task.id`` as ``package.module:Name``), which loading imports. Off: such a run is
            refused before anything is imported (checkpoints are read weights-only either way).

    Raises:
        RunDirError: missing directory, config or checkpoint, a corrupt/mismatching file, or
            foreign code without ``trust_code``.

    >>> import tempfile
    >>> from vwm_agents import load_config, load_run, train
    >>> config = load_config(overrides=[
    ...     "task.max_items=1", "agent.n_neurons=8", "training.num_iterations=2",
    ...     "training.batch_size=4", "training.eval_batch_size=8", "training.threads=1",
    ...     "training.device=cpu", "logging.period=1", "logging.progress=false"])
    >>> run = load_run(train(config, tempfile.mkdtemp()))
    >>> run.checkpoint, type(run.model).__name__, run.iteration in (1, 2)
    ('best', 'DaleRNN', True)
    >>> [record["iteration"] for record in run.rundir.read_history()]
    [1, 2]
    """
    if checkpoint not in ("best", "latest"):
        raise ValueError(f"checkpoint must be 'best' or 'latest', got {checkpoint!r}")
    directory = RunDir(run_dir)
    if not directory.path.is_dir():
        raise RunDirError(f"{directory}: run directory not found")
    config_path = directory.config_file
    if not config_path.is_file():
        raise RunDirError(f"{directory}: no {CONFIG_FILE}; not a run directory")
    directory.check_trusted(trust_code=trust_code)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise RunDirError(f"{config_path}: {exc}") from None
    path = directory.checkpoint(checkpoint)
    if checkpoint == "best" and not path.exists():
        path = directory.checkpoint("latest")
    if not path.exists():
        members = directory.members()
        if members:
            raise RunDirError(
                f"{directory}: an ensemble run; load one of its members "
                f"({', '.join(m.name for m in members)}), e.g. {members[0]}"
            )
        raise RunDirError(f"{directory}: no checkpoint {checkpoint}.pt in {CHECKPOINT_DIR}/")
    try:
        env = make_env(config)
        model = build_model(config, env)
    except ConfigError as exc:  # what only the env or the agent refuses, named in the file
        raise RunDirError(f"{config_path}: {config.user_error(exc)}") from None
    try:
        payload = load_checkpoint(path)
        load_model_state(model, payload["model"], path)
    except CheckpointError as exc:
        raise RunDirError(str(exc)) from None
    model.to(torch.device(device)).eval()
    return LoadedRun(
        config=config,
        model=model,
        env=env.unwrapped,
        run_dir=directory.path,
        iteration=int(payload.get("iteration", 0)),
        checkpoint=str(payload.get("kind", path.stem)),
    )

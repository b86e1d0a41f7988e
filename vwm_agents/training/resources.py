"""Memory a training needs, checked against what the machine has before anything is built.

:func:`estimate_memory` adds up, for a config and its env (built, which is cheap; the model is
not), in float32 bytes:

* ``weights``: the agent's parameters (N^2 + N n_in + n_out N for :class:`DaleRNN`, the same
  formula for other agents) four times over (values, gradients, Adam's two moments), plus the
  copy that evaluates ``best.pt``, per ensemble member;
* ``training``: the (B, T, N) buffers the backward keeps, ``TRAIN_BYTES_PER_ELEMENT`` per
  element of the batch's rates, per member;
* ``batches``: the env's batch arrays (inputs, targets, mask: B T (n_in + 2 n_out) floats) for
  the training batch and the two fixed evaluation batches (validation and test), numpy and
  torch copies;
* ``evaluation``: the forward of an evaluation batch, ``EVAL_BYTES_PER_ELEMENT`` per element
  of its (E, T, N) rates;
* ``runtime``: a constant for the rest (allocator, autograd, plotting).

T is the longest of a few trials drawn from the env (its timing; VWM tasks only, other envs
count weights only). The two per-element factors were calibrated against the peak resident
memory of 2-iteration trainings of the default config that differ in one batch size
(``benchmarks/bench_memory.py``, ``benchmarks/bench_memory.json``; docs/performance.md) and
rounded up.

:func:`available_memory` is MemAvailable (``/proc/meminfo``), or less where a cgroup limit
(``memory.max`` less ``memory.current``, cgroup v2; ``memory.limit_in_bytes`` v1) says so, on the
CPU, and ``torch.cuda.mem_get_info`` on CUDA. :func:`check_memory` refuses a config whose
estimate exceeds it, with one line naming the keys and the two numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vwm_agents.config import Config, ConfigError

__all__ = [
    "TRAIN_BYTES_PER_ELEMENT",
    "EVAL_BYTES_PER_ELEMENT",
    "MemoryEstimate",
    "ResourceError",
    "available_memory",
    "check_memory",
    "estimate_memory",
    "is_out_of_memory",
]

FLOAT_BYTES = 4
# Bytes per element of the batch's (B, T, N) rates (see the module docstring).
# Measured (benchmarks/bench_memory.py, two runs): 30.4-32.1 and 21.4-23.0 bytes of peak RSS per
# element, of which the batch arrays (counted apart) are 4.4 and 8.8 at the default sizes.
TRAIN_BYTES_PER_ELEMENT = 28
EVAL_BYTES_PER_ELEMENT = 16
# What a 2-iteration training adds to the process beyond the parts (allocator, autograd, the
# history plot): measured ~80 MiB at the default sizes.
RUNTIME_BYTES = 96 * 2**20
# Trials drawn to find the longest trial of the env's timing.
_TIMING_TRIALS = 2
# The keys each part of the estimate grows with, as the refusal names them.
_PART_KEYS = {
    "weights": "agent.n_neurons, task.max_items, training.num_models",
    "training": "training.batch_size, agent.n_neurons, training.num_models",
    "batches": "training.batch_size, training.eval_batch_size, task.max_items",
    "evaluation": "training.eval_batch_size, agent.n_neurons",
    "runtime": "training.batch_size",
}


class ResourceError(ConfigError):
    """A config that cannot fit this machine's memory (one line naming keys and numbers)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training needs, by part (see the module docstring)."""

    parts: dict[str, int] = field(default_factory=dict)
    n_steps: int = 0

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def largest(self) -> str:
        return max(self.parts, key=self.parts.get)


def estimate_memory(
    config: Config, env: Any, device: torch.device | str, *, trials: bool = True
) -> MemoryEstimate:
    """The memory ``config`` needs for training on ``device`` with ``env`` (built from it).

    Exact integer arithmetic, so absurd sizes give an absurd number, not an overflow or a hang.
    ``trials=False``: the weights alone, without drawing trials to learn T (a draw holds
    B x max_items arrays, too large to make for absurd sizes).
    """
    del device  # the same parts on CPU and CUDA (the CUDA caching allocator rounds up a little)
    cfg = config.training
    n_in = math.prod(getattr(env.observation_space, "shape", ()) or (1,))
    action = env.action_space
    n_out = int(action.n) if hasattr(action, "n") else math.prod(action.shape or (1,))
    n_neurons = _hidden_size(config)
    members = cfg.num_models
    parameters = n_neurons * n_neurons + n_neurons * n_in + n_out * n_neurons + 3 * n_neurons
    parts = {"weights": FLOAT_BYTES * parameters * (4 * members + 1), "runtime": RUNTIME_BYTES}
    n_steps = _longest_trial(env) if trials else 0
    if n_steps:
        per_trial = n_steps * n_neurons
        batch_floats = n_steps * (n_in + 2 * n_out)
        parts["training"] = TRAIN_BYTES_PER_ELEMENT * cfg.batch_size * per_trial * members
        parts["batches"] = (
            2 * FLOAT_BYTES * batch_floats * (cfg.batch_size * members + 2 * cfg.eval_batch_size)
        )
        parts["evaluation"] = EVAL_BYTES_PER_ELEMENT * cfg.eval_batch_size * per_trial
    return MemoryEstimate(parts, n_steps)


def _hidden_size(config: Config) -> int:
    kwargs = config.agent.kwargs
    for key in ("n_neurons", "n_hidden", "hidden_size"):
        if key in kwargs:
            return int(kwargs[key])
    import inspect

    parameters = inspect.signature(config.agent_class().__init__).parameters
    for key in ("n_neurons", "n_hidden", "hidden_size"):
        if key in parameters and isinstance(parameters[key].default, int):
            return parameters[key].default
    return 0


def _longest_trial(env: Any) -> int:
    """Steps of the longest of a few trials of a VWM env (0 for other envs)."""
    sample_batch = getattr(env.unwrapped, "sample_batch", None)
    if sample_batch is None:
        return 0
    batch = sample_batch(_TIMING_TRIALS, np.random.default_rng(0), dense=False)
    return int(batch.valid.shape[1])


def available_memory(device: torch.device | str) -> tuple[int, str] | None:
    """``(bytes, where from)`` that a run on ``device`` may use, or None if unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"free on {device} (torch.cuda.mem_get_info)"
    if device.type != "cpu":
        return None
    found = _meminfo_available()
    limit = _cgroup_headroom()
    if limit is not None and (found is None or limit[0] < found[0]):
        found = limit
    return found


def _meminfo_available() -> tuple[int, str] | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "MemAvailable"
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> tuple[int, str] | None:
    """The cgroup's memory limit less what it uses now (v2, else v1), or None."""
    for limit_file, usage_file, name in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "cgroup memory.max"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
            "cgroup memory.limit_in_bytes",
        ),
    ):
        try:
            limit_text = Path(limit_file).read_text().strip()
            if limit_text == "max":
                return None
            limit, usage = int(limit_text), int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit >= 1 << 60:  # v1's "no limit"
            return None
        return max(limit - usage, 0), name
    return None


def check_memory(config: Config, env: Any, device: torch.device | str) -> MemoryEstimate:
    """:func:`estimate_memory`, refused with :class:`ResourceError` if it exceeds
    :func:`available_memory` (not checked where that is unknown)."""
    available = available_memory(device)
    estimate = estimate_memory(config, env, device, trials=False)  # absurd weights refused first
    if available is None or estimate.total <= available[0]:
        estimate = estimate_memory(config, env, device)
    if available is not None and estimate.total > available[0]:
        parts = ", ".join(
            f"{name} {_size(value)}"
            for name, value in sorted(estimate.parts.items(), key=lambda item: -item[1])
        )
        keys = ", ".join(
            f"{key}={_value(config, key)}" for key in _PART_KEYS[estimate.largest].split(", ")
        )
        steps = f"; trials of {estimate.n_steps} steps from task.timing" if estimate.n_steps else ""
        raise ResourceError(
            f"{keys}: this run needs about {_size(estimate.total)} of memory on "
            f"{torch.device(device)} ({parts}{steps}) but {_size(available[0])} is available "
            f"({available[1]}); lower one of these"
        )
    return estimate


def _value(config: Config, key: str) -> Any:
    section, name = key.split(".")
    if section == "training":
        return getattr(config.training, name)
    kwargs = config.agent.kwargs if section == "agent" else config.task.kwargs
    return kwargs.get(name, "default")


def _size(n_bytes: int) -> str:
    for unit, scale in (
        ("EiB", 2**60),
        ("PiB", 2**50),
        ("TiB", 2**40),
        ("GiB", 2**30),
        ("MiB", 2**20),
    ):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes / 2**10:.3g} KiB"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation that failed (numpy, Python, torch on CPU or CUDA)."""
    if isinstance(exc, MemoryError):  # numpy's _ArrayMemoryError included
        return True
    if isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )

"""Trials with chosen stimuli for the neural analyses, and batched simulation of a model on them.

The neural analyses need trials whose angles and occupied slots are set by the analysis (repeats
of one stimulus, one slot at a time, ...), not drawn by the task. Their timing comes from the
env's own batch sampler (``sample_batch(..., dense=False)``), and their input vectors from the
env's ``trial_vectors`` (the ones ``new_trial`` and ``sample_batch`` use), so nothing of the task
is re-derived here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from analysis.core.agent_protocol import run_agent
from vwm_tasks.batch import collect_batch
from vwm_tasks.encoding import wrap_angle

__all__ = [
    "EPOCH_CHOICES",
    "ForcedTrials",
    "Simulation",
    "forced_trials",
    "task_trials",
    "simulate",
]

EPOCH_CHOICES: tuple[str, ...] = ("decode", "delay", "stimulus", "init", "all")


@dataclass
class ForcedTrials:
    """B trials (batch-first): chosen angles and presence (VWM tasks), or any task's own trials."""

    ob: Tensor
    """(B, T, n_in) float32 network input."""
    epochs: dict[str, np.ndarray]
    """epoch name -> (B, 2) [start, end) steps."""
    valid: np.ndarray
    """(B, T) bool, real (non-padding) steps."""
    theta: np.ndarray | None = None
    """(B, K) true angles (VWM tasks)."""
    theta_input: np.ndarray | None = None
    """(B, K) angles after input (ILC) noise (VWM tasks)."""
    presence: np.ndarray | None = None
    """(B, K) bool (VWM tasks)."""

    def epoch_mask(self, name: str) -> np.ndarray:
        """(B, T) bool, True on the steps of epoch ``name``."""
        if name not in self.epochs:
            raise ValueError(f"epoch must be one of {tuple(self.epochs)}, got {name!r}")
        steps = np.arange(self.valid.shape[1])
        start, end = self.epochs[name][:, :1], self.epochs[name][:, 1:]
        return (steps >= start) & (steps < end)

    def epoch_mean(self, values: np.ndarray, name: str) -> np.ndarray:
        """Mean of ``values (B, T, N)`` over each trial's steps of epoch ``name`` -> (B, N)."""
        mask = self.epoch_mask(name)
        return np.einsum("bt,btn->bn", mask / mask.sum(1, keepdims=True), values)

    def fixed_epochs(self) -> dict[str, tuple[int, int]]:
        """Epoch boundaries shared by every trial; an error if the task's timing varies."""
        out = {}
        for name, bounds in self.epochs.items():
            if not np.all(bounds == bounds[0]):
                raise ValueError(
                    f"epoch {name!r} varies across trials; use a task with fixed timing"
                )
            out[name] = (int(bounds[0, 0]), int(bounds[0, 1]))
        return out


def forced_trials(
    env,
    theta: np.ndarray,
    presence: np.ndarray,
    *,
    ilc_noise: float | None = None,
    rng: np.random.Generator | int | None = None,
    probe: np.ndarray | None = None,
) -> ForcedTrials:
    """Trials showing angles ``theta`` (B, K) in the slots where ``presence`` (B, K) is True.

    Args:
        env: a VWMRecall env (wrapped or not).
        ilc_noise: SD (rad) of the input angle noise, drawn once per trial and slot as in the
            task; None uses the env's own value.
        rng: generator or seed for the timing and the input noise.
        probe: (B,) probed slot per trial for cued tasks; default: the first present slot
            (cued tasks) or -1 (uncued).
    """
    task = env.unwrapped
    for attr in ("sample_batch", "trial_vectors", "max_items"):
        if not hasattr(task, attr):
            raise TypeError(
                f"env must be a VWMRecall-like task with {attr!r}; got {type(task).__name__}"
            )
    theta = np.asarray(theta, dtype=float)
    presence = np.asarray(presence, dtype=bool)
    k = int(task.max_items)
    if theta.ndim != 2 or theta.shape != presence.shape or theta.shape[1] != k:
        raise ValueError(
            f"theta and presence must both be (B, {k}), got {theta.shape} and {presence.shape}"
        )
    rng = np.random.default_rng(rng)
    batch = task.sample_batch(theta.shape[0], rng, dense=False)
    sd = float(getattr(task, "ilc_noise", 0.0)) if ilc_noise is None else float(ilc_noise)
    theta_input = (
        wrap_angle(theta + sd * rng.standard_normal(theta.shape)) if sd > 0 else theta.copy()
    )
    if probe is None:
        cued = getattr(task, "n_cue_channels", 0) > 0
        probe = presence.argmax(1) if cued else np.full(theta.shape[0], -1)
    vectors = task.trial_vectors(theta, theta_input, presence, np.asarray(probe, dtype=np.int64))
    steps = np.arange(batch.n_steps)

    def during(epoch: str) -> np.ndarray:
        bounds = batch.epochs[epoch]
        return ((steps >= bounds[:, :1]) & (steps < bounds[:, 1:]))[..., None]

    ob = during("stimulus") * vectors.stimulus[:, None, :]
    if vectors.cue is not None:
        ob = ob + during("decode") * vectors.cue[:, None, :]
    return ForcedTrials(
        ob=torch.as_tensor(ob, dtype=torch.float32),
        epochs={name: np.asarray(b) for name, b in batch.epochs.items()},
        valid=np.asarray(batch.valid, bool),
        theta=theta,
        theta_input=theta_input,
        presence=presence,
    )


def task_trials(env, n_trials: int, rng: np.random.Generator | int | None = None) -> ForcedTrials:
    """``n_trials`` of any neurogym task as the task itself draws them (``collect_batch``), with
    the env's own epoch boundaries per trial."""
    batch = collect_batch(env, int(n_trials), rng, dense=True)
    return ForcedTrials(
        ob=torch.as_tensor(batch.ob, dtype=torch.float32),
        epochs={name: np.asarray(b) for name, b in batch.epochs.items()},
        valid=np.asarray(batch.valid, bool),
        theta=batch.theta,
        theta_input=batch.theta_input,
        presence=batch.presence,
    )


@dataclass
class Simulation:
    """Outputs and states ("rates") of an agent on a batch of trials."""

    outputs: Tensor
    """(B, T, n_out) outputs (for the Dale RNN: readout of a noisy sample of the rates)."""
    rates: Tensor
    """(B, T, N) states: the Dale RNN's clean rates, a GRU's hidden state."""


@torch.no_grad()
def simulate(
    model: torch.nn.Module,
    trials: ForcedTrials,
    *,
    noise: bool = True,
    seed: int = 0,
    chunk_size: int = 512,
) -> Simulation:
    """Run ``model`` on ``trials`` in chunks of ``chunk_size``, on the model's device, with a
    seeded generator so the agent's noise (if it has any) is reproducible; ``noise=False``
    switches it off (see :mod:`analysis.core.agent_protocol`)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    outputs, rates = [], []
    for start in range(0, trials.ob.shape[0], chunk_size):
        ob = trials.ob[start : start + chunk_size].to(device)
        out, r = run_agent(model, ob, noise=noise, generator=generator)
        outputs.append(out.float().cpu())
        rates.append(r.float().cpu())
    return Simulation(torch.cat(outputs), torch.cat(rates))

"""The bottom layer of the behavioural analyses: a model's recall errors on fresh trials.

:func:`model_errors` runs a model on its VWM recall env (trials sampled as in training, the
task's item-location noise and the agent's own noise included, no gradients) and returns every
reported item's error with the errors relative to the other items shown (the non-targets the
swap model needs). ``python -m analysis`` calls it once per run and hands the same
:class:`ModelErrors` to the ``errors``, ``mixture`` and ``human`` analyses.

Sign convention (ours): an error is ``wrap(response - target)`` in radians on [-pi, pi), and a
non-target error ``wrap(response - non-target)``; the same convention is used for people's data
(:mod:`analysis.human.data`), so positive means "reported clockwise of the truth" in both.

The task helpers (its name, whether it is a VWM recall task) are :mod:`analysis.core.tasks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from analysis.core import circstats
from analysis.core.tasks import needs_vwm_recall

__all__ = ["ModelErrors", "model_errors"]


@dataclass
class ModelErrors:
    """One row per reported item.

    Attributes:
        errors: (n,) wrap(response - true angle), radians.
        set_size: (n,) set size of the trial the item was in.
        nontarget_errors: (n, K - 1) wrap(response - other present items' true angles), NaN-padded
            (the first ``set_size - 1`` columns are filled).
        response: (n,) decoded angle.
        target: (n,) true angle.
        n_trials: trials simulated per set size.
        seed: the seed of trials and noise.
        trial: (n,) the simulated trial each item came from (the items of one trial are
            resampled together by the bootstrap of :mod:`analysis.core.bootstrap`).
    """

    errors: np.ndarray
    set_size: np.ndarray
    nontarget_errors: np.ndarray
    response: np.ndarray
    target: np.ndarray
    n_trials: int = 0
    seed: int = 0
    trial: np.ndarray | None = None


def _select(batch, rows: np.ndarray):
    """The compact sub-batch of ``rows`` (trial parameters and epoch bounds only)."""
    return replace(
        batch,
        ob=None,
        gt=None,
        mask=None,
        valid=batch.valid[rows],
        epochs={name: bounds[rows] for name, bounds in batch.epochs.items()},
        theta=batch.theta[rows],
        theta_input=batch.theta_input[rows],
        presence=batch.presence[rows],
        set_size=batch.set_size[rows],
        probe=batch.probe[rows],
        item_gain=None if batch.item_gain is None else batch.item_gain[rows],
        trials=None,
    )


@dataclass
class ForwardChunk:
    """One chunk of :func:`forward_chunks`: its tensors, the model's output and the state of
    torch's generator just before the forward drew its noise."""

    ob: Any
    gt: Any
    mask: Any
    out: Any
    rng_state: Any

    @property
    def outputs(self) -> Any:
        """The readout (the first element of an ``(outputs, rates)`` forward)."""
        return self.out[0] if isinstance(self.out, tuple) else self.out


def forward_chunks(
    model: Any, base: Any, batch: Any, seed: int, *, batch_size: int = 250, device: Any = None
) -> Iterator[ForwardChunk]:
    """Run ``model`` on ``batch`` (trial parameters of ``base``'s ``sample_batch``) in chunks of
    ``batch_size``: in eval mode, under ``torch.no_grad``, its noise on, torch's generator seeded
    from ``seed`` inside a forked RNG state (the caller's state is untouched); the model's
    training mode is restored afterwards."""
    import torch

    from vwm_tasks.batch import batch_tensors

    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, batch.batch_size, batch_size):
                chunk = _select(batch, np.arange(start, min(start + batch_size, batch.batch_size)))
                ob, gt, mask = batch_tensors(base, chunk, device)
                rng_state = torch.get_rng_state()
                yield ForwardChunk(ob, gt, mask, model(ob), rng_state)
    finally:
        model.train(was_training)


def model_errors(
    model,
    env,
    n_trials: int = 1000,
    set_sizes=None,
    seed: int = 0,
    *,
    batch_size: int = 250,
    device: Any = None,
) -> ModelErrors:
    """Run ``model`` on ``n_trials`` fresh trials per set size of ``env`` and collect its errors.

    Trials come from ``env.sample_batch`` (balanced over the env's set sizes, seeded by
    ``seed``), so they are drawn exactly as in training; the model runs in chunks of
    ``batch_size`` under ``torch.no_grad`` with its noise on (its default forward), with torch's
    RNG seeded from ``seed`` inside a forked RNG state so the caller's state is untouched.

    Args:
        model: an agent (``forward(ob) -> outputs`` or ``(outputs, rates)``).
        env: a VWMRecall(-Cued) env (wrapped or not).
        n_trials: trials per set size.
        set_sizes: the set sizes to test (default: all the env's).
        seed: seeds both the trials and the model's noise.
    """

    from vwm_agents.training.losses import decoded_angles

    reason = needs_vwm_recall(model, env)
    if reason is not None:
        raise ValueError(f"env: {reason}")
    base = getattr(env, "unwrapped", env)
    available = [int(n) for n in np.asarray(base.set_sizes)]
    wanted = available if set_sizes is None else sorted({int(n) for n in set_sizes})
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise ValueError(f"set_sizes: {missing} not among the env's set sizes {available}")
    if n_trials < 1:
        raise ValueError(f"n_trials: must be >= 1, got {n_trials}")
    batch = base.sample_batch(
        n_trials * len(available), np.random.default_rng(seed), dense=False, balance_set_sizes=True
    )
    batch = _select(batch, np.flatnonzero(np.isin(batch.set_size, wanted)))
    responses = []
    for step in forward_chunks(model, base, batch, seed, batch_size=batch_size, device=device):
        responses.append(decoded_angles(step.outputs, step.mask).cpu().numpy())
    data = _item_errors(batch, np.concatenate(responses, axis=0))
    data.n_trials, data.seed = int(n_trials), int(seed)
    return data


def _item_errors(batch, response: np.ndarray) -> ModelErrors:
    """Flatten (trial, reported slot) pairs into rows, with each row's non-target errors."""
    theta, presence = batch.theta, batch.presence
    b, k = theta.shape
    if response.shape[1] == k:  # uncued: every present slot is reported
        reported = presence
        response_full = response
    else:  # cued: one response, for the probed slot
        reported = np.zeros_like(presence)
        reported[np.arange(b), batch.probe] = True
        response_full = np.repeat(response[:, :1], k, axis=1)
    trial, slot = np.nonzero(reported)
    resp = response_full[trial, slot]
    target = theta[trial, slot]
    # Non-targets: the other present slots, in slot order, left-aligned and NaN-padded.
    others = presence[trial] & (np.arange(k)[None, :] != slot[:, None])
    order = np.argsort(~others, axis=1, kind="stable")[:, : k - 1]
    nt_theta = np.take_along_axis(theta[trial], order, axis=1)
    nt_valid = np.take_along_axis(others, order, axis=1)
    nontarget = np.where(nt_valid, circstats.angular_difference(resp[:, None], nt_theta), np.nan)
    return ModelErrors(
        errors=circstats.angular_difference(resp, target),
        set_size=batch.set_size[trial],
        nontarget_errors=nontarget,
        response=resp,
        target=target,
        trial=trial,
    )

"""Batches of trials for training: the :class:`TrialBatch` container.

A batch is either *dense* (``ob``, ``gt``, ``mask`` as numpy arrays, batch-first) or *compact*
(``ob``/``gt``/``mask`` are ``None``; the trial parameters and epoch boundaries are enough for the
producing env to build the dense tensors directly on a torch device with ``env.batch_tensors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrialBatch:
    """A batch of B trials padded to a common length T (batch-first arrays).

    Attributes:
        ob: inputs ``(B, T, n_in)`` float32, or ``None`` in the compact form.
        gt: targets ``(B, T, n_out)`` float32 for Box action spaces, ``(B, T)`` int64 for
            Discrete ones; ``None`` in the compact form.
        mask: float32 array shaped like ``gt``: 1 where the loss and the metrics count (for VWM
            tasks: decode steps x present slots), 0 elsewhere; ``None`` in the compact form.
        valid: ``(B, T)`` bool, True for steps inside the trial (False for padding).
        epochs: epoch name -> ``(B, 2)`` int64 ``[start, end)`` step indices, in epoch order.
        dt: the time step in ms.
        theta: ``(B, K)`` true angles (rad, [-pi, pi)) of every slot (VWM tasks only).
        theta_input: ``(B, K)`` the angles shown to the network, after ILC noise.
        presence: ``(B, K)`` bool, which slots hold an item.
        set_size: ``(B,)`` int64 number of items.
        probe: ``(B,)`` int64 cued slot for cued recall, -1 where every present slot is reported.
        item_gain: ``(B, K)`` gain on each slot's stimulus (task option ``item_gain``), else None.
        trials: the per-trial dicts from ``new_trial`` (generic collector), else ``None``.
    """

    ob: np.ndarray | None
    gt: np.ndarray | None
    mask: np.ndarray | None
    valid: np.ndarray
    epochs: dict[str, np.ndarray]
    dt: float
    theta: np.ndarray | None = None
    theta_input: np.ndarray | None = None
    presence: np.ndarray | None = None
    set_size: np.ndarray | None = None
    probe: np.ndarray | None = None
    item_gain: np.ndarray | None = None
    trials: list[dict] | None = field(default=None, repr=False)

    @property
    def batch_size(self) -> int:
        return int(self.valid.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.valid.shape[1])

    @property
    def is_dense(self) -> bool:
        return self.ob is not None


def _base_env(env: Any) -> Any:
    return env.unwrapped if hasattr(env, "unwrapped") else env


def collect_batch(
    env: Any,
    batch_size: int,
    rng: np.random.Generator | int | None = None,
    *,
    dense: bool = True,
    **kwargs: Any,
) -> TrialBatch:
    """``batch_size`` trials from any neurogym ``TrialEnv``, padded to the longest trial.

    Uses the env's vectorised ``sample_batch(batch_size, rng, dense=dense, **kwargs)`` when it
    has one. Otherwise loops ``new_trial()`` (through the top wrapper, so trial wrappers run):
    ``rng`` (an int seed or a ``Generator`` to draw one from) reseeds the env first, None keeps
    its state. ``gt`` is float32 ``(B, T, n_out)`` for Box action spaces and int64 ``(B, T)`` for
    Discrete ones; ``mask`` is the env's own ``mask`` attribute when it keeps one per trial, else
    ``valid`` (broadcast over the outputs for Box). Epochs absent from a trial are ``[0, 0)``.
    """
    base = _base_env(env)
    if hasattr(base, "sample_batch"):
        return base.sample_batch(batch_size, rng, dense=dense, **kwargs)
    if kwargs:
        raise ValueError(f"collect_batch: {sorted(kwargs)} need an env with sample_batch")
    if not dense:
        raise ValueError("collect_batch: dense=False (compact form) needs an env with sample_batch")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(rng, np.random.Generator):
        base.seed(int(rng.integers(2**31)))
    elif rng is not None:
        base.seed(int(rng))

    obs, gts, masks, trials, bounds = [], [], [], [], []
    for _ in range(batch_size):
        trials.append(base._top.new_trial())
        obs.append(np.array(base.ob, dtype=np.float32))
        gts.append(np.array(base.gt))
        masks.append(np.array(base.mask, dtype=np.float32) if hasattr(base, "mask") else None)
        bounds.append({p: (base.start_ind[p], base.end_ind[p]) for p in base.start_ind})
    lengths = np.array([len(ob) for ob in obs])
    n_steps = int(lengths.max())
    valid = np.arange(n_steps)[None, :] < lengths[:, None]

    def pad(rows: list[np.ndarray], dtype: Any) -> np.ndarray:
        out = np.zeros((batch_size, n_steps, *rows[0].shape[1:]), dtype=dtype)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out

    discrete = base.action_space.shape in ((), None)
    ob = pad(obs, np.float32)
    gt = pad(gts, np.int64 if discrete else np.float32)
    if all(m is not None and m.shape == g.shape for m, g in zip(masks, gts, strict=True)):
        mask = pad(masks, np.float32)
    else:
        mask = valid.astype(np.float32)
        if not discrete:
            mask = np.broadcast_to(mask[..., None], gt.shape).copy()
    names = list(dict.fromkeys(p for trial_bounds in bounds for p in trial_bounds))
    epochs = {
        p: np.array([trial_bounds.get(p, (0, 0)) for trial_bounds in bounds], dtype=np.int64)
        for p in names
    }
    return TrialBatch(ob, gt, mask, valid, epochs, float(base.dt), trials=trials)


def batch_tensors(env: Any, batch: TrialBatch, device: Any = "cpu") -> tuple[Any, Any, Any]:
    """``(ob, gt, mask)`` torch tensors on ``device`` for a batch from ``env``.

    Built directly on the device from the compact form by ``env.unwrapped.batch_tensors`` when
    the env has it; else copied from the dense numpy arrays. ``ob`` and ``mask`` are float32;
    ``gt`` is float32, or int64 ``(B, T)`` for Discrete action spaces.
    """
    base = _base_env(env)
    if hasattr(base, "batch_tensors"):
        return base.batch_tensors(batch, device)
    if not batch.is_dense:
        raise ValueError("batch_tensors: a compact batch needs an env with batch_tensors")
    import torch

    gt_dtype = torch.int64 if batch.gt.dtype.kind in "iu" else torch.float32
    return (
        torch.as_tensor(batch.ob, dtype=torch.float32, device=device),
        torch.as_tensor(batch.gt, dtype=gt_dtype, device=device),
        torch.as_tensor(batch.mask, dtype=torch.float32, device=device),
    )

"""Batches of trials for training: the :class:`TrialBatch` container.

A batch is either *dense* (``ob``, ``gt``, ``mask`` as numpy arrays, batch-first) or *compact*
(``ob``/``gt``/``mask`` are ``None``; the trial parameters and epoch boundaries are enough for the
producing env to build the dense tensors directly on a torch device with ``env.batch_tensors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

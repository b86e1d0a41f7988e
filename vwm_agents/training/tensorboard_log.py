"""Live training curves: each history record as TensorBoard scalars (``logging.tensorboard``).

Needs the optional ``tensorboard`` package (``pip install 'vwm-rnn[tensorboard]'``);
:func:`vwm_agents.training.run.resolve_run` refuses ``logging.tensorboard: true`` without it. The events
go to ``RUN_DIR/tensorboard/``: ``tensorboard --logdir runs`` shows every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["TensorBoardLog", "scalars"]


def scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """The TensorBoard tags and values of one history record (None values left out).

    ``train/loss``, ``train/error``, ``train/error_std``, ``train/rate``, ``train/accuracy``,
    ``train/error_set_size_<n>``, ``train/rate_set_size_<n>``, ``validation/error``,
    ``schedule/lr``, ``schedule/noise_stage``, ``schedule/noise_factor``.
    """
    tags = {
        "loss": "train/loss",
        "error": "train/error",
        "error_std": "train/error_std",
        "rate": "train/rate",
        "accuracy": "train/accuracy",
        "val_error": "validation/error",
        "lr": "schedule/lr",
        "noise_stage": "schedule/noise_stage",
        "noise_factor": "schedule/noise_factor",
    }
    out = {tag: float(record[key]) for key, tag in tags.items() if record.get(key) is not None}
    for size, group in (record.get("per_set_size") or {}).items():
        for key in ("error", "rate"):
            if group.get(key) is not None:
                out[f"train/{key}_set_size_{size}"] = float(group[key])
    return out


class TensorBoardLog:
    """A ``SummaryWriter`` on ``log_dir`` that writes history records at their iteration.

    A resumed run (``start_iteration`` > 0) purges the events a killed run wrote after its last
    checkpoint, so the curves hold each iteration once.
    """

    def __init__(self, log_dir: str | Path, start_iteration: int = 0):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(
            log_dir=str(log_dir), purge_step=start_iteration + 1 if start_iteration else None
        )

    def write(self, record: Mapping[str, Any]) -> None:
        step = int(record["iteration"])
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

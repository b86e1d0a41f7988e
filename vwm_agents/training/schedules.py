"""What changes over a run besides the weights: learning rate, early stopping, noise curriculum.

:class:`TrainingSchedule` steps all three once per iteration on the training loss and says what
happened (:class:`ScheduleEvent`), so the trainer can log it. The curriculum rule (advance a
noise stage when the learning rate would drop or early stopping would fire) is our choice: see
docs/model.md, section What is ours.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["EarlyStopping", "NoiseCurriculum", "ScheduleEvent", "TrainingSchedule", "noise_levels"]


@dataclass
class EarlyStopping:
    """Stop after ``patience`` iterations without a loss below the best so far (delta 0).

    NaN losses are ignored (neither improve nor count), as in the reference.
    """

    patience: int | None
    best: float = math.inf
    counter: int = 0
    stopped: bool = False

    def step(self, loss: float) -> bool:
        if math.isnan(loss):
            return self.stopped
        if loss < self.best:
            self.best, self.counter = loss, 0
        else:
            self.counter += 1
            if self.patience is not None and self.counter >= self.patience:
                self.stopped = True
        return self.stopped

    def restart(self) -> None:
        self.best, self.counter, self.stopped = math.inf, 0, False

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def noise_levels(final: float, stages: int, start: float = 1e-3) -> list[float]:
    """Noise factors of the curriculum: log-spaced from ``start`` to ``final`` (1 stage: final)."""
    if stages == 1:
        return [float(final)]
    return [float(x) for x in np.geomspace(start, final, stages)]


@dataclass
class NoiseCurriculum:
    """Which noise level the model trains at; a single level means no curriculum."""

    levels: list[float] = field(default_factory=lambda: [0.0])
    stage: int = 0

    @property
    def level(self) -> float:
        return self.levels[self.stage]

    @property
    def is_final(self) -> bool:
        return self.stage == len(self.levels) - 1

    @property
    def active(self) -> bool:
        """Whether there is more than one stage (only then does it set the model's noise)."""
        return len(self.levels) > 1

    def apply(self, model: nn.Module) -> None:
        """Set ``model``'s noise factor to the current stage's level (no-op without stages)."""
        if self.active:
            model.set_noise_factor(self.level)

    def state_dict(self) -> dict[str, Any]:
        return {"levels": list(self.levels), "stage": self.stage}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.levels, self.stage = list(state["levels"]), int(state["stage"])


@dataclass(frozen=True)
class ScheduleEvent:
    """Something a schedule did at an iteration: ``kind`` is ``lr_drop``, ``stage`` or ``stop``."""

    kind: str
    message: str


class TrainingSchedule:
    """ReduceLROnPlateau, early stopping and the noise curriculum of one optimiser.

    A stage plateaus when the scheduler would lower the learning rate or early stopping runs out
    of patience. Before the final stage either event moves on to the next, higher noise level
    instead: the learning rate is kept, and the scheduler and early stopping start afresh (the
    loss scale changes with the noise). The trainer also restarts its best validation error then.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        lr_factor: float,
        lr_patience: int,
        early_stop_patience: int | None,
        noise_levels: list[float],
    ):
        self.optimizer = optimizer
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=lr_factor, patience=lr_patience
        )
        self.early_stopping = EarlyStopping(early_stop_patience)
        self.curriculum = NoiseCurriculum(list(noise_levels))

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def stopped(self) -> bool:
        return self.early_stopping.stopped

    def step(self, loss: float, model: nn.Module) -> list[ScheduleEvent]:
        """Step on this iteration's loss (after the optimiser step); returns what happened."""
        lr_before = self.lr
        self.scheduler.step(loss)
        stopped = self.early_stopping.step(loss)
        lr_dropped = self.lr < lr_before
        if not self.curriculum.is_final and (lr_dropped or stopped):
            self._next_stage(lr_before, model)
            return [
                ScheduleEvent(
                    "stage",
                    (
                        f"noise stage {self.curriculum.stage + 1}/{len(self.curriculum.levels)}: "
                        f"noise factor {self.curriculum.level:.3g} (the previous stage plateaued)"
                    ),
                )
            ]
        events = []
        if lr_dropped:
            events.append(
                ScheduleEvent("lr_drop", f"learning rate {lr_before:.3g} -> {self.lr:.3g}")
            )
        if stopped:
            events.append(
                ScheduleEvent(
                    "stop",
                    (
                        f"early stopping: no lower loss for {self.early_stopping.patience} iterations "
                        f"(best {self.early_stopping.best:.4g})"
                    ),
                )
            )
        return events

    def _next_stage(self, lr: float, model: nn.Module) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.scheduler.best = self.scheduler.mode_worse
        self.scheduler.num_bad_epochs = 0
        self.early_stopping.restart()
        self.curriculum.stage += 1
        self.curriculum.apply(model)

    def state_dict(self) -> dict[str, Any]:
        return {
            "scheduler": self.scheduler.state_dict(),
            "early_stopping": self.early_stopping.state_dict(),
            "curriculum": self.curriculum.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self.early_stopping.load_state_dict(state["early_stopping"])
        self.curriculum.load_state_dict(state["curriculum"])

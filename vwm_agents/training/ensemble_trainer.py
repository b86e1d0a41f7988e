"""``training.num_models: S > 1``: S members trained side by side in one stacked forward pass.

Member s is the single run with seed ``training.seed + s`` (its own optimiser, schedules,
clipping, data and noise streams, validation and test batches), written to
``runs/<name>/seed_<seed + s>/`` with the standard layout, and trains like that single run (to
float32 rounding). Only the forward and backward pass are shared
(:func:`vwm_agents.models.ensemble.ensemble_forward`); everything else goes through the public member
interface of :class:`vwm_agents.training.trainer.Trainer`. Members that stop (early stopping, the
iteration budget, divergence) leave the stack. All members share the run's env: its batches
depend only on the generator they are drawn with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from vwm_agents.config import Config
from vwm_agents.models.ensemble import ensemble_forward
from vwm_agents.training.accel import LossStep
from vwm_agents.training.run import ResolvedRun
from vwm_agents.training.rundir import CHECKPOINT_DIR, RunDir
from vwm_agents.training.trainer import (
    Diverged,
    Trainer,
    TrainingDiverged,
    TrainingInterrupted,
    deferred_sigint,
)

__all__ = ["EnsembleTrainer", "member_config", "train_ensemble"]


def member_config(config: Config, index: int) -> Config:
    """The single-run config of ensemble member ``index``: seed + index, one model."""
    return config.with_values(
        {"training.seed": config.training.seed + index, "training.num_models": 1}
    )


class EnsembleTrainer:
    """S :class:`Trainer` members sharing one stacked forward + backward per iteration.

    Batches of different shapes (padded neurogym trials) are run member by member for that
    iteration.
    """

    def __init__(self, members: list[Trainer], compile_mode: str, run_dir: RunDir):
        self.members = members
        self.compile_mode = compile_mode
        self.run_dir = run_dir
        self._stack: tuple[tuple[int, ...], LossStep] | None = None
        self.failures: list[TrainingDiverged] = []

    def _loss_step(self, active: list[Trainer]) -> LossStep:
        key = tuple(id(member) for member in active)
        if self._stack is None or self._stack[0] != key:  # members left: a new stack
            models = [member.model for member in active]
            generators = [member.streams.noise for member in active]

            def stacked(ob: Tensor, gt: Tensor, mask: Tensor, readout_from: int = 0):
                outputs, rates = ensemble_forward(
                    models, ob, generators=generators, readout_from=readout_from
                )
                # Each member's own loss on its slice: the sum backpropagates each member's
                # gradient unchanged (d sum / d loss_s = 1).
                # (A slice of the stacked rates takes the plain mean |r| form of the activity
                # penalty: its gradient is materialised for the stack anyway.)
                member_losses = torch.stack(
                    [
                        member.loss(outputs[s], None if rates is None else rates[s], gt[s], mask[s])
                        for s, member in enumerate(active)
                    ]
                )
                return member_losses.sum(), outputs, rates, member_losses

            params = [p for model in models for p in model.parameters()]
            self._stack = (key, LossStep(stacked, params, self.compile_mode, generators=generators))
        return self._stack[1]

    def _iteration(self, active: list[Trainer], checkpoint_period: int) -> None:
        drawn = [member.draw() for member in active]
        shapes = {tuple(tuple(x.shape) for x in sample.tensors) for sample in drawn}
        if len(shapes) == 1:
            ob, gt, mask = (torch.stack([sample.tensors[i] for sample in drawn]) for i in range(3))
            readout_from = min(
                member.readout_from(sample.batch)
                for member, sample in zip(active, drawn, strict=True)
            )
            _, outputs, rates, member_losses = self._loss_step(active)(
                ob, gt, mask, readout_from=readout_from
            )
            results = [
                (member_losses[s], outputs[s], None if rates is None else rates[s])
                for s in range(len(active))
            ]
        else:
            results = [
                member.loss_step(*sample.tensors, readout_from=member.readout_from(sample.batch))
                for member, sample in zip(active, drawn, strict=True)
            ]
        for member, sample, (loss, outputs, rates) in zip(active, drawn, results, strict=True):
            try:
                member.update(sample, loss, outputs, rates)
            except Diverged as exc:
                self.failures.append(member.fail(str(exc)))
                continue
            member.after_iteration(checkpoint_period)

    def run(self) -> None:
        first = self.members[0].config
        checkpoint_period = first.training.checkpoint_period or first.logging.period
        interrupted = threading.Event()
        failed: set[Path] = set()
        active = [m for m in self.members if not m.done]
        bar = tqdm(
            total=first.training.num_iterations,
            initial=min(m.iteration for m in self.members),
            disable=not first.logging.progress,
            dynamic_ncols=True,
            desc=f"{self.run_dir.name} x{len(self.members)}",
        )
        try:
            with deferred_sigint(interrupted):
                while active and not interrupted.is_set():
                    self._iteration(active, checkpoint_period)
                    failed = {failure.run_dir for failure in self.failures}
                    active = [m for m in active if not m.done and m.run_dir.path not in failed]
                    bar.update(1)
                    bar.set_postfix({"models": len(active)}, refresh=False)
        finally:
            bar.close()
        for member in self.members:
            if member.run_dir.path not in failed:
                member.wrap_up(interrupted.is_set())
        if interrupted.is_set():
            raise TrainingInterrupted(
                f"interrupted; checkpoints of all {len(self.members)} members saved in "
                f"{self.run_dir}/seed_*/{CHECKPOINT_DIR}; continue with --resume",
                self.run_dir.path,
                max(m.iteration for m in self.members),
            )
        if self.failures:
            failure = self.failures[0]
            raise TrainingDiverged(
                f"{len(self.failures)} of {len(self.members)} ensemble members diverged; the "
                f"others finished. First: {failure}",
                failure.run_dir,
                failure.iteration,
            )


def train_ensemble(
    run: ResolvedRun,
    members: Sequence[tuple[RunDir, Config]],
    payloads: Sequence[dict[str, Any] | None],
    *,
    callback: Callable[[dict], None] | None = None,
) -> None:
    """Train the members of a resolved run (``run.models``; their directories and configs from
    :func:`member_config`, their starting points from :meth:`RunDir.start`)."""
    trainers = [
        Trainer.from_run(
            run,
            model,
            config=config,
            run_dir=directory,
            callback=callback,
            progress=False,
            compile_mode="off",
        )
        for (directory, config), model in zip(members, run.models, strict=True)
    ]
    run.run_dir.write_config(run.config)
    for member, payload in zip(trainers, payloads, strict=True):
        member.begin(payload)
    EnsembleTrainer(trainers, run.compile_mode, run.run_dir).run()

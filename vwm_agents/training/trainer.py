"""Supervised training of an agent on fresh env trials, with exact resume.

One iteration (see docs/model.md, section Training)::

    batch  = env.sample_batch(B, data_rng, dense=False, balance_set_sizes=...)   (VWM tasks)
             | collect_batch(env, B, data_rng)                                   (other envs)
    loss   = lambda_err * mean(vwm_trial_error) + lambda_reg * activity_penalty(rates)   (Box)
             | classification_loss + lambda_reg * activity_penalty(rates)                (Discrete)
    zero_grad -> backward -> [divergence check] -> (clip) -> step -> scheduler.step(loss)
             -> early stopping(loss) -> noise curriculum -> model.apply_constraints()

Every ``logging.period`` iterations the mean of the per-iteration metrics since the last record
is appended to ``history.jsonl``, the model is evaluated on the fixed validation batch (its
error picks ``best.pt``); ``metrics.json`` at the end reports ``best.pt`` on the separate fixed
test batch (:mod:`vwm_agents.training.evaluation`). ``latest.pt`` is written atomically every
``training.checkpoint_period`` and holds every piece of state (model, Adam, schedules, every RNG
state and the metrics buffered since the last record), so a resumed run (after Ctrl-C or kill -9)
continues bit for bit where it stopped; the history is cut back to the checkpoint's iteration.

Randomness: every draw comes from a generator seeded from ``training.seed`` and saved in
``latest.pt``: the data from a numpy ``Generator``, the model's noise from a torch ``Generator``,
the fixed batches from their own seeds. The global torch generator is forked for the run and
seeded from ``training.seed`` as well (for agents that draw from it), so training neither reads
nor disturbs the caller's random state.

Events (a noise stage, a learning-rate drop, early stopping, divergence, resume, interruption) go
to the ``vwm_agents.training.trainer`` logger at INFO (divergence: WARNING), and above the progress bar
when that logger is not enabled for INFO.

Ensembles (``training.num_models > 1``) are trained by :mod:`vwm_agents.training.ensemble_trainer`
through the public member interface of :class:`Trainer`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from vwm_agents.config import Config
from vwm_agents.training import losses
from vwm_agents.training.accel import LossStep
from vwm_agents.training.checkpoint import (
    CheckpointError,
    load_model_state,
)
from vwm_agents.training.distributed import SINGLE, Distributed, RanksLost
from vwm_agents.training.evaluation import (
    Sample,
    batch_metrics,
    evaluate,
    first_loss_step,
    fixed_batches,
    forward_model,
    forward_parameters,
    run_seeds,
    sample,
    window_mean,
)
from vwm_agents.training.run import ResolvedRun, build_model
from vwm_agents.training.rundir import RunDir
from vwm_agents.training.schedules import TrainingSchedule, noise_levels
from vwm_agents.training.stopping import (
    Diverged,
    TrainingDiverged,
    TrainingFailed,
    TrainingInterrupted,
    TrainingOutOfMemory,
    TrainingRanksLost,
    deferred_sigint,
)
from vwm_agents.training.streams import RandomStreams

__all__ = [  # the stopping errors, re-exported: where callers have always found them
    "Trainer",
    "TrainingFailed",
    "TrainingOutOfMemory",
    "Diverged",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingRanksLost",
    "deferred_sigint",
]

logger = logging.getLogger(__name__)
# A library logs and the application shows: without this, Python's last-resort handler would
# print warnings (a divergence) that the CLI reports itself.
logger.addHandler(logging.NullHandler())


class Trainer:
    """The state of one run and its steps.

    A single run calls :meth:`run`. An ensemble trainer drives members through the public
    interface: :meth:`draw` a batch, :meth:`forward_loss` / :meth:`loss` (its own forward pass
    or a stacked one), :meth:`update` once gradients are in (raises :class:`Diverged`),
    :meth:`fail` on divergence, :meth:`after_iteration`, and :meth:`wrap_up` at the end.
    """

    def __init__(
        self,
        config: Config,
        run_dir: RunDir | Path,
        env: Any,
        model: nn.Module,
        device: torch.device,
        *,
        discrete: bool,
        final_noise: float,
        callback: Callable[[dict], None] | None = None,
        progress: bool = False,
        compile_mode: str = "off",
        dist: Distributed = SINGLE,
    ):
        cfg = config.training
        self.config, self.device, self.dist = config, device, dist
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.env, self.callback, self.progress, self.discrete = env, callback, progress, discrete
        self.model = model.to(device)
        options = forward_parameters(model)
        self._takes_generator = "generator" in options
        self._takes_readout_from = "readout_from" in options
        # The agent's own statement that its rates are >= 0 by construction (DaleRNN: phi >= 0
        # and a convex Euler update from rates 0): the activity penalty may take its
        # constant-gradient form.
        self._rates_nonnegative = bool(getattr(model, "nonnegative_rates", False))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate)
        self.schedule = TrainingSchedule(
            self.optimizer,
            lr_factor=cfg.lr_factor,
            lr_patience=cfg.lr_patience,
            early_stop_patience=cfg.early_stop_patience,
            noise_levels=noise_levels(final_noise, cfg.noise_stages),
        )
        self.seeds = run_seeds(cfg.seed)
        self.streams = RandomStreams.of_run(self.seeds, device, dist)
        # The fixed batches are evaluated by rank 0 alone, once.
        self.validation, self.test = (
            fixed_batches(
                env,
                self.seeds,
                cfg.eval_batch_size,
                device,
                balance_set_sizes=cfg.balance_set_sizes,
            )
            if dist.is_main
            else (None, None)
        )
        self.iteration = 0
        self.buffer: list[dict[str, Any]] = []  # per-iteration metrics since the last record
        self.best: dict[str, Any] = {"error": math.inf, "iteration": None}  # validation error
        self.loss_step = LossStep(
            self.forward_loss,
            list(self.model.parameters()),
            compile_mode,
            generators=[self.streams.noise],
        )
        self.tensorboard = None
        self.stop_requested = threading.Event()  # Ctrl-C / SIGTERM on this rank
        self.stopping = False  # decided for all ranks together

    @classmethod
    def from_run(
        cls,
        run: ResolvedRun,
        model: nn.Module | None = None,
        *,
        config: Config | None = None,
        run_dir: RunDir | None = None,
        callback: Callable[[dict], None] | None = None,
        progress: bool | None = None,
        compile_mode: str | None = None,
        dist: Distributed = SINGLE,
    ) -> Trainer:
        """A trainer of ``run`` (or of one ensemble member: its model, config and directory)."""
        config = run.config if config is None else config
        return cls(
            config,
            run.run_dir if run_dir is None else run_dir,
            run.env,
            run.model if model is None else model,
            run.device,
            discrete=run.discrete,
            final_noise=run.final_noise,
            callback=callback,
            progress=config.logging.progress if progress is None else progress,
            compile_mode=run.compile_mode if compile_mode is None else compile_mode,
            dist=dist,
        )

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs (under torchrun: on rank 0, with every rank's random
        state and buffered metrics, gathered; None on the other ranks)."""
        rng = self.streams.state()
        ranks = self.dist.gather({"rng": rng, "buffer": list(self.buffer)})
        if not self.dist.is_main:
            return None
        payload = {
            "kind": "latest",
            "iteration": self.iteration,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **self.schedule.state_dict(),
            "best": dict(self.best),
            "rng": rng,
            "buffer": list(self.buffer),
        }
        if self.dist.active:
            payload["distributed"] = {"world_size": self.dist.world_size, "ranks": ranks}
        return payload

    def load_state_dict(self, payload: dict[str, Any], source: Path) -> None:
        saved = payload.get("distributed") or {"world_size": 1}
        if int(saved["world_size"]) != self.dist.world_size:
            raise CheckpointError(
                f"{source}: the run was trained on {saved['world_size']} process(es) and is "
                f"resumed on {self.dist.world_size}; resume it with the same torchrun "
                f"--nproc_per_node x --nnodes ({saved['world_size']}), since each rank's trials "
                "and noise come from its own saved random state"
            )
        load_model_state(self.model, payload["model"], source)
        try:
            self.optimizer.load_state_dict(payload["optimizer"])
            self.schedule.load_state_dict(payload)
            own = saved["ranks"][self.dist.rank] if self.dist.active else payload
            self.streams.load(own["rng"])
            self.iteration = int(payload["iteration"])
            self.best = dict(payload["best"])
            self.buffer = list(own["buffer"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{source}: incomplete or inconsistent training state: {exc}"
            ) from None

    def begin(self, payload: dict[str, Any] | None, source: Path | None = None) -> None:
        """Start afresh (``payload`` None) or from a ``latest.pt`` payload; then prepare the run
        directory: its config, the history cut back to this iteration, the TensorBoard log."""
        if payload is not None:
            self.load_state_dict(payload, source or self.run_dir.checkpoint("latest"))
        self.schedule.curriculum.apply(self.model)
        if not self.dist.is_main:  # rank 0 alone writes the run directory
            return
        self.run_dir.prepare(self.config, self.iteration)
        if payload is not None:  # after prepare: a resume that fails there says only why
            self.event("resume", f"resuming at iteration {self.iteration}")
        if getattr(self.config.logging, "tensorboard", False):
            self.tensorboard = self.run_dir.tensorboard_log(self.iteration)

    # -- one iteration (the member interface) ------------------------------------------------
    def draw(self) -> Sample:
        """This iteration's training batch, from the run's own data stream."""
        return sample(
            self.env,
            self.dist.local_batch_size(self.config.training.batch_size),
            self.streams.data,
            self.device,
            balance_set_sizes=self.config.training.balance_set_sizes,
        )

    def loss(
        self,
        outputs: Tensor,
        rates: Tensor | None,
        gt: Tensor,
        mask: Tensor,
        *,
        rates_nonnegative: bool = False,
    ) -> Tensor:
        """The training loss of outputs and rates (one model's, unstacked).

        ``rates_nonnegative``: the rates are >= 0 by construction (see
        :func:`vwm_agents.training.losses.activity_penalty`).
        """
        cfg = self.config.training
        if self.discrete:
            loss = losses.classification_loss(outputs, gt, mask)
        else:
            loss = cfg.lambda_err * losses.vwm_trial_error(outputs, gt, mask, cfg.error_def).mean()
            if cfg.report_cost > 0:
                loss = loss + cfg.report_cost * losses.report_cost(outputs, mask).mean()
        if rates is not None and cfg.lambda_reg > 0:
            loss = loss + cfg.lambda_reg * losses.activity_penalty(
                rates, nonnegative=rates_nonnegative
            )
        return loss

    def forward_loss(self, ob: Tensor, gt: Tensor, mask: Tensor, readout_from: int = 0):
        """``(loss, outputs, rates)`` of the model on a batch, noise from the run's generator."""
        options = {"readout_from": readout_from} if readout_from else {}
        outputs, rates = forward_model(
            self.model, ob, self.streams.noise, self._takes_generator, **options
        )
        loss = self.loss(outputs, rates, gt, mask, rates_nonnegative=self._rates_nonnegative)
        return loss, outputs, rates

    def readout_from(self, batch: Any) -> int:
        """The first step any loss sees, if the agent can skip the readout noise before it."""
        return first_loss_step(batch) if self._takes_readout_from else 0

    def step(self) -> float:
        """One whole iteration of a single run; returns the loss."""
        drawn = self.draw()
        loss, outputs, rates = self.loss_step(
            *drawn.tensors, readout_from=self.readout_from(drawn.batch)
        )
        return self.update(drawn, loss, outputs, rates)

    def update(self, drawn: Sample, loss: Tensor, outputs: Tensor, rates: Tensor | None) -> float:
        """The rest of an iteration once the gradients are in: checks, step, schedules, metrics.

        Under torchrun the gradients, the loss and the checks are averaged / summed over the
        ranks here (one all-reduce), so every rank decides the same.

        Raises:
            Diverged: non-finite loss or rates on any rank (checked before the optimiser step).
        """
        # One host sync per iteration, for the scheduler's float and the finiteness check of
        # the loss and all rates together (never per time step).
        loss_finite = torch.isfinite(loss)
        rates_finite = torch.isfinite(rates).all() if rates is not None else loss_finite
        checks = torch.stack(
            [loss.detach(), loss_finite.to(loss.dtype), rates_finite.to(loss.dtype)]
        )
        summed, self.stopping = self.dist.reduce_step(
            self.loss_step.params, checks, self.stop_requested.is_set()
        )
        ranks = self.dist.world_size
        loss_value, loss_finite, rates_ok = (
            summed[0] / ranks,
            summed[1] == ranks,
            summed[2] == ranks,
        )
        if not (loss_finite and rates_ok):
            what = "rates" if not rates_ok else "loss"
            raise Diverged(f"non-finite {what} at iteration {self.iteration + 1}")
        if self.config.training.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.training.grad_clip)
        self.optimizer.step()
        for happened in self.schedule.step(loss_value, self.model):
            if happened.kind == "stage":  # the loss scale changes: best validation error anew
                self.best = {"error": math.inf, "iteration": None}
            self.event(happened.kind, f"iteration {self.iteration + 1}: {happened.message}")
        if hasattr(self.model, "apply_constraints"):
            self.model.apply_constraints()
        metrics = batch_metrics(
            outputs.detach(),
            drawn.gt,
            drawn.mask,
            rates.detach() if rates is not None else None,
            getattr(drawn.batch, "set_size", None),
            self.discrete,
        )
        self.buffer.append({"loss": loss_value, **metrics})
        self.iteration += 1
        return loss_value

    @property
    def done(self) -> bool:
        return self.iteration >= self.config.training.num_iterations or self.schedule.stopped

    def after_iteration(self, checkpoint_period: int) -> dict[str, Any] | None:
        """Log and checkpoint on their periods; returns the history record if one was written."""
        record = self._log() if self.iteration % self.config.logging.period == 0 else None
        if self.iteration % checkpoint_period == 0:
            self.save_latest()
        return record

    def wrap_up(self, interrupted: bool) -> None:
        """Record the iterations since the last logging step, save, and (unless interrupted)
        write metrics.json and the history plot."""
        try:
            # every rank buffers the same number of iterations: they decide this together
            if self.buffer and not interrupted:  # the run ended between two logging steps
                self._log()
            self.save_latest()
            if self.dist.active:
                drift = self.dist.max_difference(self.loss_step.params)
                if drift != 0.0:
                    raise RuntimeError(
                        f"the ranks' parameters differ by up to {drift:g} after iteration "
                        f"{self.iteration}: the ranks did not apply the same updates"
                    )
            if not interrupted and self.dist.is_main:
                self.finish()
        finally:
            self.close()

    def fail(self, reason: str) -> TrainingDiverged:
        """After :class:`Diverged`: keep the last good checkpoint, write metrics.json of the best
        one (if any), and return the error to raise."""
        latest = self.run_dir.checkpoint("latest")
        kept = (
            f"the last good checkpoint ({latest}) is kept"
            if latest.exists()
            else "no checkpoint was written yet"
        )
        self.buffer = []
        try:
            if self.dist.is_main and self.run_dir.checkpoint("best").exists():
                self.finish()
        finally:
            self.close()
        message = (
            f"training diverged: {reason}; {kept}; try a lower training.learning_rate or "
            "set training.grad_clip"
        )
        self.event("divergence", message, level=logging.WARNING)
        return TrainingDiverged(message, self.run_dir.path, self.iteration + 1)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None

    # -- logging ----------------------------------------------------------------------------
    def event(self, kind: str, message: str, level: int = logging.INFO) -> None:
        """Report an event of the run to the logger (and above the bar when it shows); under
        torchrun rank 0 alone reports (the ranks decide every event together)."""
        if not self.dist.is_main:
            return
        logger.log(level, "%s: %s", self.run_dir.name, message, extra={"event": kind})
        if self.progress and not logger.isEnabledFor(level):
            tqdm.write(f"{self.run_dir.name}: {message}")

    def _log(self) -> dict[str, Any] | None:
        # The mean over every iteration since the last record, for the per-set-size values as
        # well (the reference cleared its per-group buffers only when they grew past one period,
        # so its group values averaged windows of 50, 51 or 100 iterations). Under torchrun:
        # over every iteration of every rank (each rank's metrics are of its share of the batch).
        buffers = self.dist.gather(self.buffer)
        self.buffer = []
        if not self.dist.is_main:
            return None
        record = {
            "iteration": self.iteration,
            **window_mean([entry for buffer in buffers for entry in buffer]),
        }
        record["lr"] = self.schedule.lr
        curriculum = self.schedule.curriculum
        if curriculum.active:
            record["noise_stage"] = curriculum.stage
            record["noise_factor"] = curriculum.level
        validation = evaluate(self.model, self.validation, discrete=self.discrete)
        record["val_error"] = validation["error"]
        if validation["error"] is not None and validation["error"] < self.best["error"]:
            self.best = {"error": validation["error"], "iteration": self.iteration}
            self._save_best()
        self.run_dir.append_history(record)
        if self.tensorboard is not None:
            self.tensorboard.write(record)
        if self.callback is not None:
            self.callback(record)
        return record

    def _save_best(self) -> None:
        self.run_dir.save_checkpoint(
            "best",
            {
                "kind": "best",
                "iteration": self.iteration,
                "config": self.config.to_dict(),
                "model": self.model.state_dict(),
                "val_error": self.best["error"],
            },
        )

    def save_latest(self) -> None:
        payload = self.state_dict()  # a collective under torchrun: every rank takes part
        if payload is not None:
            self.run_dir.save_checkpoint("latest", payload)

    def finish(self) -> None:
        """metrics.json: ``best.pt`` (``latest`` if none) on the test batch; the history plot."""
        best_path = self.run_dir.checkpoint("best")
        model, which, iteration, val_error = self.model, "latest", self.iteration, None
        if best_path.exists():
            payload = self.run_dir.load_checkpoint("best", map_location=self.device)
            model = build_model(self.config, self.env, agent_class=type(self.model)).to(self.device)
            load_model_state(model, payload["model"], best_path)
            self.schedule.curriculum.apply(model)
            which, iteration = "best", int(payload["iteration"])
            val_error = payload.get("val_error", payload.get("heldout_error"))
        metrics = evaluate(model, self.test, discrete=self.discrete)
        metrics.update(
            {
                "iteration": iteration,
                "checkpoint": which,
                "evaluated_on": self.test.describe(),
                "selected_on": self.validation.describe(),
                "val_error": val_error,
                "eval_batch_size": self.config.training.eval_batch_size,
                "random_numbers": self.config.training.random_numbers,
            }
        )
        self.run_dir.write_metrics(metrics)
        self.run_dir.write_history_plot()

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        """Train until ``num_iterations``, early stopping, divergence or Ctrl-C."""
        cfg = self.config.training
        checkpoint_period = cfg.checkpoint_period or self.config.logging.period
        interrupted = self.stop_requested
        bar = tqdm(
            total=cfg.num_iterations,
            initial=self.iteration,
            disable=not (self.progress and self.dist.is_main),
            dynamic_ncols=True,
            desc=self.run_dir.name,
        )
        try:
            with deferred_sigint(interrupted, also_sigterm=self.dist.active):
                while not self.done and not self._stop_now(interrupted):
                    try:
                        self.step()
                    except Diverged as exc:
                        raise self.fail(str(exc)) from None
                    bar.update(1)
                    record = self.after_iteration(checkpoint_period)
                    if record is not None:
                        bar.set_postfix(self._postfix(record), refresh=False)
                stopped = self._stop_now(interrupted)
                self.wrap_up(stopped)
        except RanksLost as exc:
            raise self.lost(exc) from None
        finally:
            bar.close()
        if stopped:
            message = (
                f"interrupted after iteration {self.iteration}; checkpoint saved in "
                f"{self.run_dir.checkpoint('latest')}; continue with --resume"
            )
            self.event("interrupt", message)
            raise TrainingInterrupted(message, self.run_dir.path, self.iteration)

    def _stop_now(self, interrupted: threading.Event) -> bool:
        # Under torchrun the ranks stop after the same iteration: when any of them was asked
        # to (the request travels with the iteration's all-reduce).
        return self.stopping if self.dist.active else interrupted.is_set()

    def lost(self, exc: RanksLost) -> TrainingRanksLost:
        """The error that ends this rank when another rank is gone (nothing more is written)."""
        self.close()
        latest = self.run_dir.checkpoint("latest")
        kept = (
            f"the last good checkpoint {latest} is kept: run the same torchrun command with "
            "--resume to continue"
            if latest.exists()
            else "no checkpoint was written yet"
        )
        message = f"{exc} in iteration {self.iteration + 1}; {kept}"
        return TrainingRanksLost(message, self.run_dir.path, self.iteration + 1)

    def _postfix(self, record: dict[str, Any]) -> dict[str, str]:
        def fmt(x: Any) -> str:
            return "nan" if x is None else f"{x:.3g}"

        postfix = {
            "error": fmt(record.get("error")),
            "rate": fmt(record.get("rate")),
            "lr": f"{record['lr']:.2g}",
            "patience": str(self.schedule.early_stopping.counter),
        }
        if "noise_stage" in record:
            postfix["stage"] = f"{record['noise_stage'] + 1}/{len(self.schedule.curriculum.levels)}"
        return postfix

"""Supervised training of an agent on fresh env trials, with exact resume.

One iteration (original_model.md section 5, in the reference's order)::

    batch  = env.sample_batch(B, data_rng, dense=False, balance_set_sizes=...)   (VWM tasks)
             | collect_batch(env, B, data_rng)                                   (other envs)
    loss   = lambda_err * mean(vwm_trial_error) + lambda_reg * activity_penalty(rates)   (Box)
             | classification_loss + lambda_reg * activity_penalty(rates)                (Discrete)
    zero_grad -> backward -> [divergence check] -> (clip) -> step -> scheduler.step(loss)
             -> early stopping(loss) -> noise curriculum -> model.apply_constraints()

Every ``logging.period`` iterations: the mean of the per-iteration metrics since the last record
goes to ``history.yaml``, the model is evaluated on a fixed held-out batch (its error decides
``best.pt``), and ``latest.pt`` is written atomically every ``training.checkpoint_period``.
``latest.pt`` holds every piece of state (model, Adam, scheduler, early stopping, curriculum,
torch/numpy RNG states, history and the metrics buffered since the last record), so a resumed CPU
run continues bit for bit where it stopped.

Randomness: the data come from a numpy ``Generator`` and the model's spiking noise from a torch
``Generator`` (both seeded from ``training.seed``), the held-out batch and its noise from their
own seeds, so evaluating never disturbs training.

Speed: forward + loss + backward run through :class:`vwm_agents.accel.LossStep`
(``training.compile``: a CUDA graph of the whole pass on CUDA by default, eager on the CPU).
``training.num_models: S > 1`` trains S members with seeds ``seed, seed + 1, ...`` in one stacked
forward pass (:mod:`vwm_agents.ensemble`); each member is a full single run (own optimiser,
scheduler, early stopping, clipping, curriculum, data and noise streams) in
``runs/<name>/seed_<s>/`` with the standard layout, and member s trains like the single run with
seed s (to float32 rounding). Members that stop leave the stack.
"""

from __future__ import annotations

import inspect
import math
import signal
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from vwm_agents import losses
from vwm_agents.accel import LossStep, resolve_compile_mode
from vwm_agents.checkpoint import (
    CheckpointError,
    atomic_write_text,
    load_checkpoint,
    load_model_state,
    numpy_rng_state,
    save_checkpoint,
    set_numpy_rng_state,
)
from vwm_agents.config import Config, ConfigError
from vwm_agents.ensemble import ensemble_forward
from vwm_agents.run import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    METRICS_FILE,
    PLOT_FILE,
    RunDirError,
    build_model,
    is_discrete,
    make_env,
    resolve_device,
    run_name,
)
from vwm_agents.rundir import append_history, truncate_history

__all__ = [
    "train",
    "run_name",
    "TrainingDiverged",
    "TrainingInterrupted",
    "EarlyStopping",
    "NoiseCurriculum",
    "noise_levels",
    "evaluate",
]

# Keys that may differ between the saved config and the one given to --resume: they change how
# the run is executed or how long it goes on, not what it computes up to where it stopped.
RESUMABLE_CHANGES: tuple[str, ...] = (
    "training.num_iterations",
    "training.device",
    "training.threads",
    "logging.progress",
    "logging.out_dir",
    "analysis",
)


class TrainingDiverged(RuntimeError):
    """The loss or the rates became non-finite; the last good checkpoint is kept."""

    def __init__(self, message: str, run_dir: Path, iteration: int):
        super().__init__(message)
        self.run_dir = run_dir
        self.iteration = iteration


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: a checkpoint of the last finished iteration was saved; ``--resume`` continues."""

    def __init__(self, message: str, run_dir: Path, iteration: int):
        super().__init__(message)
        self.run_dir = run_dir
        self.iteration = iteration


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
    """Which noise level the model trains at; advances when a stage plateaus.

    A stage plateaus when the LR scheduler would lower the learning rate or early stopping runs
    out of patience. Before the final stage either event moves on to the next, higher noise
    level instead (the learning rate is kept, and the scheduler, early stopping and the best
    held-out error start afresh, because the loss scale changes with the noise).
    """

    levels: list[float] = field(default_factory=lambda: [0.0])
    stage: int = 0

    @property
    def level(self) -> float:
        return self.levels[self.stage]

    @property
    def is_final(self) -> bool:
        return self.stage == len(self.levels) - 1

    def state_dict(self) -> dict[str, Any]:
        return {"levels": list(self.levels), "stage": self.stage}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.levels, self.stage = list(state["levels"]), int(state["stage"])


# ----------------------------------------------------------------------------------------------
# Metrics


def _batch_metrics(outputs: Tensor, gt: Tensor, mask: Tensor, rates: Tensor | None,
                   set_size: np.ndarray | None, discrete: bool) -> dict[str, Any]:
    """The metrics of one batch as plain floats (``vwm_metrics`` / ``classification_metrics``).

    VWM: ``{"error", "error_std", "rate", "per_set_size"}``; Discrete: ``{"error",
    "accuracy", "rate"}`` (``rate``: mean rate, None for agents without rates).
    """
    if discrete:
        metrics = losses.classification_metrics(outputs, gt, mask)
        metrics["rate"] = rates.mean().item() if rates is not None else None
    else:
        metrics = losses.vwm_metrics(outputs, gt, mask, rates, set_size)
    return _finite_floats(metrics)


def _finite_floats(tree: Any) -> Any:
    """Floats of a nested dict, with NaN/inf as None (valid JSON, plain YAML)."""
    if isinstance(tree, dict):
        return {key: _finite_floats(value) for key, value in tree.items()}
    if tree is None:
        return None
    value = float(tree)
    return value if math.isfinite(value) else None


def _window_mean(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Leaf-wise mean of nested metric dicts, skipping None (e.g. a set size absent from a batch)."""
    keys = list(dict.fromkeys(key for record in records for key in record))
    out: dict[str, Any] = {}
    for key in keys:
        values = [record[key] for record in records if record.get(key) is not None]
        if values and isinstance(values[0], dict):
            out[key] = _window_mean(values)
        else:
            out[key] = float(np.mean(values)) if values else None
    return out


def _history_record(iteration: int, window: dict[str, Any]) -> dict[str, Any]:
    """History naming: the firing rate is called ``activation`` (the reference's name)."""
    record: dict[str, Any] = {"iteration": iteration}
    for key, value in window.items():
        if key == "per_set_size":
            record[key] = {size: {("activation" if k == "rate" else k): v for k, v in group.items()}
                           for size, group in value.items()}
        else:
            record["activation" if key == "rate" else key] = value
    return record


def _forward(model: nn.Module, ob: Tensor, generator: torch.Generator | None,
             takes_generator: bool, **options: Any) -> tuple[Tensor, Tensor | None]:
    out = model(ob, generator=generator, **options) if takes_generator else model(ob, **options)
    if isinstance(out, tuple):
        return out[0], out[1]
    return out, None


@torch.no_grad()
def evaluate(model: nn.Module, env: Any, tensors: tuple[Tensor, Tensor, Tensor],
             set_size: np.ndarray | None, *, seed: int) -> dict[str, Any]:
    """Metrics of ``model`` on one batch (the run's held-out batch), noise seeded by ``seed``.

    VWM (Box) tasks: ``{"error", "error_std", "rate", "per_set_size": {"1": {"error",
    "error_std", "rate"}, ...}}`` (rad, rad, Hz). Discrete tasks: ``{"error" (1 - accuracy),
    "accuracy", "rate"}``. ``rate`` is None for agents that return no rates.
    """
    ob, gt, mask = tensors
    was_training = model.training
    model.eval()
    generator = _make_generator(ob.device, seed)
    outputs, rates = _forward(model, ob, generator, _takes_generator(model))
    model.train(was_training)
    return _batch_metrics(outputs, gt, mask, rates, set_size, is_discrete(env))


def first_loss_step(batch: Any) -> int:
    """The first time step any loss term can see: the earliest decode start (VWM tasks), else 0.

    Outputs before it never enter the loss (the VWM mask is on the decode epoch only), so the
    trainer lets the agent read them out without drawing noise (``readout_from``).
    """
    decode = (getattr(batch, "epochs", None) or {}).get("decode")
    return int(np.min(decode[:, 0])) if decode is not None and len(decode) else 0


def _takes_generator(model: nn.Module) -> bool:
    return "generator" in inspect.signature(model.forward).parameters


def _make_generator(device: torch.device, seed: int) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


# ----------------------------------------------------------------------------------------------
# The trainer


class _Trainer:
    """Holds the state of one run; :func:`train` is the public entry point."""

    def __init__(self, config: Config, run_dir: Path, device: torch.device, env: Any,
                 model: nn.Module, callback: Callable[[dict], None] | None, progress: bool,
                 compile_mode: str = "off"):
        cfg = config.training
        self.config, self.run_dir, self.device = config, run_dir, device
        self.env, self.callback, self.progress = env, callback, progress
        self.discrete = is_discrete(env)
        self.model = model.to(device)
        self.takes_generator = _takes_generator(model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience
        )
        self.early_stopping = EarlyStopping(cfg.early_stop_patience)
        final_noise = float(config.agent.kwargs.get("spike_noise_factor", _agent_default(
            model, "spike_noise_factor", 0.0)))
        self.curriculum = NoiseCurriculum(noise_levels(final_noise, cfg.noise_stages))
        # Independent streams from one seed: training data, training noise, held-out data/noise.
        data_seed, noise_seed, eval_data_seed, eval_noise_seed = (
            np.random.SeedSequence(cfg.seed).generate_state(4).tolist()
        )
        self.data_rng = np.random.default_rng(data_seed)
        self.noise_generator = _make_generator(device, noise_seed)
        self.eval_noise_seed = eval_noise_seed
        eval_batch = self._sample(cfg.eval_batch_size, np.random.default_rng(eval_data_seed))
        self.eval_tensors = eval_batch[1:]
        self.eval_set_size = eval_batch[0].set_size
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        self.buffer: list[dict[str, Any]] = []  # per-iteration metrics since the last record
        self.best = {"error": math.inf, "iteration": None}
        self.takes_readout_from = "readout_from" in inspect.signature(model.forward).parameters
        self.loss_step = LossStep(self._loss_and_outputs, list(self.model.parameters()),
                                  compile_mode, generators=[self.noise_generator])

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        rng = {
            "torch_cpu": torch.get_rng_state(),
            "noise": self.noise_generator.get_state(),
            "numpy_data": numpy_rng_state(self.data_rng),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "kind": "latest",
            "iteration": self.iteration,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early_stopping": self.early_stopping.state_dict(),
            "curriculum": self.curriculum.state_dict(),
            "best": dict(self.best),
            "rng": rng,
            "history": self.history,
            "buffer": list(self.buffer),
        }

    def load_state_dict(self, payload: dict[str, Any], source: Path) -> None:
        load_model_state(self.model, payload["model"], source)
        try:
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self.early_stopping.load_state_dict(payload["early_stopping"])
            self.curriculum.load_state_dict(payload["curriculum"])
            rng = payload["rng"]
            torch.set_rng_state(rng["torch_cpu"])
            self.noise_generator.set_state(rng["noise"])
            set_numpy_rng_state(self.data_rng, rng["numpy_data"])
            if self.device.type == "cuda" and "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
            self.iteration = int(payload["iteration"])
            self.history = list(payload["history"])
            self.best = dict(payload["best"])
            self.buffer = list(payload["buffer"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{source}: incomplete or inconsistent training state: {exc}") from None
        self._apply_noise_level()

    def _apply_noise_level(self) -> None:
        if self.config.training.noise_stages > 1:
            self.model.set_noise_factor(self.curriculum.level)

    # -- one iteration ----------------------------------------------------------------------
    def _sample(self, batch_size: int, rng: np.random.Generator):
        from vwm_tasks.batch import batch_tensors, collect_batch

        unwrapped = self.env.unwrapped
        if hasattr(unwrapped, "sample_batch"):
            batch = unwrapped.sample_batch(
                batch_size, rng, dense=False,
                balance_set_sizes=self.config.training.balance_set_sizes,
            )
        else:
            batch = collect_batch(self.env, batch_size, rng)  # through the wrappers
        ob, gt, mask = batch_tensors(self.env, batch, self.device)
        return batch, ob, gt, mask

    def _loss(self, outputs: Tensor, rates: Tensor | None, gt: Tensor, mask: Tensor) -> Tensor:
        cfg = self.config.training
        if self.discrete:
            loss = losses.classification_loss(outputs, gt, mask)
        else:
            loss = cfg.lambda_err * losses.vwm_trial_error(outputs, gt, mask, cfg.error_def).mean()
        if rates is not None and cfg.lambda_reg > 0:
            loss = loss + cfg.lambda_reg * losses.activity_penalty(rates)
        return loss

    def _loss_and_outputs(self, ob: Tensor, gt: Tensor, mask: Tensor, readout_from: int = 0):
        options = {"readout_from": readout_from} if readout_from else {}
        outputs, rates = _forward(self.model, ob, self.noise_generator, self.takes_generator,
                                  **options)
        return self._loss(outputs, rates, gt, mask), outputs, rates

    def readout_from(self, batch: Any) -> int:
        """The first step any loss sees, if the agent can skip the readout noise before it."""
        return first_loss_step(batch) if self.takes_readout_from else 0

    def _step(self) -> float:
        batch, ob, gt, mask = self._sample(self.config.training.batch_size, self.data_rng)
        loss, outputs, rates = self.loss_step(ob, gt, mask, readout_from=self.readout_from(batch))
        return self._update(batch, gt, mask, loss, outputs, rates)

    def _update(self, batch: Any, gt: Tensor, mask: Tensor, loss: Tensor, outputs: Tensor,
                rates: Tensor | None) -> float:
        """The rest of an iteration once the gradients are in: checks, step, schedules, metrics."""
        cfg = self.config.training
        # One host sync per iteration, for the scheduler's float and the finiteness check of
        # the loss and all rates together (never per time step).
        loss_finite = torch.isfinite(loss)
        rates_finite = torch.isfinite(rates).all() if rates is not None else loss_finite
        checks = torch.stack([loss.detach(), loss_finite.to(loss.dtype), rates_finite.to(loss.dtype)])
        loss_value, loss_finite, rates_ok = checks.tolist()
        if not (loss_finite and rates_ok):
            what = "rates" if not rates_ok else "loss"
            raise _Diverged(f"non-finite {what} at iteration {self.iteration + 1}")
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        lr_before = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step(loss_value)
        stopped = self.early_stopping.step(loss_value)
        if not self.curriculum.is_final:
            lr_dropped = self.optimizer.param_groups[0]["lr"] < lr_before
            if lr_dropped or stopped:
                self._advance_curriculum(lr_before)
        if hasattr(self.model, "apply_constraints"):
            self.model.apply_constraints()
        metrics = _batch_metrics(outputs.detach(), gt, mask,
                                 rates.detach() if rates is not None else None,
                                 batch.set_size, self.discrete)
        self.buffer.append({"loss": loss_value, **metrics})
        self.iteration += 1
        return loss_value

    def _advance_curriculum(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.scheduler.best = self.scheduler.mode_worse
        self.scheduler.num_bad_epochs = 0
        self.early_stopping.restart()
        self.curriculum.stage += 1
        self.best = {"error": math.inf, "iteration": None}
        self._apply_noise_level()

    # -- logging ----------------------------------------------------------------------------
    def _log(self) -> dict[str, Any]:
        # The mean over every iteration since the last record, for the per-set-size values as
        # well (the reference cleared its per-group buffers only when they grew past one period,
        # so its group values averaged windows of 50, 51 or 100 iterations).
        record = _history_record(self.iteration, _window_mean(self.buffer))
        self.buffer = []
        record["lr"] = float(self.optimizer.param_groups[0]["lr"])
        if self.config.training.noise_stages > 1:
            record["noise_factor"] = self.curriculum.level
        heldout = evaluate(self.model, self.env, self.eval_tensors, self.eval_set_size,
                           seed=self.eval_noise_seed)
        record["heldout_error"] = heldout["error"]
        if heldout["error"] is not None and heldout["error"] < self.best["error"]:
            self.best = {"error": heldout["error"], "iteration": self.iteration}
            self._save_best()
        self.history.append(record)
        append_history(self.run_dir, record)
        if self.callback is not None:
            self.callback(record)
        return record

    def _save_best(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT_DIR / "best.pt", {
            "kind": "best",
            "iteration": self.iteration,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "heldout_error": self.best["error"],
        })

    def save_latest(self) -> None:
        save_checkpoint(self.run_dir / CHECKPOINT_DIR / "latest.pt", self.state_dict())

    def finish(self) -> None:
        """metrics.json from the best checkpoint (``latest`` if none) and the history plot."""
        import json

        from vwm_agents.plotting import plot_training_history

        best_path = self.run_dir / CHECKPOINT_DIR / "best.pt"
        model, which, iteration = self.model, "latest", self.iteration
        if best_path.exists():
            payload = load_checkpoint(best_path, kind="best", map_location=self.device)
            model = build_model(self.config, self.env).to(self.device)
            load_model_state(model, payload["model"], best_path)
            self._sync_noise_level(model)
            which, iteration = "best", int(payload["iteration"])
        metrics = evaluate(model, self.env, self.eval_tensors, self.eval_set_size,
                           seed=self.eval_noise_seed)
        metrics.update({"iteration": iteration, "checkpoint": which,
                        "eval_batch_size": self.config.training.eval_batch_size})
        atomic_write_text(self.run_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
        if self.history:
            plot_training_history(self.history, self.run_dir / PLOT_FILE)

    def _sync_noise_level(self, model: nn.Module) -> None:
        if self.config.training.noise_stages > 1:
            model.set_noise_factor(self.curriculum.level)

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        cfg, log_cfg = self.config.training, self.config.logging
        checkpoint_period = cfg.checkpoint_period or log_cfg.period
        interrupted = threading.Event()
        bar = tqdm(total=cfg.num_iterations, initial=self.iteration, disable=not self.progress,
                   dynamic_ncols=True, desc=self.run_dir.name)
        try:
            with _deferred_sigint(interrupted):
                while (self.iteration < cfg.num_iterations and not self.early_stopping.stopped
                       and not interrupted.is_set()):
                    try:
                        self._step()
                    except _Diverged as exc:
                        self._diverged(str(exc))
                    bar.update(1)
                    record = self.after_iteration(checkpoint_period)
                    if record is not None:
                        bar.set_postfix(_postfix(record, self.early_stopping), refresh=False)
        finally:
            bar.close()
        self.wrap_up(interrupted.is_set())
        if interrupted.is_set():
            raise TrainingInterrupted(
                f"interrupted after iteration {self.iteration}; checkpoint saved in "
                f"{self.run_dir / CHECKPOINT_DIR}; continue with --resume",
                self.run_dir, self.iteration,
            )

    @property
    def done(self) -> bool:
        return self.iteration >= self.config.training.num_iterations or self.early_stopping.stopped

    def after_iteration(self, checkpoint_period: int) -> dict[str, Any] | None:
        """Log and checkpoint on their periods; returns the history record if one was written."""
        record = self._log() if self.iteration % self.config.logging.period == 0 else None
        if self.iteration % checkpoint_period == 0:
            self.save_latest()
        return record

    def wrap_up(self, interrupted: bool) -> None:
        """Record the iterations since the last logging step, save, and (unless interrupted)
        write metrics.json and the history plot."""
        if self.buffer and not interrupted:  # the run ended between two logging steps
            self._log()
        self.save_latest()
        if not interrupted:
            self.finish()

    def _diverged(self, reason: str) -> None:
        latest = self.run_dir / CHECKPOINT_DIR / "latest.pt"
        kept = (f"the last good checkpoint ({latest}) is kept" if latest.exists()
                else "no checkpoint was written yet")
        self.buffer = []
        if (self.run_dir / CHECKPOINT_DIR / "best.pt").exists():
            self.finish()
        raise TrainingDiverged(
            f"training diverged: {reason}; {kept}; try a lower training.learning_rate or set "
            "training.grad_clip", self.run_dir, self.iteration + 1,
        )


class _Diverged(Exception):
    pass


def _postfix(record: dict[str, Any], early_stopping: EarlyStopping) -> dict[str, str]:
    def fmt(x: Any) -> str:
        return "nan" if x is None else f"{x:.3g}"

    return {"error": fmt(record.get("error")), "rate": fmt(record.get("activation")),
            "lr": f"{record['lr']:.2g}", "patience": str(early_stopping.counter)}


class _deferred_sigint:
    """Turn Ctrl-C into a flag checked between iterations, so the saved state is consistent.

    Only in the main thread (signal handlers cannot be installed elsewhere); a second Ctrl-C
    interrupts at once.
    """

    def __init__(self, flag: threading.Event):
        self.flag = flag
        self.previous = None

    def _handle(self, signum, frame):
        if self.flag.is_set():
            raise KeyboardInterrupt
        self.flag.set()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def _agent_default(model: nn.Module, name: str, fallback: Any) -> Any:
    parameter = inspect.signature(type(model).__init__).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return fallback
    return parameter.default


# ----------------------------------------------------------------------------------------------
# Entry point


def train(
    config: Config,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    device: str | None = None,
    callback: Callable[[dict], None] | None = None,
    progress: bool | None = None,
) -> Path:
    """Train ``config``'s agent on its task and return the run directory.

    Args:
        out_dir: where run directories go; None: ``logging.out_dir``.
        resume: continue the run in ``out_dir/run_name(config)`` from ``checkpoints/latest.pt``
            exactly (the config may differ only in ``RESUMABLE_CHANGES``, e.g. more iterations).
            Without ``resume`` an existing run directory with a checkpoint is an error.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:<i>``; None: ``training.device``.
        callback: called with each history record (a dict) at every logging step.
        progress: show the tqdm bar; None: ``logging.progress``.

    Everything that can be wrong with the config is checked (env and model are built) before
    anything is written.

    Raises:
        ConfigError: bad config (nothing written).
        RunDirError: the run directory exists without ``resume``, or ``resume`` finds no
            checkpoint / a different config.
        CheckpointError: ``latest.pt`` is truncated, foreign or does not fit the config.
        TrainingDiverged: non-finite loss or rates (the last good checkpoint is kept).
        TrainingInterrupted: Ctrl-C (a checkpoint was saved).
    """
    if device is not None or progress is not None or out_dir is not None:
        overrides = config.to_dict()
        if device is not None:
            overrides["training"]["device"] = device
        if progress is not None:
            overrides["logging"]["progress"] = bool(progress)
        if out_dir is not None:
            overrides["logging"]["out_dir"] = str(out_dir)
        config = Config.from_dict(overrides)
    cfg = config.training
    torch_device = resolve_device(cfg.device)
    compile_mode = resolve_compile_mode(cfg.compile, torch_device)  # warns and falls back on CPU
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    env = make_env(config)
    model = build_model(config, env)
    if cfg.noise_stages > 1:
        if not hasattr(model, "set_noise_factor"):
            raise ConfigError(
                f"training.noise_stages: agent {config.agent.name} has no set_noise_factor, must be 1"
            )
        final = float(config.agent.kwargs.get("spike_noise_factor",
                                              _agent_default(model, "spike_noise_factor", 0.0)))
        if final <= 1e-3:
            raise ConfigError(
                f"training.noise_stages: a curriculum needs agent.spike_noise_factor > 0.001, got {final}"
            )
    run_dir = Path(config.logging.out_dir) / run_name(config)
    if cfg.num_models > 1:
        _train_ensemble(config, run_dir, torch_device, compile_mode, resume, callback)
        return run_dir
    latest = run_dir / CHECKPOINT_DIR / "latest.pt"
    if resume:
        payload = _resume_payload(run_dir, latest, config)
    elif latest.exists() or (run_dir / CONFIG_FILE).exists():
        raise RunDirError(
            f"{run_dir}: a run of this name exists; continue it with --resume or choose another "
            "logging.run_name / --out"
        )
    trainer = _Trainer(config, run_dir, torch_device, env, model, callback, config.logging.progress,
                       compile_mode)
    if resume:
        trainer.load_state_dict(payload, latest)
    else:
        trainer._apply_noise_level()
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, config.to_yaml())
    truncate_history(run_dir, trainer.iteration)
    trainer.run()
    return run_dir


# ----------------------------------------------------------------------------------------------
# Ensembles


def member_config(config: Config, index: int) -> Config:
    """The single-run config of ensemble member ``index``: seed + index, one model."""
    data = config.to_dict()
    data["training"]["seed"] = config.training.seed + index
    data["training"]["num_models"] = 1
    return Config.from_dict(data)


def member_dir(run_dir: Path, config: Config) -> Path:
    """``runs/<name>/seed_<s>/`` of a member (``config``: the member's own config)."""
    return run_dir / f"seed_{config.training.seed}"


class _EnsembleTrainer:
    """S :class:`_Trainer` members sharing one stacked forward + backward per iteration.

    Everything but the forward/backward pass is the members' own (their ``_update``, logging,
    checkpoints and wrap-up), so a member's run directory is that of a single run. A member that
    early-stops, reaches ``num_iterations`` or diverges leaves the stack; batches of different
    shapes (padded neurogym trials) are run member by member for that iteration.
    """

    def __init__(self, members: list[_Trainer], compile_mode: str):
        self.members = members
        self.compile_mode = compile_mode
        self._stack: tuple[tuple[int, ...], LossStep] | None = None
        self.failures: list[TrainingDiverged] = []

    def _loss_step(self, active: list[_Trainer]) -> LossStep:
        key = tuple(id(member) for member in active)
        if self._stack is None or self._stack[0] != key:  # members left: a new stack
            models = [member.model for member in active]
            generators = [member.noise_generator for member in active]

            def stacked(ob: Tensor, gt: Tensor, mask: Tensor, readout_from: int = 0):
                outputs, rates = ensemble_forward(models, ob, generators=generators,
                                                  readout_from=readout_from)
                # Each member's own loss on its slice: the sum backpropagates each member's
                # gradient unchanged (d sum / d loss_s = 1).
                member_losses = torch.stack([
                    member._loss(outputs[s], None if rates is None else rates[s], gt[s], mask[s])
                    for s, member in enumerate(active)
                ])
                return member_losses.sum(), outputs, rates, member_losses

            params = [p for model in models for p in model.parameters()]
            self._stack = (key, LossStep(stacked, params, self.compile_mode, generators=generators))
        return self._stack[1]

    def _iteration(self, active: list[_Trainer], checkpoint_period: int) -> None:
        samples = [m._sample(m.config.training.batch_size, m.data_rng) for m in active]
        shapes = {tuple(tuple(x.shape) for x in sample[1:]) for sample in samples}
        if len(shapes) == 1:
            ob, gt, mask = (torch.stack([sample[i] for sample in samples]) for i in (1, 2, 3))
            readout_from = min(m.readout_from(sample[0]) for m, sample in zip(active, samples, strict=True))
            _, outputs, rates, member_losses = self._loss_step(active)(
                ob, gt, mask, readout_from=readout_from)
            results = [(member_losses[s], outputs[s], None if rates is None else rates[s])
                       for s in range(len(active))]
        else:
            results = [m.loss_step(*sample[1:], readout_from=m.readout_from(sample[0]))
                       for m, sample in zip(active, samples, strict=True)]
        for member, sample, (loss, outputs, rates) in zip(active, samples, results, strict=True):
            batch, _, gt, mask = sample
            try:
                member._update(batch, gt, mask, loss, outputs, rates)
            except _Diverged as exc:
                try:
                    member._diverged(str(exc))
                except TrainingDiverged as failure:
                    self.failures.append(failure)
                continue
            member.after_iteration(checkpoint_period)

    def run(self) -> None:
        cfg, log_cfg = self.members[0].config.training, self.members[0].config.logging
        checkpoint_period = cfg.checkpoint_period or log_cfg.period
        interrupted = threading.Event()
        failed: set[Path] = set()
        active = [m for m in self.members if not m.done]
        bar = tqdm(total=cfg.num_iterations, initial=min(m.iteration for m in self.members),
                   disable=not log_cfg.progress, dynamic_ncols=True,
                   desc=f"{self.members[0].run_dir.parent.name} x{len(self.members)}")
        try:
            with _deferred_sigint(interrupted):
                while active and not interrupted.is_set():
                    self._iteration(active, checkpoint_period)
                    failed = {failure.run_dir for failure in self.failures}
                    active = [m for m in active if not m.done and m.run_dir not in failed]
                    bar.update(1)
                    bar.set_postfix({"models": len(active)}, refresh=False)
        finally:
            bar.close()
        for member in self.members:
            if member.run_dir not in failed:
                member.wrap_up(interrupted.is_set())
        run_dir = self.members[0].run_dir.parent
        if interrupted.is_set():
            raise TrainingInterrupted(
                f"interrupted; checkpoints of all {len(self.members)} members saved in "
                f"{run_dir}/seed_*/{CHECKPOINT_DIR}; continue with --resume",
                run_dir, max(m.iteration for m in self.members),
            )
        if self.failures:
            first = self.failures[0]
            raise TrainingDiverged(
                f"{len(self.failures)} of {len(self.members)} ensemble members diverged; the "
                f"others finished. First: {first}", first.run_dir, first.iteration,
            )


def _train_ensemble(config: Config, run_dir: Path, device: torch.device, compile_mode: str,
                    resume: bool, callback: Callable[[dict], None] | None) -> None:
    configs = [member_config(config, index) for index in range(config.training.num_models)]
    dirs = [member_dir(run_dir, member) for member in configs]
    payloads: list[dict[str, Any] | None] = [None] * len(configs)
    if resume:
        if not run_dir.is_dir():
            raise RunDirError(f"{run_dir}: nothing to resume (no such run directory)")
        saved = (run_dir / CONFIG_FILE).read_text() if (run_dir / CONFIG_FILE).exists() else None
        if saved is None:
            raise RunDirError(f"{run_dir}: nothing to resume (no {CONFIG_FILE})")
        payloads = [_resume_payload(d, d / CHECKPOINT_DIR / "latest.pt", c)
                    for d, c in zip(dirs, configs, strict=True)]
    elif (run_dir / CONFIG_FILE).exists() or any((d / CONFIG_FILE).exists() for d in dirs):
        raise RunDirError(
            f"{run_dir}: a run of this name exists; continue it with --resume or choose another "
            "logging.run_name / --out"
        )
    members = []
    for member_cfg, directory, payload in zip(configs, dirs, payloads, strict=True):
        env = make_env(member_cfg)
        trainer = _Trainer(member_cfg, directory, device, env, build_model(member_cfg, env),
                           callback, progress=False, compile_mode="off")
        if payload is not None:
            trainer.load_state_dict(payload, directory / CHECKPOINT_DIR / "latest.pt")
        else:
            trainer._apply_noise_level()
        members.append(trainer)
    for trainer in members:
        (trainer.run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        truncate_history(trainer.run_dir, trainer.iteration)
        atomic_write_text(trainer.run_dir / CONFIG_FILE, trainer.config.to_yaml())
    atomic_write_text(run_dir / CONFIG_FILE, config.to_yaml())
    _EnsembleTrainer(members, compile_mode).run()


def _resume_payload(run_dir: Path, latest: Path, config: Config) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: nothing to resume (no such run directory)")
    if not latest.exists():
        raise RunDirError(f"{run_dir}: nothing to resume (no {CHECKPOINT_DIR}/latest.pt)")
    payload = load_checkpoint(latest, kind="latest")
    saved = Config.from_dict(payload["config"]).to_dict()
    difference = _first_difference(saved, config.to_dict())
    if difference is not None:
        raise RunDirError(
            f"{run_dir}: cannot resume with a different {difference} than the run was started "
            f"with (only {', '.join(RESUMABLE_CHANGES)} may change)"
        )
    return payload


def _first_difference(saved: dict, current: dict, prefix: str = "") -> str | None:
    for key in sorted(set(saved) | set(current)):
        name = f"{prefix}{key}"
        if name in RESUMABLE_CHANGES:
            continue
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _first_difference(a, b, name + ".")
            if found is not None:
                return found
        elif a != b:
            return name
    return None

"""Task-generic performance: how well a model does the task it was trained on, per trial condition.

Works on any neurogym task, from the env's own trials (``vwm_tasks.batch.collect_batch``: the
env's ``new_trial`` or its vectorised sampler) and the env's own epoch boundaries and ground truth:

* **Discrete actions** (e.g. ``DelayMatchSample-v0``): the score is accuracy. Per step, the
  model's action is the argmax of its outputs; per trial, its *choice* is the most frequent action
  over the response epoch (``decision`` when the task has one, else each trial's last epoch), and
  the trial is correct when the choice equals the ground truth there. ``chance`` is one over the
  number of distinct correct answers.
* **Continuous actions** (e.g. ``VWMRecall-v0``): the score is the mean squared error between
  outputs and ground truth over the steps the task scores (its mask); lower is better, and the
  task's own analyses (``errors``, ``mixture``) say more.

Results per epoch (per-step score within each epoch) and per trial condition: each scalar entry
of the trial dicts with at most :data:`MAX_LEVELS` distinct values (e.g. ``ground_truth``), or the
set size for VWM tasks; each condition's score comes with its SE over trials (``se``, None for a
single trial) and its trial count (``n``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.core.tasks import task_name

__all__ = ["MAX_LEVELS", "PerformanceResult", "performance", "run", "unavailable"]

MAX_LEVELS = 16
"""Trial variables with more distinct values than this are not conditions (e.g. angles)."""


@dataclass
class PerformanceResult:
    """``to_dict()`` is the ``performance.json`` schema."""

    task: str
    metric: str  # "accuracy" (higher is better) or "mse" (lower is better)
    score: float
    n_trials: int
    response_epoch: str | None
    by_epoch: dict[str, float | None]
    by_condition: dict[str, dict[str, dict[str, float]]]
    chance: float | None = None
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def metric_label(self) -> str:
        return "accuracy" if self.metric == "accuracy" else "MSE"

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metric": self.metric,
            "score": self.score,
            "chance": self.chance,
            "n_trials": self.n_trials,
            "seed": self.seed,
            "response_epoch": self.response_epoch,
            "by_epoch": self.by_epoch,
            "by_condition": self.by_condition,
            "notes": self.notes,
        }


def _outputs(model, ob):
    import torch

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.as_tensor(ob, dtype=torch.float32, device=device))
    finally:
        model.train(was_training)
    outputs = out[0] if isinstance(out, tuple) else out
    return outputs.float().cpu().numpy()


def _epoch_masks(batch) -> dict[str, np.ndarray]:
    steps = np.arange(batch.n_steps)
    return {
        name: (steps >= b[:, :1]) & (steps < b[:, 1:]) & batch.valid
        for name, b in batch.epochs.items()
    }


def _conditions(batch) -> dict[str, np.ndarray]:
    """Condition name -> (B,) labels (strings), from the trial dicts or the VWM set size."""
    out = {}
    if batch.trials:
        keys = dict.fromkeys(k for trial in batch.trials for k in trial)
        for key in keys:
            values = [trial.get(key) for trial in batch.trials]
            if not all(np.ndim(v) == 0 and v is not None for v in values):
                continue
            labels = np.array([str(v.item() if hasattr(v, "item") else v) for v in values])
            if len(set(labels.tolist())) <= MAX_LEVELS:
                out[key] = labels
    elif batch.set_size is not None:
        out["set_size"] = batch.set_size.astype(str)
    return out


def _by_condition(score: np.ndarray, conditions: dict[str, np.ndarray]) -> dict:
    def order(label: str):
        try:
            return (0, float(label), label)
        except ValueError:
            return (1, 0.0, label)

    def group(values: np.ndarray) -> dict[str, float | int | None]:
        values = values[np.isfinite(values)]
        se = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else None
        return {"score": float(values.mean()), "se": se, "n": int(values.size)}

    return {
        name: {
            label: group(score[labels == label])
            for label in sorted(set(labels.tolist()), key=order)
        }
        for name, labels in conditions.items()
    }


def performance(model, env, *, n_trials: int = 500, seed: int = 0) -> PerformanceResult:
    """Score ``model`` on ``n_trials`` of ``env``'s own trials (see the module doc)."""
    from vwm_tasks.batch import collect_batch

    if n_trials < 1:
        raise ValueError(f"n_trials: must be >= 1, got {n_trials}")
    batch = collect_batch(env, n_trials, np.random.default_rng(seed))
    outputs = _outputs(model, batch.ob)
    masks = _epoch_masks(batch)
    conditions = _conditions(batch)
    notes = []
    if batch.gt.dtype.kind in "iu":  # Discrete actions: class labels
        action = outputs.argmax(-1)
        correct = (action == batch.gt) & batch.valid
        by_epoch = {
            name: float(correct[m].mean()) if m.any() else None for name, m in masks.items()
        }
        response = "decision" if "decision" in masks else None
        if response is None:  # each trial's last non-empty epoch
            last = np.stack([b[:, 1] for b in batch.epochs.values()], 1)
            lengths = np.stack([b[:, 1] - b[:, 0] for b in batch.epochs.values()], 1)
            last = np.where(lengths > 0, last, -1).argmax(1)
            names = list(batch.epochs)
            window = np.stack([masks[names[j]][i] for i, j in enumerate(last)])
            notes.append("response epoch: each trial's last epoch (the task has no 'decision')")
        else:
            window = masks[response]
        choice = np.array(
            [
                Counter(action[i][window[i]].tolist()).most_common(1)[0][0]
                if window[i].any()
                else -1
                for i in range(batch.batch_size)
            ]
        )
        truth = np.array(
            [batch.gt[i][window[i]][-1] if window[i].any() else -2 for i in range(batch.batch_size)]
        )
        trial_score = (choice == truth).astype(float)
        answers = set(truth[truth >= 0].tolist())
        return PerformanceResult(
            task=task_name(env),
            metric="accuracy",
            score=float(trial_score.mean()),
            n_trials=batch.batch_size,
            response_epoch=response or "last epoch",
            by_epoch=by_epoch,
            by_condition=_by_condition(trial_score, conditions),
            chance=1.0 / len(answers) if answers else None,
            seed=seed,
            notes=notes,
        )
    # Box actions: squared error over the steps the task scores
    weight = batch.mask.astype(float)
    squared = (outputs - batch.gt) ** 2 * weight
    per_step = squared.sum(-1) / np.maximum(weight.sum(-1), 1)  # (B, T)
    scored = weight.sum(-1) > 0
    by_epoch = {
        name: float(per_step[m & scored].mean()) if (m & scored).any() else None
        for name, m in masks.items()
    }
    trial_score = np.array(
        [
            per_step[i][scored[i]].mean() if scored[i].any() else np.nan
            for i in range(batch.batch_size)
        ]
    )
    return PerformanceResult(
        task=task_name(env),
        metric="mse",
        score=float(np.nanmean(trial_score)),
        n_trials=batch.batch_size,
        response_epoch=None,
        by_epoch=by_epoch,
        by_condition=_by_condition(trial_score, conditions),
        seed=seed,
        notes=["mean squared error of the outputs on the steps the task scores (its mask)"],
    )


def unavailable(model, env) -> str | None:
    """Every task with neurogym's trial interface is scored; others are named."""
    base = getattr(env, "unwrapped", env)
    if hasattr(base, "sample_batch") or hasattr(base, "new_trial"):
        return None
    return f"needs a neurogym task (new_trial); this run trained {task_name(env)}"


def run(model, env, *, n_trials: int, seed: int) -> PerformanceResult:
    """The ``performance`` analysis: :func:`performance` on ``n_trials`` trials."""
    return performance(model, env, n_trials=n_trials, seed=seed)

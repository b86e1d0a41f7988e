"""Divisive normalisation: sublinear summation of items and flat activity against load
(original_model.md sections 6.4 and 7.3).

1. Sublinear summation: for each trial, the decode-window mean rates with an item in slot 0
   alone (r1), in slot 1 alone (r2) and in both (r12, same angles) are related by a
   least-squares fit across neurons, r12 ~ w1 r1 + w2 r2. Weights below 1 (the "DN region"
   0 <= w1, w2 <= 1) mean each item's response is divided down by the other's presence.
2. Input against activity: the mean external input B u over the stimulus epoch grows linearly
   with set size (the encoding scales by K, not by n), while normalisation keeps the mean rate
   nearly flat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from analysis.neural_trials import forced_trials, simulate

__all__ = ["dn_weights", "DNResult", "run", "plot"]


def dn_weights(r1: np.ndarray, r2: np.ndarray, r12: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-trial least-squares weights of ``r12 ~ w1 r1 + w2 r2`` across neurons.

    Args:
        r1, r2, r12: (trials, N) responses (or (N,) for one trial).

    Returns:
        w1, w2: (trials,) (or scalars); nan where r1 and r2 are collinear.
    """
    r1, r2, r12 = (np.asarray(a, dtype=float) for a in (r1, r2, r12))
    if not r1.shape == r2.shape == r12.shape:
        raise ValueError(f"r1, r2, r12 must have the same shape, got {r1.shape}, {r2.shape}, {r12.shape}")
    a11, a12, a22 = (r1 * r1).sum(-1), (r1 * r2).sum(-1), (r2 * r2).sum(-1)
    b1, b2 = (r1 * r12).sum(-1), (r2 * r12).sum(-1)
    det = a11 * a22 - a12**2
    singular = det <= 1e-12 * np.maximum(a11 * a22, np.finfo(float).tiny)
    det = np.where(singular, np.nan, det)
    return (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det


@dataclass
class DNResult:
    """Summation weights per trial, and mean input and rate per set size."""

    w1: np.ndarray
    w2: np.ndarray
    set_sizes: list[int]
    mean_input: list[float]
    """mean over neurons, trials and stimulus steps of B u (the drive before phi)."""
    mean_rate_stimulus: list[float]
    mean_rate_decode: list[float]
    n_trials: int
    slopes: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        ok = np.isfinite(self.w1) & np.isfinite(self.w2)
        w1, w2 = self.w1[ok], self.w2[ok]
        in_region = (w1 >= 0) & (w1 <= 1) & (w2 >= 0) & (w2 <= 1)
        return {
            "n_trials": self.n_trials,
            "summation": {
                "w1": [float(v) for v in w1],
                "w2": [float(v) for v in w2],
                "w1_mean": float(w1.mean()) if w1.size else None,
                "w2_mean": float(w2.mean()) if w2.size else None,
                "w_sum_mean": float((w1 + w2).mean()) if w1.size else None,
                "w_sum_se": float((w1 + w2).std(ddof=1) / np.sqrt(w1.size)) if w1.size > 1 else None,
                "fraction_in_dn_region": float(in_region.mean()) if w1.size else None,
                "n_singular": int((~ok).sum()),
            },
            "load": {
                "set_sizes": self.set_sizes,
                "mean_input": self.mean_input,
                "mean_rate_stimulus": self.mean_rate_stimulus,
                "mean_rate_decode": self.mean_rate_decode,
                "slope_per_item": self.slopes,
            },
        }


def _slope(x, y) -> float:
    return float(np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)[0]) if len(x) > 1 else float("nan")


@torch.no_grad()
def run(
    model: torch.nn.Module,
    env,
    *,
    n_trials: int = 100,
    seed: int = 0,
    set_sizes: list[int] | None = None,
    slots: tuple[int, int] = (0, 1),
) -> DNResult:
    """Summation weights over ``n_trials`` angle draws, and input/rate for each set size.

    Input (ILC) noise is the env's, drawn separately in each condition as in the reference;
    spiking noise is on.
    """
    task = env.unwrapped
    k = int(task.max_items)
    if k < 2:
        raise ValueError("the normalisation analysis needs max_items >= 2")
    a, b = slots
    if a == b or not (0 <= a < k and 0 <= b < k):
        raise ValueError(f"slots must be two different slots in [0, {k - 1}], got {slots!r}")
    sizes = list(range(1, k + 1)) if set_sizes is None else [int(n) for n in set_sizes]
    if not sizes or any(n < 1 or n > k for n in sizes):
        raise ValueError(f"set_sizes must be integers in [1, {k}], got {set_sizes!r}")
    rng = np.random.default_rng(seed)

    theta = rng.uniform(-np.pi, np.pi, (n_trials, k))
    means = []
    for present in ([a], [b], [a, b]):
        presence = np.zeros((n_trials, k), bool)
        presence[:, present] = True
        trials = forced_trials(env, theta, presence, rng=rng)
        rates = simulate(model, trials, noise=True, seed=seed + len(means)).rates.double().numpy()
        means.append(trials.epoch_mean(rates, "decode"))
    w1, w2 = dn_weights(*means)

    mean_input, rate_stim, rate_decode = [], [], []
    weights = model.input_weights.detach().double().cpu().numpy()
    for n in sizes:
        theta = rng.uniform(-np.pi, np.pi, (n_trials, k))
        order = np.argsort(rng.random((n_trials, k)), axis=1)
        presence = np.zeros((n_trials, k), bool)
        np.put_along_axis(presence, order[:, :n], True, axis=1)
        trials = forced_trials(env, theta, presence, rng=rng)
        rates = simulate(model, trials, noise=True, seed=seed + 10 + n).rates.double().numpy()
        drive = trials.ob.double().numpy() @ weights.T
        mean_input.append(float(trials.epoch_mean(drive, "stimulus").mean()))
        rate_stim.append(float(trials.epoch_mean(rates, "stimulus").mean()))
        rate_decode.append(float(trials.epoch_mean(rates, "decode").mean()))
    slopes = {
        "mean_input": _slope(sizes, mean_input),
        "mean_rate_stimulus": _slope(sizes, rate_stim),
        "mean_rate_decode": _slope(sizes, rate_decode),
    }
    return DNResult(w1, w2, sizes, mean_input, rate_stim, rate_decode, n_trials, slopes)


def plot(result: DNResult, out_dir: Path) -> list[Path]:
    """The (w1, w2) scatter over the DN region, and mean input and rate against set size."""
    from analysis.plotting_neural import plot_dn

    return plot_dn(result, Path(out_dir))

"""Recall errors: per-set-size statistics, and the errors a trained model makes on its task.

``error_statistics`` works on any errors (a model's, people's); ``model_errors`` runs a model on
its env (original_model.md section 6.3: trials sampled as in training, ILC noise and spiking
noise included, no gradients) and returns every reported item's error together with the errors
relative to the other items shown (the non-targets the swap model needs).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from analysis import circstats

__all__ = [
    "SetSizeErrorStats",
    "ErrorStatistics",
    "ModelErrors",
    "ErrorsResult",
    "error_statistics",
    "model_errors",
    "run",
    "plot",
]

HISTOGRAM_BINS = 60


@dataclass(frozen=True)
class SetSizeErrorStats:
    """Error statistics at one set size (radians on the full circle)."""

    set_size: int
    n: int
    mae: float
    circular_variance: float  # -2 ln R, the squared circular SD
    circular_sd: float
    circular_kurtosis: float
    excess_kurtosis: float  # kurtosis minus that of a von Mises with the same R

    def to_dict(self) -> dict[str, float]:
        return {"n": self.n, "mae": self.mae, "circular_variance": self.circular_variance,
                "circular_sd": self.circular_sd, "circular_kurtosis": self.circular_kurtosis,
                "excess_kurtosis": self.excess_kurtosis}


@dataclass(frozen=True)
class ErrorStatistics:
    """:class:`SetSizeErrorStats` for each set size."""

    per_set_size: dict[int, SetSizeErrorStats]

    @property
    def set_sizes(self) -> list[int]:
        return sorted(self.per_set_size)

    def column(self, name: str) -> np.ndarray:
        """One statistic across set sizes, e.g. ``column("mae")``."""
        return np.array([getattr(self.per_set_size[n], name) for n in self.set_sizes], float)

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {str(n): self.per_set_size[n].to_dict() for n in self.set_sizes}


def error_statistics(errors, set_size) -> ErrorStatistics:
    """MAE, circular variance (-2 ln R), circular SD and kurtosis for each set size.

    Args:
        errors: (n,) response - target in radians (wrapped here).
        set_size: (n,) set size of each error, or one int for all of them.
    """
    errors = np.asarray(errors, dtype=float).ravel()
    set_size = np.broadcast_to(np.asarray(set_size), errors.shape) if np.ndim(set_size) == 0 \
        else np.asarray(set_size).ravel()
    if set_size.shape != errors.shape:
        raise ValueError(f"set_size: expected shape {errors.shape}, got {set_size.shape}")
    if errors.size == 0 or not np.all(np.isfinite(errors)):
        raise ValueError("errors: need a non-empty array of finite angles (radians)")
    per_set_size = {}
    for n in np.unique(set_size):
        x = circstats.wrap_angle(errors[set_size == n])
        per_set_size[int(n)] = SetSizeErrorStats(
            set_size=int(n), n=int(x.size),
            mae=float(circstats.mean_absolute_error(x)),
            circular_variance=float(circstats.circular_variance(x)),
            circular_sd=float(circstats.circular_sd(x)),
            circular_kurtosis=float(circstats.circular_kurtosis(x)),
            excess_kurtosis=float(circstats.excess_circular_kurtosis(x)),
        )
    return ErrorStatistics(per_set_size)


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
    """

    errors: np.ndarray
    set_size: np.ndarray
    nontarget_errors: np.ndarray
    response: np.ndarray
    target: np.ndarray


def _select(batch, rows: np.ndarray):
    """The compact sub-batch of ``rows`` (trial parameters and epoch bounds only)."""
    return replace(
        batch, ob=None, gt=None, mask=None, valid=batch.valid[rows],
        epochs={name: bounds[rows] for name, bounds in batch.epochs.items()},
        theta=batch.theta[rows], theta_input=batch.theta_input[rows],
        presence=batch.presence[rows], set_size=batch.set_size[rows], probe=batch.probe[rows],
        trials=None,
    )


def model_errors(model, env, n_trials: int = 1000, set_sizes=None, seed: int = 0, *,
                 batch_size: int = 250, device: Any = None) -> ModelErrors:
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
    import torch

    from vwm_agents.losses import decoded_angles
    from vwm_tasks.batch import batch_tensors

    base = getattr(env, "unwrapped", env)
    available = [int(n) for n in np.asarray(base.set_sizes)]
    wanted = available if set_sizes is None else sorted({int(n) for n in set_sizes})
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise ValueError(f"set_sizes: {missing} not among the env's set sizes {available}")
    if n_trials < 1:
        raise ValueError(f"n_trials: must be >= 1, got {n_trials}")
    batch = base.sample_batch(n_trials * len(available), np.random.default_rng(seed),
                              dense=False, balance_set_sizes=True)
    batch = _select(batch, np.flatnonzero(np.isin(batch.set_size, wanted)))
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))

    responses = []
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, batch.batch_size, batch_size):
                chunk = _select(batch, np.arange(start, min(start + batch_size, batch.batch_size)))
                ob, _, mask = batch_tensors(base, chunk, device)
                out = model(ob)
                outputs = out[0] if isinstance(out, tuple) else out
                responses.append(decoded_angles(outputs, mask).cpu().numpy())
    finally:
        model.train(was_training)
    return _item_errors(batch, np.concatenate(responses, axis=0))


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
    return ModelErrors(errors=circstats.angular_difference(resp, target),
                       set_size=batch.set_size[trial], nontarget_errors=nontarget,
                       response=resp, target=target)


@dataclass
class ErrorsResult:
    """The ``errors`` analysis of a model: statistics plus the errors (kept for the figures)."""

    statistics: ErrorStatistics
    n_trials: int
    seed: int
    data: ModelErrors | None = field(default=None, repr=False)

    def histogram(self, bins: int = HISTOGRAM_BINS) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Bin edges on [-pi, pi] and the error density per set size."""
        edges = np.linspace(-np.pi, np.pi, bins + 1)
        if self.data is None:
            return edges, {}
        return edges, {n: np.histogram(self.data.errors[self.data.set_size == n], edges,
                                       density=True)[0]
                       for n in self.statistics.set_sizes}

    def to_dict(self) -> dict:
        edges, density = self.histogram()
        return {"n_trials_per_set_size": self.n_trials, "seed": self.seed,
                "per_set_size": self.statistics.to_dict(),
                "histogram": {"edges": edges.tolist(),
                              "density": {str(n): d.tolist() for n, d in density.items()}}}


def run(model, env, *, n_trials: int, seed: int) -> ErrorsResult:
    """The ``errors`` analysis: :func:`model_errors` then :func:`error_statistics`."""
    data = model_errors(model, env, n_trials=n_trials, seed=seed)
    return ErrorsResult(statistics=error_statistics(data.errors, data.set_size),
                        n_trials=n_trials, seed=seed, data=data)


def plot(result: ErrorsResult, out_dir: Path) -> list[Path]:
    """Error histograms, and the statistics against set size next to people's (shipped
    van den Berg et al. 2012 summary)."""
    from analysis.human import load_human_summary
    from analysis.plotting_behaviour import plot_error_histograms, plot_error_statistics

    out_dir = Path(out_dir)
    return [plot_error_histograms(result, out_dir / "error_hist.png"),
            plot_error_statistics(result.statistics, out_dir / "error_statistics.png",
                                  human=load_human_summary())]

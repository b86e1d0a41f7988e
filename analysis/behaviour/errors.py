"""Error statistics per set size: MAE, circular variance and SD, circular kurtosis and its
excess over a von Mises with the same resultant length.

:func:`error_statistics` works on any errors (a model's, people's); :func:`run` is the ``errors``
analysis of a run, on the errors :func:`analysis.core.trials.model_errors` collects (sign convention,
ours: ``wrap(response - target)``). Definitions: docs/model.md, section Error statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.core import circstats
from analysis.core.tasks import needs_vwm_recall
from analysis.core.trials import ModelErrors, model_errors

__all__ = [
    "error_density",
    "SetSizeErrorStats",
    "ErrorStatistics",
    "ErrorsResult",
    "error_statistics",
    "run",
    "unavailable",
]

HISTOGRAM_BINS = 60
"""Bins of the errors figure (the model's own histograms; :mod:`analysis.human.comparison` uses
fewer for people's)."""


@dataclass(frozen=True)
class SetSizeErrorStats:
    """Error statistics at one set size (radians on the full circle)."""

    set_size: int
    n: int
    mae: float
    circular_variance: float  # -2 ln R, the squared circular SD
    circular_sd: float
    linear_sd: float  # SD of the wrapped errors, as if they lived on a line
    circular_kurtosis: float
    excess_kurtosis: float  # kurtosis minus that of a von Mises with the same R

    def to_dict(self) -> dict[str, float]:
        return {"n": self.n, "mae": self.mae, "circular_variance": self.circular_variance,
                "circular_sd": self.circular_sd, "linear_sd": self.linear_sd,
                "circular_kurtosis": self.circular_kurtosis,
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
    """MAE, circular variance (-2 ln R), circular and linear SD, circular kurtosis and its excess
    over a matched von Mises, for each set size.

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
            linear_sd=float(np.std(x, ddof=1)) if x.size > 1 else 0.0,
            circular_kurtosis=float(circstats.circular_kurtosis(x)),
            excess_kurtosis=float(circstats.excess_circular_kurtosis(x)),
        )
    return ErrorStatistics(per_set_size)


def error_density(errors: np.ndarray, set_size: np.ndarray, set_sizes: list[int], bins: int
                  ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Edges of ``bins`` equal bins on [-pi, pi] and the density of ``errors`` in them at each
    of ``set_sizes`` (the histograms of the errors figure and of the model-people overlay)."""
    edges = np.linspace(-np.pi, np.pi, bins + 1)
    return edges, {n: np.histogram(errors[set_size == n], edges, density=True)[0]
                   for n in set_sizes}


@dataclass
class ErrorsResult:
    """The ``errors`` analysis of a model: statistics plus the errors (kept for the figures)."""

    statistics: ErrorStatistics
    n_trials: int
    seed: int
    data: ModelErrors | None = field(default=None, repr=False)

    def histogram(self, bins: int = HISTOGRAM_BINS) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Bin edges on [-pi, pi] and the error density per set size."""
        if self.data is None:
            return np.linspace(-np.pi, np.pi, bins + 1), {}
        return error_density(self.data.errors, self.data.set_size, self.statistics.set_sizes,
                             bins)

    def to_dict(self) -> dict:
        edges, density = self.histogram()
        return {"n_trials_per_set_size": self.n_trials, "seed": self.seed,
                "per_set_size": self.statistics.to_dict(),
                "histogram": {"edges": edges.tolist(),
                              "density": {str(n): d.tolist() for n, d in density.items()}}}


unavailable = needs_vwm_recall
"""The ``errors`` analysis needs a VWM recall task (items, set sizes, reported angles)."""


def run(model, env, *, n_trials: int, seed: int, data: ModelErrors | None = None
        ) -> ErrorsResult:
    """The ``errors`` analysis: :func:`error_statistics` of the model's errors.

    ``data`` (errors already simulated, e.g. shared by the CLI with ``mixture`` and ``human``)
    is used as is; otherwise :func:`analysis.core.trials.model_errors` simulates ``n_trials`` trials
    per set size with ``seed``.
    """
    if data is None:
        data = model_errors(model, env, n_trials=n_trials, seed=seed)
    return ErrorsResult(statistics=error_statistics(data.errors, data.set_size),
                        n_trials=data.n_trials or n_trials, seed=data.seed, data=data)

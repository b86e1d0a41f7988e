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
from analysis.core.bootstrap import resample_indices, standard_error
from analysis.core.tasks import needs_vwm_recall
from analysis.core.trials import ModelErrors, model_errors

__all__ = [
    "N_BOOTSTRAP",
    "CHANCE_MAE",
    "STATISTICS",
    "error_density",
    "SetSizeErrorStats",
    "ErrorStatistics",
    "ErrorsResult",
    "error_statistics",
    "run",
    "unavailable",
]

N_BOOTSTRAP = 200
"""Bootstrap resamples of a model's error statistics (their SEs; :mod:`analysis.core.bootstrap`)."""

STATISTICS = (
    "mae",
    "circular_variance",
    "circular_sd",
    "linear_sd",
    "circular_kurtosis",
    "excess_kurtosis",
)
"""The statistics of :class:`SetSizeErrorStats`, each with a bootstrap SE."""

CHANCE_MAE = float(np.pi / 2)
"""MAE of uniform guessing on the full circle (rad): the floor of a network that holds nothing."""

HISTOGRAM_BINS = 60
"""Bins of the errors figure (the model's own histograms; :mod:`analysis.human.comparison` uses
fewer for people's)."""


@dataclass(frozen=True)
class SetSizeErrorStats:
    """Error statistics at one set size (radians on the full circle).

    ``se`` and ``se_items``: bootstrap SE of each statistic resampling whole trials and single
    items (empty when not bootstrapped)."""

    set_size: int
    n: int
    mae: float
    circular_variance: float  # -2 ln R, the squared circular SD
    circular_sd: float
    linear_sd: float  # SD of the wrapped errors, as if they lived on a line
    circular_kurtosis: float
    excess_kurtosis: float  # kurtosis minus that of a von Mises with the same R
    se: dict[str, float] = field(default_factory=dict)
    se_items: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out: dict = {"n": self.n, **{name: getattr(self, name) for name in STATISTICS}}
        if self.se:
            out["se"] = dict(self.se)
            out["se_items"] = dict(self.se_items)
        return out


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

    def se_column(self, name: str) -> np.ndarray | None:
        """The bootstrap SE (over trials) of one statistic across set sizes; None without one."""
        if not all(self.per_set_size[n].se for n in self.set_sizes):
            return None
        return np.array([self.per_set_size[n].se[name] for n in self.set_sizes], float)

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {str(n): self.per_set_size[n].to_dict() for n in self.set_sizes}


def _statistics(x: np.ndarray) -> dict[str, np.ndarray]:
    """The :data:`STATISTICS` of wrapped errors ``x`` (..., n) along the last axis."""
    n = x.shape[-1]
    return {
        "mae": circstats.mean_absolute_error(x, axis=-1),
        "circular_variance": circstats.circular_variance(x, axis=-1),
        "circular_sd": circstats.circular_sd(x, axis=-1),
        "linear_sd": np.std(x, axis=-1, ddof=1) if n > 1 else np.zeros(x.shape[:-1]),
        "circular_kurtosis": circstats.circular_kurtosis(x, axis=-1),
        "excess_kurtosis": circstats.excess_circular_kurtosis(x, axis=-1),
    }


def _bootstrap_se(
    x: np.ndarray, trial: np.ndarray, n_bootstrap: int, rng: np.random.Generator, unit: str
) -> dict[str, float]:
    draws = _statistics(x[resample_indices(trial, n_bootstrap, rng, unit)])
    return {name: standard_error(values) for name, values in draws.items()}


def error_statistics(
    errors, set_size, *, trial=None, n_bootstrap: int = 0, seed: int = 0
) -> ErrorStatistics:
    """MAE, circular variance (-2 ln R), circular and linear SD, circular kurtosis and its excess
    over a matched von Mises, for each set size; with ``n_bootstrap`` their bootstrap SEs.

    Args:
        errors: (n,) response - target in radians (wrapped here).
        set_size: (n,) set size of each error, or one int for all of them.
        trial: (n,) the trial of each error (whole trials are resampled for ``se``); None: each
            error its own trial.
        n_bootstrap: resamples per set size for the SEs (0: none), seeded by ``seed``.
    """
    errors = np.asarray(errors, dtype=float).ravel()
    set_size = (
        np.broadcast_to(np.asarray(set_size), errors.shape)
        if np.ndim(set_size) == 0
        else np.asarray(set_size).ravel()
    )
    if set_size.shape != errors.shape:
        raise ValueError(f"set_size: expected shape {errors.shape}, got {set_size.shape}")
    if errors.size == 0 or not np.all(np.isfinite(errors)):
        raise ValueError("errors: need a non-empty array of finite angles (radians)")
    trial = np.arange(errors.size) if trial is None else np.asarray(trial).ravel()
    rng = np.random.default_rng(seed)
    per_set_size = {}
    for n in np.unique(set_size):
        rows = set_size == n
        x = circstats.wrap_angle(errors[rows])
        values = {name: float(v) for name, v in _statistics(x).items()}
        se = se_items = {}
        if n_bootstrap > 1 and x.size > 1:
            se = _bootstrap_se(x, trial[rows], n_bootstrap, rng, "trials")
            se_items = _bootstrap_se(x, trial[rows], n_bootstrap, rng, "items")
        per_set_size[int(n)] = SetSizeErrorStats(
            set_size=int(n), n=int(x.size), **values, se=se, se_items=se_items
        )
    return ErrorStatistics(per_set_size)


def error_density(
    errors: np.ndarray, set_size: np.ndarray, set_sizes: list[int], bins: int
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Edges of ``bins`` equal bins on [-pi, pi] and the density of ``errors`` in them at each
    of ``set_sizes`` (the histograms of the errors figure and of the model-people overlay)."""
    edges = np.linspace(-np.pi, np.pi, bins + 1)
    return edges, {
        n: np.histogram(errors[set_size == n], edges, density=True)[0] for n in set_sizes
    }


@dataclass
class ErrorsResult:
    """The ``errors`` analysis of a model: statistics plus the errors (kept for the figures)."""

    statistics: ErrorStatistics
    n_trials: int
    seed: int
    data: ModelErrors | None = field(default=None, repr=False)
    untrained_mae: dict[int, float] = field(default_factory=dict)
    """MAE per set size of the untrained network on the same trials (empty: not computed)."""

    def histogram(self, bins: int = HISTOGRAM_BINS) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Bin edges on [-pi, pi] and the error density per set size."""
        if self.data is None:
            return np.linspace(-np.pi, np.pi, bins + 1), {}
        return error_density(self.data.errors, self.data.set_size, self.statistics.set_sizes, bins)

    def to_dict(self) -> dict:
        edges, density = self.histogram()
        return {
            "n_trials_per_set_size": self.n_trials,
            "seed": self.seed,
            "bootstrap": {
                "n_resamples": N_BOOTSTRAP,
                "seed": self.seed,
                "se": "resampling whole trials within a set size",
                "se_items": "resampling single items within a set size",
            },
            "per_set_size": self.statistics.to_dict(),
            "controls": {
                "chance_mae": CHANCE_MAE,
                "chance": "uniform guessing on the circle: E|error| = pi/2",
                "untrained_mae": {str(n): v for n, v in sorted(self.untrained_mae.items())},
                "untrained": "the agent rebuilt from config.yaml at its initial weights "
                "(training.seed), on the same trials; empty when not run",
            },
            "histogram": {
                "edges": edges.tolist(),
                "density": {str(n): d.tolist() for n, d in density.items()},
            },
        }


unavailable = needs_vwm_recall
"""The ``errors`` analysis needs a VWM recall task (items, set sizes, reported angles)."""


def run(
    model,
    env,
    *,
    n_trials: int,
    seed: int,
    data: ModelErrors | None = None,
    untrained=None,
) -> ErrorsResult:
    """The ``errors`` analysis: :func:`error_statistics` of the model's errors, with
    :data:`N_BOOTSTRAP` bootstrap SEs (over trials and over items, seeded by the data's seed).

    ``data`` (errors already simulated, e.g. shared by the CLI with ``mixture`` and ``human``)
    is used as is; otherwise :func:`analysis.core.trials.model_errors` simulates ``n_trials`` trials
    per set size with ``seed``. ``untrained`` (the same agent at its initial weights): its MAE
    per set size on the same number of trials and seed, the control beside the model's curve
    (with :data:`CHANCE_MAE`).
    """
    if data is None:
        data = model_errors(model, env, n_trials=n_trials, seed=seed)
    statistics = error_statistics(
        data.errors, data.set_size, trial=data.trial, n_bootstrap=N_BOOTSTRAP, seed=data.seed
    )
    untrained_mae = {}
    if untrained is not None:
        control = model_errors(untrained, env, n_trials=data.n_trials or n_trials, seed=data.seed)
        untrained_mae = {
            n: row.mae
            for n, row in error_statistics(control.errors, control.set_size).per_set_size.items()
        }
    return ErrorsResult(
        statistics=statistics,
        n_trials=data.n_trials or n_trials,
        seed=data.seed,
        data=data,
        untrained_mae=untrained_mae,
    )

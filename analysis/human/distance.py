"""How far a model's behaviour is from people's: a chi-square-like distance per set size.

Three statistics per set size summarise a delayed-estimation data set: the mean absolute error
(MAE), the guess rate of the von Mises + uniform model (Zhang & Luck 2008) and the excess
circular kurtosis over a von Mises with the same resultant length (positive for people: their
errors are peakier with heavier tails than a von Mises). For each statistic s and set size n,

    z(s, n) = (model(s, n) - people(s, n)) / sqrt(SE_people(s, n)^2 + SE_model(s, n)^2)

where people(s, n) is the mean over participants of each participant's value, SE_people the
between-participant standard error (SD over participants / sqrt(P)) and SE_model the model's
own sampling error: the bootstrap SE over its simulated trials (whole trials resampled;
:mod:`analysis.core.bootstrap`), 0 where the model has none (its statistics then count as
exact). The distance is
``total = sum over s, n of z^2``; ``components[s]`` sums z^2 over set sizes. Only set sizes that
both the model and the people have enter.

With one participant there is no between-participant spread: the SE is then that person's
sampling error, estimated by a bootstrap over their trials (``se_source`` says which). The two
errors are independent, so their variances add: a model simulated on few trials cannot score a
small distance by chance alone, and with many trials SE_model -> 0 and an observer whose
statistics equal the population's scores ``z^2 ~ F(1, P - 1)``, mean (P - 1) / (P - 3) per
term.

Definitions and the calibration workflow: docs/model.md, section Human comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from analysis.behaviour.errors import ErrorStatistics
from analysis.behaviour.mixture import MixtureResult, fit_vm_uniform
from analysis.core import circstats

__all__ = [
    "DISTANCE_STATISTICS",
    "HumanReference",
    "Distance",
    "observer_statistics",
    "model_distance_statistics",
    "model_distance_se",
    "reference_from_values",
    "bootstrap_se",
    "human_distance",
]

DISTANCE_STATISTICS: tuple[str, ...] = ("mae", "guess_rate", "excess_kurtosis")


def observer_statistics(errors, set_size) -> dict[int, dict[str, float]]:
    """The three distance statistics of one observer's errors at each of its set sizes."""
    errors = circstats.wrap_angle(np.asarray(errors, dtype=float).ravel())
    set_size = np.asarray(set_size).ravel()
    out = {}
    for n in np.unique(set_size):
        x = errors[set_size == n]
        out[int(n)] = {
            "mae": float(circstats.mean_absolute_error(x)),
            "guess_rate": float(fit_vm_uniform(x).p_guess),
            "excess_kurtosis": float(circstats.excess_circular_kurtosis(x)),
        }
    return out


def model_distance_statistics(
    statistics: ErrorStatistics, mixture: MixtureResult
) -> dict[int, dict[str, float]]:
    """:func:`observer_statistics` read from results already computed (the ``errors`` and
    ``mixture`` analyses of the same errors) instead of fitting again."""
    return {
        n: {
            "mae": row.mae,
            "guess_rate": float(mixture.fits[n].vm_uniform.p_guess),
            "excess_kurtosis": row.excess_kurtosis,
        }
        for n, row in statistics.per_set_size.items()
    }


def model_distance_se(
    statistics: ErrorStatistics, mixture: MixtureResult
) -> dict[int, dict[str, float]]:
    """The bootstrap SEs of :func:`model_distance_statistics` (empty where the results have
    none)."""
    out = {}
    for n, row in statistics.per_set_size.items():
        guess_se = mixture.fits[n].se.get("vm_uniform", {}).get("p_guess")
        if row.se and guess_se is not None:
            out[n] = {
                "mae": row.se["mae"],
                "guess_rate": guess_se,
                "excess_kurtosis": row.se["excess_kurtosis"],
            }
    return out


@dataclass
class HumanReference:
    """People's mean and standard error of each distance statistic per set size.

    ``mean[s]`` and ``se[s]`` are lists aligned with ``set_sizes``.
    """

    set_sizes: list[int]
    mean: dict[str, list[float]]
    se: dict[str, list[float]]
    n_participants: int
    se_source: str
    target: str = ""

    def to_dict(self) -> dict:
        return {
            "set_sizes": self.set_sizes,
            "mean": self.mean,
            "se": self.se,
            "n_participants": self.n_participants,
            "se_source": self.se_source,
            "target": self.target,
        }


def reference_from_values(
    values: dict[str, np.ndarray],
    set_sizes: list[int],
    *,
    target: str = "",
    se: dict[str, np.ndarray] | None = None,
    se_source: str = "between participants",
) -> HumanReference:
    """A :class:`HumanReference` from per-participant values ``values[s]`` of shape
    (participants, set sizes); ``se`` overrides the between-participant SE (one participant)."""
    n_people = int(next(iter(values.values())).shape[0])
    if se is None:
        if n_people < 2:
            raise ValueError(
                "values: need >= 2 participants for a between-participant SE "
                "(pass se= for one participant)"
            )
        se = {s: np.std(v, axis=0, ddof=1) / math.sqrt(n_people) for s, v in values.items()}
    return HumanReference(
        set_sizes=[int(n) for n in set_sizes],
        mean={s: np.mean(values[s], axis=0).tolist() for s in DISTANCE_STATISTICS},
        se={s: np.asarray(se[s], float).tolist() for s in DISTANCE_STATISTICS},
        n_participants=n_people,
        se_source=se_source,
        target=target,
    )


def bootstrap_se(
    errors, set_size, *, n_bootstrap: int = 100, seed: int = 0
) -> dict[str, np.ndarray]:
    """Bootstrap SE (resampling trials within each set size) of the three statistics."""
    errors = np.asarray(errors, dtype=float).ravel()
    set_size = np.asarray(set_size).ravel()
    rng = np.random.default_rng(seed)
    set_sizes = np.unique(set_size)
    draws = {s: np.empty((n_bootstrap, set_sizes.size)) for s in DISTANCE_STATISTICS}
    for j, n in enumerate(set_sizes):
        x = errors[set_size == n]
        for b in range(n_bootstrap):
            stats = observer_statistics(rng.choice(x, x.size), np.full(x.size, n))[int(n)]
            for s in DISTANCE_STATISTICS:
                draws[s][b, j] = stats[s]
    return {s: d.std(axis=0, ddof=1) for s, d in draws.items()}


@dataclass
class Distance:
    """The model-people distance; :meth:`to_dict` is the ``"distance"`` entry of
    ``human_comparison.json`` (read by the sweeps)."""

    total: float
    components: dict[str, float]
    per_set_size: list[dict[str, float | int | None]]
    target: str
    se_source: str = ""
    n_participants: int = 0
    excluded: list[str] = field(default_factory=list)
    model_se_source: str = "none (the model's statistics taken as exact)"

    def to_dict(self) -> dict:
        out = {
            "total": self.total,
            "components": self.components,
            "per_set_size": self.per_set_size,
            "target": self.target,
            "se_source": self.se_source,
            "n_participants": self.n_participants,
            "model_se_source": self.model_se_source,
            "definition": "z = (model - people) / sqrt(SE_people^2 + SE_model^2); "
            "total = sum of z^2 over statistics and set sizes",
        }
        if self.excluded:
            out["excluded"] = self.excluded
        return out


def human_distance(
    model: dict[int, dict[str, float]],
    reference: HumanReference,
    model_se: dict[int, dict[str, float]] | None = None,
) -> Distance:
    """z-scores of a model's statistics (:func:`observer_statistics`) against people's, and
    their sums of squares; ``model_se`` (:func:`model_distance_se`) adds the model's own
    variance to the people's in each z. A statistic whose combined SE is 0 (every participant
    identical, no model SE) has no z; it is listed in ``excluded`` and left out of the sums."""
    model_se = model_se or {}
    shared = [n for n in reference.set_sizes if n in model]
    if not shared:
        raise ValueError(
            f"model: set sizes {sorted(model)} share none with the target's {reference.set_sizes}"
        )
    components = dict.fromkeys(DISTANCE_STATISTICS, 0.0)
    per_set_size, excluded = [], []
    for n in shared:
        i = reference.set_sizes.index(n)
        row: dict[str, float | int | None] = {"set_size": n}
        for s in DISTANCE_STATISTICS:
            se = math.hypot(reference.se[s][i], model_se.get(n, {}).get(s, 0.0))
            if not (se > 0 and math.isfinite(se)):
                row[s] = None
                excluded.append(f"{s} at set size {n} (people's SE is {reference.se[s][i]})")
                continue
            z = (model[n][s] - reference.mean[s][i]) / se
            row[s] = float(z)
            components[s] += z * z
        per_set_size.append(row)
    distance = Distance(
        total=float(sum(components.values())),
        components=components,
        per_set_size=per_set_size,
        target=reference.target,
        se_source=reference.se_source,
        n_participants=reference.n_participants,
        excluded=excluded,
    )
    if any(n in model_se for n in shared):
        distance.model_se_source = "bootstrap over the model's simulated trials"
    return distance

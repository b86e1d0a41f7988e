"""The comparison of a model with people: error statistics, mixture parameters and the distance.

The top of the behavioural layers (data: :mod:`analysis.core.trials`, :mod:`analysis.human.data`;
statistics: :mod:`analysis.behaviour.errors`, :mod:`analysis.behaviour.mixture`; the distance:
:mod:`analysis.human.distance`). It never imports plotting (:mod:`analysis.viz.human` draws it).

* :func:`human_statistics` computes each participant's error statistics and mixture fits per set
  size and their mean and between-participant SE.
* :func:`load_human_summary` reads the per-set-size summary shipped beside the raw files
  (``analysis/data/human_vdb2012_orientation.json``, computed from them by
  :func:`human_statistics`), for quick overlays that need no fitting.
* :func:`human_comparison` puts a model's per-set-size summary next to people's (values, the
  people's SEs, model / human ratios) and :func:`run` adds the distance of
  :mod:`analysis.human.distance`. Definitions: docs/model.md, section Human comparison.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from analysis.behaviour.errors import (
    STATISTICS as ERROR_STATISTICS,
)
from analysis.behaviour.errors import (
    ErrorsResult,
    ErrorStatistics,
    error_density,
    error_statistics,
)
from analysis.behaviour.mixture import MixtureResult, fit_by_set_size
from analysis.core.tasks import needs_vwm_recall
from analysis.core.trials import ModelErrors, model_errors
from analysis.human.data import CITATION, HumanTrials, describe_people, load_people
from analysis.human.distance import (
    Distance,
    HumanReference,
    bootstrap_se,
    human_distance,
    model_distance_se,
    model_distance_statistics,
    reference_from_values,
)

__all__ = [
    "model_human_ratio",
    "SUMMARY_FIELDS",
    "COMPARED",
    "BehaviourSummary",
    "HumanStatistics",
    "HumanComparison",
    "human_statistics",
    "load_human_summary",
    "model_summary",
    "human_comparison",
    "reference_from_summary",
    "run",
    "unavailable",
]

_SUMMARY_RESOURCE = "human_vdb2012_orientation.json"
SUMMARY_FIELDS = (*ERROR_STATISTICS, "p_guess", "vm_sd", "p_nontarget", "p_guess_swap")
HISTOGRAM_BINS = 36
"""Bins of the model-people overlay: coarser than the errors figure's (60), since people give
fewer trials per set size than the model's simulation (about 150 per participant)."""


@dataclass
class BehaviourSummary:
    """Per-set-size behaviour of one observer (a model, or the mean over people).

    Each field is a list aligned with ``set_sizes``; ``None`` marks a value that is not known.
    ``p_guess`` and ``vm_sd`` come from the von Mises + uniform fit, ``p_nontarget`` and
    ``p_guess_swap`` from the swap model (``p_nontarget`` is the swap rate). Angles in radians on
    the full circle.
    """

    set_sizes: list[int]
    mae: list[float | None]
    circular_variance: list[float | None]
    circular_sd: list[float | None] = field(default_factory=list)
    linear_sd: list[float | None] = field(default_factory=list)
    circular_kurtosis: list[float | None] = field(default_factory=list)
    excess_kurtosis: list[float | None] = field(default_factory=list)
    p_guess: list[float | None] = field(default_factory=list)
    vm_sd: list[float | None] = field(default_factory=list)
    p_nontarget: list[float | None] = field(default_factory=list)
    p_guess_swap: list[float | None] = field(default_factory=list)
    standard_errors: dict[str, list[float | None]] = field(default_factory=dict)
    meta: dict[str, object] = field(default_factory=dict)

    def value(self, name: str, set_size: int) -> float | None:
        """One statistic at one set size (None when absent)."""
        values = getattr(self, name)
        if set_size not in self.set_sizes or not values:
            return None
        return values[self.set_sizes.index(set_size)]

    def to_dict(self) -> dict:
        per_set_size = {
            str(n): {name: getattr(self, name)[i] for name in SUMMARY_FIELDS if getattr(self, name)}
            for i, n in enumerate(self.set_sizes)
        }
        for name, values in self.standard_errors.items():
            for i, n in enumerate(self.set_sizes):
                per_set_size[str(n)][f"{name}_se"] = values[i]
        return {**self.meta, "per_set_size": per_set_size}

    @classmethod
    def from_dict(cls, data: dict) -> BehaviourSummary:
        per_set_size = data["per_set_size"]
        set_sizes = sorted(int(n) for n in per_set_size)
        rows = [per_set_size[str(n)] for n in set_sizes]
        columns = {name: [row.get(name) for row in rows] for name in SUMMARY_FIELDS}
        se_names = sorted({key[:-3] for row in rows for key in row if key.endswith("_se")})
        return cls(
            set_sizes=set_sizes,
            **columns,
            standard_errors={name: [row.get(f"{name}_se") for row in rows] for name in se_names},
            meta={k: v for k, v in data.items() if k != "per_set_size"},
        )


@dataclass
class HumanStatistics:
    """Per-participant statistics (and fits) and their mean over participants."""

    per_participant: dict[str, ErrorStatistics]
    fits: dict[str, MixtureResult]
    summary: BehaviourSummary
    reference: HumanReference | None = None

    def to_dict(self) -> dict:
        return {
            "summary": self.summary.to_dict(),
            "per_participant": {
                p: {
                    "statistics": s.to_dict(),
                    "mixture": self.fits[p].to_dict() if p in self.fits else None,
                }
                for p, s in self.per_participant.items()
            },
        }


def human_statistics(
    trials: HumanTrials, *, fit: bool = True, n_bootstrap: int = 100
) -> HumanStatistics:
    """Each participant's statistics (and, if ``fit``, mixture fits) per set size, then the mean
    over participants of each participant's value, with between-participant SEs.

    With ``fit``, :attr:`HumanStatistics.reference` holds the people's side of the distance
    (:mod:`analysis.human.distance`); with one participant its SEs come from a bootstrap over that
    person's trials (``n_bootstrap`` resamples), since there is no between-participant spread.
    """
    per_participant, fits = {}, {}
    for p in trials.participants:
        own = trials.subset(trials.participant == p)
        per_participant[p] = error_statistics(own.errors, own.set_size)
        if fit:
            # Data without non-target columns (a CSV without them) fit no swaps (p_nontarget 0)
            nontargets = own.nontarget_errors if own.nontarget_errors.shape[1] else None
            fits[p] = fit_by_set_size(own.errors, own.set_size, nontargets)
    set_sizes = sorted({n for s in per_participant.values() for n in s.set_sizes})

    def stack(getter) -> np.ndarray:  # (participants, set sizes)
        return np.array([[getter(p, n) for n in set_sizes] for p in per_participant], float)

    columns = {
        name: stack(lambda p, n, name=name: getattr(per_participant[p].per_set_size[n], name))
        for name in ERROR_STATISTICS
    }
    if fit:
        columns["p_guess"] = stack(lambda p, n: fits[p].fits[n].vm_uniform.p_guess)
        columns["vm_sd"] = stack(lambda p, n: fits[p].fits[n].vm_uniform.sd)
        columns["p_nontarget"] = stack(lambda p, n: fits[p].fits[n].swap.p_nontarget)
        columns["p_guess_swap"] = stack(lambda p, n: fits[p].fits[n].swap.p_guess)
    n_people = len(per_participant)
    summary = BehaviourSummary(
        set_sizes=set_sizes,
        **{name: values.mean(0).tolist() for name, values in columns.items()},
        standard_errors={
            name: (values.std(0, ddof=1) / math.sqrt(n_people)).tolist()
            for name, values in columns.items()
        }
        if n_people > 1
        else {},
        meta={
            "observer": "human",
            "n_participants": n_people,
            "statistic": "mean over participants of each participant's value",
        },
    )
    reference = None
    if fit:
        values = {
            "mae": columns["mae"],
            "guess_rate": columns["p_guess"],
            "excess_kurtosis": columns["excess_kurtosis"],
        }
        if n_people > 1:
            reference = reference_from_values(values, set_sizes)
        else:
            reference = reference_from_values(
                values,
                set_sizes,
                se=bootstrap_se(trials.errors, trials.set_size, n_bootstrap=n_bootstrap),
                se_source=f"bootstrap over one participant's trials ({n_bootstrap} resamples)",
            )
    return HumanStatistics(
        per_participant=per_participant, fits=fits, summary=summary, reference=reference
    )


def load_human_summary(path: str | Path | None = None) -> BehaviourSummary:
    """The shipped per-set-size human summary (or one saved by ``BehaviourSummary.to_dict``)."""
    if path is None:
        text = resources.files("analysis").joinpath("data", _SUMMARY_RESOURCE).read_text()
    else:
        text = Path(path).read_text()
    return BehaviourSummary.from_dict(json.loads(text))


# --------------------------------------------------------------------------------------------
# Model against people


def model_summary(
    statistics: ErrorStatistics, mixture: MixtureResult | None = None
) -> BehaviourSummary:
    """A model's :class:`BehaviourSummary` from its error statistics and (optional) fits."""
    set_sizes = statistics.set_sizes
    summary = BehaviourSummary(
        set_sizes=set_sizes,
        mae=statistics.column("mae").tolist(),
        circular_variance=statistics.column("circular_variance").tolist(),
        circular_sd=statistics.column("circular_sd").tolist(),
        linear_sd=statistics.column("linear_sd").tolist(),
        circular_kurtosis=statistics.column("circular_kurtosis").tolist(),
        excess_kurtosis=statistics.column("excess_kurtosis").tolist(),
        meta={"observer": "model"},
    )
    for name in ERROR_STATISTICS:
        se = statistics.se_column(name)
        if se is not None:
            summary.standard_errors[name] = se.tolist()
    if mixture is not None:
        fitted = [n for n in set_sizes if n in mixture.fits]

        def col(model: str, name: str) -> list[float | None]:
            return [
                getattr(getattr(mixture.fits[n], model), name) if n in fitted else None
                for n in set_sizes
            ]

        def se_col(model: str, name: str) -> list[float | None]:
            return [
                mixture.fits[n].se.get(model, {}).get(name) if n in fitted else None
                for n in set_sizes
            ]

        fields = {"p_guess": ("vm_uniform", "p_guess"), "vm_sd": ("vm_uniform", "sd")}
        if all(hasattr(f, "swap") for f in mixture.fits.values()):
            fields |= {"p_nontarget": ("swap", "p_nontarget"), "p_guess_swap": ("swap", "p_guess")}
        for name, (model, parameter) in fields.items():
            setattr(summary, name, col(model, parameter))
            se = se_col(model, parameter)
            if any(v is not None for v in se):
                summary.standard_errors[name] = se
    return summary


def reference_from_summary(summary: BehaviourSummary) -> HumanReference:
    """The people's side of the distance from a summary with between-participant SEs."""
    names = {"mae": "mae", "guess_rate": "p_guess", "excess_kurtosis": "excess_kurtosis"}
    missing = [field for field in names.values() if field not in summary.standard_errors]
    if missing:
        raise ValueError(f"summary: no standard errors of {', '.join(missing)}")
    return HumanReference(
        set_sizes=list(summary.set_sizes),
        mean={s: list(getattr(summary, f)) for s, f in names.items()},
        se={s: list(summary.standard_errors[f]) for s, f in names.items()},
        n_participants=int(summary.meta.get("n_participants", 0)),
        se_source="between participants",
    )


COMPARED = SUMMARY_FIELDS
"""Statistics put side by side in ``human_comparison.json`` (model, people, people's SE)."""
_RATIOS = ("mae", "circular_variance", "p_guess")


@dataclass
class HumanComparison:
    """Model and human values at the set sizes both have, the people's SEs (between
    participants), the model's SEs (bootstrap over its trials), model / human ratios, the
    distance and the error histograms of both (for the overlay figure)."""

    set_sizes: list[int]
    model: dict[str, list[float | None]]
    human: dict[str, list[float | None]]
    ratio: dict[str, list[float | None]]
    human_se: dict[str, list[float | None]] = field(default_factory=dict)
    model_se: dict[str, list[float | None]] = field(default_factory=dict)
    human_source: str = ""
    n_participants: int = 0
    distance: Distance | None = None
    histogram_edges: list[float] = field(default_factory=list)
    model_density: dict[int, list[float]] = field(default_factory=dict)
    human_density: dict[int, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {
            "set_sizes": self.set_sizes,
            "model": self.model,
            "human": self.human,
            "human_se": self.human_se,
            "model_se": self.model_se,
            "ratio": self.ratio,
            "human_source": self.human_source,
            "n_participants": self.n_participants,
            "histogram": {
                "edges": self.histogram_edges,
                "model": {str(n): d for n, d in self.model_density.items()},
                "human": {str(n): d for n, d in self.human_density.items()},
            },
        }
        if self.distance is not None:
            out["distance"] = self.distance.to_dict()
        return out


def model_human_ratio(model: list[float | None], human: list[float | None]) -> list[float | None]:
    """model / people per set size; None where either is missing or people's value is 0."""
    return [m / h if m is not None and h else None for m, h in zip(model, human, strict=True)]


def human_comparison(
    model_stats: BehaviourSummary, human_summary: BehaviourSummary
) -> HumanComparison:
    """Model and people's values (and the people's SEs) per shared set size, and model / human
    ratios for MAE, circular variance and guess rate.

    A ratio is None where either value is missing or the human value is 0 (a guess rate of
    exactly 0 makes the ratio meaningless; near-zero human guess rates at set size 1 make it
    noisy, which the figure shows better than the number).
    """
    shared = [n for n in model_stats.set_sizes if n in human_summary.set_sizes]
    if not shared:
        raise ValueError(
            f"model_stats: set sizes {model_stats.set_sizes} share none with the "
            f"human summary's {human_summary.set_sizes}"
        )
    model = {name: [model_stats.value(name, n) for n in shared] for name in COMPARED}
    human = {name: [human_summary.value(name, n) for n in shared] for name in COMPARED}
    human_se = {
        name: [values[human_summary.set_sizes.index(n)] for n in shared]
        for name, values in human_summary.standard_errors.items()
    }
    model_se = {
        name: [values[model_stats.set_sizes.index(n)] for n in shared]
        for name, values in model_stats.standard_errors.items()
    }
    ratio = {name: model_human_ratio(model[name], human[name]) for name in _RATIOS}
    source = str(human_summary.meta.get("citation", human_summary.meta.get("observer", "")))
    return HumanComparison(
        set_sizes=shared,
        model=model,
        human=human,
        ratio=ratio,
        human_se=human_se,
        model_se=model_se,
        human_source=source,
        n_participants=int(human_summary.meta.get("n_participants", 0)),
    )


def unavailable(model, env) -> str | None:
    """The ``human`` analysis needs a VWM recall task (items, set sizes, reported angles)."""
    return needs_vwm_recall(model, env)


def run(
    model,
    env,
    *,
    n_trials: int,
    seed: int,
    data: ModelErrors | None = None,
    errors: ErrorsResult | None = None,
    mixture: MixtureResult | None = None,
    human_data: str | Path | None = None,
    human_units: str = "rad",
    human_space: str = "circle",
) -> HumanComparison:
    """The ``human`` analysis: a model against people per set size.

    Compares MAE, circular variance, circular and linear SD, circular kurtosis and its excess,
    and the mixture parameters (von Mises + uniform guess rate and SD, the swap model's swap and
    guess rates), with the people's between-participant SEs, and computes the distance of
    :mod:`analysis.human.distance` (key ``"distance"`` of ``human_comparison.json``).

    Args:
        data: the model's errors (shared by the CLI); simulated here when None.
        errors, mixture: the ``errors`` and ``mixture`` analyses' results on ``data`` (the CLI
            passes those of the same call); computed here when None.
        human_data: the people to compare with: None for the shipped van den Berg et al. (2012) files, a folder
            of such .mat files, or a CSV file in ``python -m analysis.fit_table``'s format.
        human_units, human_space: units and period of the angles of a CSV of people.
    """
    if data is None:
        data = model_errors(model, env, n_trials=n_trials, seed=seed)
    statistics = (
        errors.statistics if errors is not None else error_statistics(data.errors, data.set_size)
    )
    if mixture is None:
        mixture = fit_by_set_size(data.errors, data.set_size, data.nontarget_errors)
    summary = model_summary(statistics, mixture)
    trials = load_people(human_data, units=human_units, space=human_space)
    people_name = describe_people(human_data)
    if human_data is None:
        # The shipped summary is human_statistics() of the shipped files (a test checks it):
        # reading it saves re-fitting 48 participant x set-size mixtures on every call.
        people = load_human_summary()
        reference = reference_from_summary(people)
    else:
        people_stats = human_statistics(trials)
        people, reference = people_stats.summary, people_stats.reference
    people.meta["citation"] = CITATION if human_data is None else people_name
    reference.target = people_name
    comparison = human_comparison(summary, people)
    comparison.distance = human_distance(
        model_distance_statistics(statistics, mixture),
        reference,
        model_distance_se(statistics, mixture),
    )
    edges, model_density = error_density(
        data.errors, data.set_size, comparison.set_sizes, HISTOGRAM_BINS
    )
    _, human_density = error_density(
        trials.errors, trials.set_size, comparison.set_sizes, HISTOGRAM_BINS
    )
    comparison.histogram_edges = edges.tolist()
    comparison.model_density = {n: d.tolist() for n, d in model_density.items()}
    comparison.human_density = {n: d.tolist() for n, d in human_density.items()}
    return comparison

"""Human delayed-estimation data (van den Berg et al. 2012, orientation) and the comparison of a
model with it.

* :func:`load_vandenberg2012` reads the MemToolbox copy of the .mat files (one per session) into
  trial arrays. Orientations live on a 180-degree circle, so every difference (response - target
  and response - each non-target) is doubled onto the full circle, the space of our task.
* :func:`human_statistics` computes each participant's error statistics and mixture fits per set
  size and their mean (and SE) over participants.
* :func:`load_human_summary` reads the summary shipped with the package
  (``analysis/data/human_vdb2012_orientation.json``), so the comparison works without the files.
* :func:`human_comparison` puts a model's per-set-size summary next to the human one (ratios of
  MAE, circular variance and guess rate).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from analysis import circstats
from analysis.errors import ErrorStatistics, error_statistics, model_errors
from analysis.mixture import MixtureResult, fit_by_set_size, fit_vm_uniform

__all__ = [
    "HUMAN_DATA_ENV",
    "BehaviourSummary",
    "HumanTrials",
    "HumanStatistics",
    "HumanComparison",
    "find_human_data",
    "load_vandenberg2012",
    "human_statistics",
    "load_human_summary",
    "model_summary",
    "human_comparison",
    "run",
    "plot",
]

HUMAN_DATA_ENV = "VWM_HUMAN_DATA"
"""Environment variable naming the human data folder (``human_vwm`` or the orientation folder)."""

_ORIENTATION_FOLDER = "vandenberg2012_orientation"
_BLOCKS = ("block_one", "block_two", "block_three", "block_four", "block_five")
_SUMMARY_RESOURCE = "human_vdb2012_orientation.json"
SUMMARY_FIELDS = ("mae", "circular_variance", "circular_sd", "p_guess", "vm_sd", "p_nontarget",
                  "p_guess_swap")


@dataclass
class BehaviourSummary:
    """Per-set-size behaviour of one observer (a model, or the mean over people).

    Each field is a list aligned with ``set_sizes``; ``None`` marks a value that is not known.
    ``p_guess`` and ``vm_sd`` come from the von Mises + uniform fit, ``p_nontarget`` and
    ``p_guess_swap`` from the swap model. Angles in radians on the full circle.
    """

    set_sizes: list[int]
    mae: list[float | None]
    circular_variance: list[float | None]
    circular_sd: list[float | None] = field(default_factory=list)
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
            str(n): {name: getattr(self, name)[i] for name in SUMMARY_FIELDS
                     if getattr(self, name)}
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
        return cls(set_sizes=set_sizes, **columns,
                   standard_errors={name: [row.get(f"{name}_se") for row in rows]
                                    for name in se_names},
                   meta={k: v for k, v in data.items() if k != "per_set_size"})


# --------------------------------------------------------------------------------------------
# The raw files


@dataclass
class HumanTrials:
    """Trials of the van den Berg et al. (2012) orientation experiment, on the full circle.

    Attributes:
        participant: (n,) participant initials.
        set_size: (n,) int, 1-8.
        target, response: (n,) doubled orientations in radians, [-pi, pi).
        errors: (n,) wrap(2 (response - target)) in radians.
        nontarget_errors: (n, 7) wrap(2 (response - other item)), NaN-padded.
    """

    participant: np.ndarray
    set_size: np.ndarray
    target: np.ndarray
    response: np.ndarray
    errors: np.ndarray
    nontarget_errors: np.ndarray

    @property
    def participants(self) -> list[str]:
        return sorted(set(self.participant.tolist()))

    def subset(self, rows: np.ndarray) -> HumanTrials:
        return HumanTrials(*(getattr(self, name)[rows] for name in
                             ("participant", "set_size", "target", "response", "errors",
                              "nontarget_errors")))


def find_human_data(path: str | Path | None = None) -> Path | None:
    """The folder holding the orientation .mat files, or None.

    Looks at ``path``, else ``$VWM_HUMAN_DATA``, else ``../shared/human_vwm`` next to the
    repository; each may be the ``human_vwm`` folder or its ``vandenberg2012_orientation`` one.
    """
    if path is not None:
        candidates = [Path(path)]
    else:
        repo_root = Path(__file__).resolve().parent.parent
        candidates = [Path(p) for p in (os.environ.get(HUMAN_DATA_ENV),) if p]
        candidates.append(repo_root.parent / "shared" / "human_vwm")
    for candidate in candidates:
        for folder in (candidate, candidate / _ORIENTATION_FOLDER):
            if folder.is_dir() and any(folder.glob("*.mat")):
                return folder
    return None


def _double(degrees) -> np.ndarray:
    """Orientation differences in degrees (period 180) -> radians on the full circle."""
    return circstats.wrap_angle(np.deg2rad(2.0 * np.asarray(degrees, dtype=float)))


def load_vandenberg2012(data_dir: str | Path) -> HumanTrials:
    """Load every session file of the orientation experiment (README in ``human_vwm``).

    Raises:
        FileNotFoundError: no .mat files in ``data_dir`` (or its orientation sub-folder).
        ValueError: a file without the expected blocks and fields, naming file and field.
    """
    from scipy.io import loadmat

    folder = find_human_data(data_dir)
    if folder is None:
        raise FileNotFoundError(f"{data_dir}: no van den Berg (2012) .mat files found")
    columns: dict[str, list[np.ndarray]] = {name: [] for name in
                                            ("participant", "set_size", "target", "response",
                                             "errors", "nontarget_errors")}
    for path in sorted(folder.glob("*.mat")):
        participant = re.match(r"[A-Za-z]+", path.stem)
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
        for block_name in _BLOCKS:
            try:
                block = mat[block_name]
                set_size = np.asarray(block.set_size, dtype=np.int64)
                true_deg = np.asarray(block.true_values, dtype=float)
                response_deg = np.asarray(block.subject_responses, dtype=float)
                items_deg = np.asarray(block.gabor_angles, dtype=float)  # (9, trials)
                cued = np.atleast_2d(block.cued_gabor)[0].astype(np.int64) - 1
            except (KeyError, AttributeError) as exc:
                raise ValueError(f"{path.name}: {block_name}: missing field {exc}") from None
            n = set_size.size
            # Items are rows 0..set_size-1 of gabor_angles; the cued one is the target.
            others = (np.arange(items_deg.shape[0])[:, None] < set_size[None, :]) & (
                np.arange(items_deg.shape[0])[:, None] != cued[None, :])
            order = np.argsort(~others.T, axis=1, kind="stable")[:, : items_deg.shape[0] - 2]
            nt_deg = np.take_along_axis(items_deg.T, order, axis=1)
            nt_valid = np.take_along_axis(others.T, order, axis=1)
            columns["participant"].append(np.full(n, participant.group(0) if participant
                                                  else path.stem))
            columns["set_size"].append(set_size)
            columns["target"].append(_double(true_deg))
            columns["response"].append(_double(response_deg))
            columns["errors"].append(_double(response_deg - true_deg))
            columns["nontarget_errors"].append(
                np.where(nt_valid, _double(response_deg[:, None] - nt_deg), np.nan))
    return HumanTrials(**{name: np.concatenate(parts) for name, parts in columns.items()})


@dataclass
class HumanStatistics:
    """Per-participant statistics (and fits) and their mean over participants."""

    per_participant: dict[str, ErrorStatistics]
    fits: dict[str, MixtureResult]
    summary: BehaviourSummary

    def to_dict(self) -> dict:
        return {"summary": self.summary.to_dict(),
                "per_participant": {p: {"statistics": s.to_dict(),
                                        "mixture": self.fits[p].to_dict() if p in self.fits
                                        else None}
                                    for p, s in self.per_participant.items()}}


def human_statistics(trials: HumanTrials, *, fit: bool = True) -> HumanStatistics:
    """Each participant's statistics (and, if ``fit``, mixture fits) per set size, then the mean
    over participants of each participant's value (as in the README table and the anchors)."""
    per_participant, fits = {}, {}
    for p in trials.participants:
        own = trials.subset(trials.participant == p)
        per_participant[p] = error_statistics(own.errors, own.set_size)
        if fit:
            fits[p] = fit_by_set_size(own.errors, own.set_size, own.nontarget_errors)
    set_sizes = sorted({n for s in per_participant.values() for n in s.set_sizes})

    def stack(getter) -> np.ndarray:  # (participants, set sizes)
        return np.array([[getter(p, n) for n in set_sizes] for p in per_participant], float)

    columns = {name: stack(lambda p, n, name=name: getattr(per_participant[p].per_set_size[n],
                                                           name))
               for name in ("mae", "circular_variance", "circular_sd")}
    if fit:
        columns["p_guess"] = stack(lambda p, n: fits[p].fits[n].vm_uniform.p_guess)
        columns["vm_sd"] = stack(lambda p, n: fits[p].fits[n].vm_uniform.sd)
        columns["p_nontarget"] = stack(lambda p, n: fits[p].fits[n].swap.p_nontarget)
        columns["p_guess_swap"] = stack(lambda p, n: fits[p].fits[n].swap.p_guess)
    n_people = len(per_participant)
    summary = BehaviourSummary(
        set_sizes=set_sizes,
        **{name: values.mean(0).tolist() for name, values in columns.items()},
        standard_errors={name: (values.std(0, ddof=1) / math.sqrt(n_people)).tolist()
                         for name, values in columns.items()} if n_people > 1 else {},
        meta={"observer": "human", "n_participants": n_people,
              "statistic": "mean over participants of each participant's value"},
    )
    return HumanStatistics(per_participant=per_participant, fits=fits, summary=summary)


def load_human_summary(path: str | Path | None = None) -> BehaviourSummary:
    """The shipped per-set-size human summary (or one saved by ``BehaviourSummary.to_dict``)."""
    if path is None:
        text = resources.files("analysis").joinpath("data", _SUMMARY_RESOURCE).read_text()
    else:
        text = Path(path).read_text()
    return BehaviourSummary.from_dict(json.loads(text))


# --------------------------------------------------------------------------------------------
# Model against people


def model_summary(statistics: ErrorStatistics, mixture: MixtureResult | None = None
                  ) -> BehaviourSummary:
    """A model's :class:`BehaviourSummary` from its error statistics and (optional) fits."""
    set_sizes = statistics.set_sizes
    summary = BehaviourSummary(
        set_sizes=set_sizes,
        mae=statistics.column("mae").tolist(),
        circular_variance=statistics.column("circular_variance").tolist(),
        circular_sd=statistics.column("circular_sd").tolist(),
        meta={"observer": "model"},
    )
    if mixture is not None:
        fitted = [n for n in set_sizes if n in mixture.fits]

        def col(model: str, name: str) -> list[float | None]:
            return [getattr(getattr(mixture.fits[n], model), name) if n in fitted else None
                    for n in set_sizes]

        summary.p_guess = col("vm_uniform", "p_guess")
        summary.vm_sd = col("vm_uniform", "sd")
        if all(hasattr(f, "swap") for f in mixture.fits.values()):
            summary.p_nontarget = col("swap", "p_nontarget")
            summary.p_guess_swap = col("swap", "p_guess")
    return summary


COMPARED = ("mae", "circular_variance", "p_guess")


@dataclass
class HumanComparison:
    """Model and human values, and model / human ratios, at the set sizes both have."""

    set_sizes: list[int]
    model: dict[str, list[float | None]]
    human: dict[str, list[float | None]]
    ratio: dict[str, list[float | None]]
    human_source: str = ""

    def to_dict(self) -> dict:
        return {"set_sizes": self.set_sizes, "model": self.model, "human": self.human,
                "ratio": self.ratio, "human_source": self.human_source}


def human_comparison(model_stats: BehaviourSummary, human_summary: BehaviourSummary
                     ) -> HumanComparison:
    """Ratios model / human per set size for MAE, circular variance and guess rate.

    A ratio is None where either value is missing or the human value is 0 (a guess rate of
    exactly 0 makes the ratio meaningless; near-zero human guess rates at set size 1 make it
    noisy, which the figure shows better than the number).
    """
    shared = [n for n in model_stats.set_sizes if n in human_summary.set_sizes]
    if not shared:
        raise ValueError(f"model_stats: set sizes {model_stats.set_sizes} share none with the "
                         f"human summary's {human_summary.set_sizes}")
    model = {name: [model_stats.value(name, n) for n in shared] for name in COMPARED}
    human = {name: [human_summary.value(name, n) for n in shared] for name in COMPARED}
    ratio = {name: [m / h if m is not None and h else None for m, h in
                    zip(model[name], human[name], strict=True)] for name in COMPARED}
    source = str(human_summary.meta.get("citation", human_summary.meta.get("observer", "")))
    return HumanComparison(set_sizes=shared, model=model, human=human, ratio=ratio,
                           human_source=source)


def run(model, env, *, n_trials: int, seed: int, human_data: str | Path | None = None
        ) -> HumanComparison:
    """The ``human`` analysis: the model's MAE, circular variance and guess rate (von Mises +
    uniform) per set size against people's; from the raw files in ``human_data`` when given,
    else from the shipped summary."""
    data = model_errors(model, env, n_trials=n_trials, seed=seed)
    statistics = error_statistics(data.errors, data.set_size)
    fits = {n: fit_vm_uniform(data.errors[data.set_size == n]) for n in statistics.set_sizes}
    summary = model_summary(statistics)
    summary.p_guess = [fits[n].p_guess for n in statistics.set_sizes]
    if human_data is not None:
        people = human_statistics(load_vandenberg2012(human_data)).summary
        people.meta["citation"] = load_human_summary().meta.get("citation", "")
    else:
        people = load_human_summary()
    return human_comparison(summary, people)


def plot(result: HumanComparison, out_dir: Path) -> list[Path]:
    from analysis.plotting_behaviour import plot_human_comparison

    return [plot_human_comparison(result, Path(out_dir) / "human_comparison.png")]

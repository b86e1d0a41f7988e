"""Figures of the comparison with people (the ``human`` analysis).

* :func:`figure_human_comparison`: model vs people per set size (linear SD, circular
  kurtosis, excess kurtosis over a matched von Mises, von Mises + uniform guess rate and SD, swap
  rate), people as mean +- between-participant SE, and the distance's z-scores;
* :func:`figure_set_size`: the MAE against set size, model and people with the untrained network
  and chance (the run report's first figure);
* :func:`figure_human_histograms`: the error histograms of model and people per set size,
  overlaid.

``plot_human(result, out_dir)`` saves both (``human_statistics_model_vs_people.png``, ``human_error_histograms_model_vs_people.png``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from analysis.viz.figures import save_figure

if TYPE_CHECKING:
    from analysis.human.comparison import HumanComparison

__all__ = [
    "PANELS",
    "draw_model_vs_people",
    "figure_set_size",
    "figure_human_comparison",
    "figure_human_histograms",
    "plot_human",
]

PANELS: dict[str, str] = {
    "linear_sd": "linear SD (rad)",
    "circular_kurtosis": "circular kurtosis",
    "excess_kurtosis": "excess kurtosis vs von Mises",
    "p_guess": "guess rate (VM + U)",
    "vm_sd": "von Mises SD (rad, VM + U)",
    "p_nontarget": "swap rate (Bays 2009)",
}
"""Statistics drawn by :func:`figure_human_comparison` and their axis labels (the MAE is drawn
once, by :func:`figure_set_size`, the run report's first figure)."""

_MODEL, _PEOPLE = "tab:blue", "k"


def _values(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def draw_model_vs_people(
    ax,
    set_sizes,
    model,
    people,
    *,
    model_se=None,
    people_se=None,
    ylabel: str,
    people_label: str = "people (mean ± SE)",
) -> None:
    """The one drawing of a statistic of the model against people's, per set size: the model's
    points (``ax.lines[0]``), people's mean ± SE (``ax.containers[0]``) and, when known, the
    model's bootstrap SE (``ax.containers[1]``). ``None`` values are gaps."""
    n = np.asarray(set_sizes)
    ax.plot(
        n,
        _values(model),
        "o-",
        color=_MODEL,
        label="model ± bootstrap SE" if model_se is not None else "model",
    )
    ax.errorbar(
        n,
        _values(people),
        yerr=None if people_se is None else _values(people_se),
        fmt="s--",
        color=_PEOPLE,
        capsize=2,
        label=people_label,
    )
    if model_se is not None:
        ax.errorbar(n, _values(model), yerr=_values(model_se), fmt="none", ecolor=_MODEL, capsize=2)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_xlabel("set size")
    ax.set_xticks(n)


def figure_human_comparison(result: HumanComparison) -> Figure:
    """Model vs people per set size: people with their between-participant SEs, the model with
    its bootstrap SEs (every statistic of :data:`PANELS`; the MAE is :func:`figure_set_size`'s),
    and the distance's z-scores."""
    fig = Figure(figsize=(11, 5.4), layout="constrained")
    axes = fig.subplots(2, 4).ravel()
    n = np.array(result.set_sizes)
    for ax, (name, label) in zip(axes, PANELS.items(), strict=False):
        draw_model_vs_people(
            ax,
            n,
            result.model.get(name, [None] * n.size),
            result.human.get(name, [None] * n.size),
            model_se=result.model_se.get(name),
            people_se=result.human_se.get(name),
            ylabel=label,
        )
    axes[0].legend(fontsize=7)
    ax = axes[len(PANELS)]
    if result.distance is not None:
        rows = result.distance.per_set_size
        width = 0.27
        for j, name in enumerate(("mae", "guess_rate", "excess_kurtosis")):
            z = _values([row.get(name) for row in rows])
            ax.bar(
                np.array([row["set_size"] for row in rows]) + (j - 1) * width,
                z,
                width,
                label=name.replace("_", " "),
            )
        ax.axhline(0, color="0.3", lw=0.8)
        for bound in (-2, 2):
            ax.axhline(bound, color="0.5", ls=":", lw=0.8)
        ax.set_title(f"distance {result.distance.total:.1f} (sum of z²)", fontsize=9)
        ax.set_ylabel("z (combined SE units)", fontsize=9)
        ax.set_xlabel("set size")
        ax.set_xticks(n)
        ax.legend(fontsize=7)
    else:
        ax.set_visible(False)
    for ax in axes[len(PANELS) + 1 :]:
        ax.set_visible(False)
    source = result.distance.target if result.distance is not None else result.human_source
    fig.suptitle(f"Model vs people: {source[:100]}", fontsize=9)
    return fig


def figure_human_histograms(result: HumanComparison) -> Figure:
    """Error densities of model and people, one panel per set size."""
    set_sizes = [n for n in result.set_sizes if n in result.model_density]
    cols = min(max(len(set_sizes), 1), 4)
    rows = int(np.ceil(max(len(set_sizes), 1) / cols))
    fig = Figure(figsize=(2.8 * cols, 2.3 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False).ravel())
    edges = np.asarray(result.histogram_edges, float)
    for ax, n in zip(axes, set_sizes, strict=False):
        ax.stairs(
            result.human_density[n], edges, fill=True, alpha=0.35, color=_PEOPLE, label="people"
        )
        ax.stairs(result.model_density[n], edges, color=_MODEL, lw=1.5, label="model")
        ax.axhline(1 / (2 * np.pi), color="0.5", lw=0.8, ls=":")
        ax.set_title(f"set size {n}", fontsize=9)
        ax.set_xlim(-np.pi, np.pi)
        ax.set_xlabel("error (rad)", fontsize=8)
        ax.set_ylabel("density (1/rad)", fontsize=8)
    for ax in axes[len(set_sizes) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    return fig


def plot_human(result: HumanComparison, out_dir: Path) -> list[Path]:
    """``human_statistics_model_vs_people.png`` and ``human_error_histograms_model_vs_people.png``."""
    out_dir = Path(out_dir)
    return [
        save_figure(
            figure_human_comparison(result), out_dir / "human_statistics_model_vs_people.png"
        ),
        save_figure(
            figure_human_histograms(result), out_dir / "human_error_histograms_model_vs_people.png"
        ),
    ]


def figure_set_size(curve) -> Figure:
    """MAE against set size, the model's points beside people's (mean ± SE), with the
    untrained network (grey, dashed) and chance (dotted) where the curve has them, from a
    :class:`analysis.report.run_report.SetSizeCurve`: the one drawing of the model's MAE
    against people's (:func:`figure_human_comparison` leaves it out)."""
    figure = Figure(figsize=(5.6, 3.8))
    figure.subplots_adjust(left=0.13, right=0.97, bottom=0.14, top=0.9)
    ax = figure.subplots()
    model_se = getattr(curve, "model_se", None)
    draw_model_vs_people(
        ax,
        curve.set_sizes,
        curve.model,
        curve.human,
        model_se=model_se if model_se and any(model_se) else None,
        people_se=[0.0 if se is None else se for se in curve.human_se],
        ylabel="mean absolute error (rad)",
        people_label="people (mean ± SE)",
    )
    untrained = getattr(curve, "untrained", None)
    if untrained and any(v is not None for v in untrained):
        ax.plot(
            curve.set_sizes,
            _values(untrained),
            "^--",
            color="0.55",
            label="untrained network",
            gid="untrained",
        )
    chance = getattr(curve, "chance", None)
    if chance is not None:
        ax.axhline(chance, color="0.4", ls=":", lw=1, label="chance (guessing)", gid="chance")
    ax.set_title("Recall error against set size")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return figure


# ----------------------------------------------------------------------------------------------
# Sections

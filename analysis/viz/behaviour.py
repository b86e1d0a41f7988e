"""Figures of the behavioural analyses (errors, mixture fits, task performance).

``figure_<x>(result) -> Figure`` builds a figure; ``plot_<name>(result, out_dir) -> list[Path]``
saves the figures of the analysis ``<name>`` (the CLI pairs it with ``analysis.<name>:run``).
Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, no backend
switching), so they work in notebooks and headless alike. The comparison with people is drawn
by :mod:`analysis.viz.human`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter, NullLocator, ScalarFormatter

from analysis.viz.figures import save_figure

if TYPE_CHECKING:
    from analysis.behaviour.errors import ErrorsResult, ErrorStatistics
    from analysis.behaviour.mixture import MixtureResult
    from analysis.behaviour.performance import PerformanceResult
    from analysis.human.comparison import BehaviourSummary

__all__ = [
    "figure_error_histograms",
    "figure_error_statistics",
    "figure_mixture_parameters",
    "figure_mixture_densities",
    "figure_performance",
    "plot_errors",
    "plot_mixture",
    "plot_performance",
]



def _grid(n_panels: int, width: float = 2.6, height: float = 2.2) -> tuple[Figure, np.ndarray]:
    cols = min(n_panels, 4)
    rows = int(np.ceil(n_panels / cols))
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes


def _set_size_axis(ax, set_sizes=None) -> None:
    """Integer set-size ticks (on a log axis: one labelled tick per set size)."""
    ax.set_xlabel("set size")
    if ax.get_xscale() == "log" and set_sizes is not None:
        ax.set_xticks(sorted(set(set_sizes)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _densities_panel(ax, edges, density, title: str) -> None:
    ax.stairs(density, edges, fill=True, alpha=0.5, color="tab:blue")
    ax.axhline(1 / (2 * np.pi), color="0.5", lw=0.8, ls=":")
    ax.set_title(title, fontsize=9)
    ax.set_xlim(-np.pi, np.pi)


def figure_error_histograms(result: ErrorsResult) -> Figure:
    """Density histograms of the errors, one panel per set size (dotted: chance density)."""
    edges, density = result.histogram()
    set_sizes = sorted(density)
    fig, axes = _grid(max(len(set_sizes), 1))
    for ax, n in zip(axes, set_sizes, strict=False):
        stats = result.statistics.per_set_size[n]
        _densities_panel(ax, edges, density[n], f"N = {n}: MAE {stats.mae:.2f} rad")
    for ax in axes[-min(4, len(axes)):]:
        ax.set_xlabel("error (rad)")
    fig.suptitle("Recall errors by set size")
    return fig


def figure_error_statistics(statistics: ErrorStatistics,
                            human: BehaviourSummary | None = None) -> Figure:
    """MAE, circular variance (-2 ln R, log-log) and kurtosis against set size (with people's
    values and between-participant SEs when ``human`` is given)."""
    fig = Figure(figsize=(10, 3), layout="constrained")
    axes = fig.subplots(1, 3)
    n = np.array(statistics.set_sizes)
    panels = [("mae", "mean abs. error (rad)", False),
              ("circular_variance", "circular variance -2 ln R", True),
              ("circular_kurtosis", "circular kurtosis", False)]
    for ax, (name, label, loglog) in zip(axes, panels, strict=True):
        ax.plot(n, statistics.column(name), "o-", label="model")
        if human is not None and getattr(human, name):
            values = np.array([np.nan if v is None else v for v in getattr(human, name)], float)
            se = human.standard_errors.get(name)
            ax.errorbar(human.set_sizes, values,
                        yerr=None if se is None else np.array(se, float), fmt="s--",
                        color="k", capsize=2, label="people (mean +- SE)")
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")
        _set_size_axis(ax, [*n, *(human.set_sizes if human is not None else [])])
        ax.set_ylabel(label)
    axes[0].axhline(np.pi / 2, color="0.5", ls=":", lw=0.8)
    axes[0].legend(fontsize=8)
    return fig


def figure_mixture_parameters(result: MixtureResult) -> Figure:
    """Guess rates, swap rate and component SDs of the three models against set size."""
    n = np.array(result.set_sizes)
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax_rate, ax_sd = fig.subplots(1, 2)
    ax_rate.plot(n, result.column("vm_uniform", "p_guess"), "o-", label="VM+U guess")
    ax_rate.plot(n, result.column("gauss_uniform", "p_guess"), "^-", label="Gauss+U guess")
    ax_rate.plot(n, result.column("swap", "p_guess"), "s-", label="swap: uniform")
    ax_rate.plot(n, result.column("swap", "p_nontarget"), "d-", label="swap: non-target")
    _set_size_axis(ax_rate)
    ax_rate.set_ylabel("mixture weight")
    ax_rate.set_ylim(0, 1)
    ax_rate.legend(fontsize=7)
    ax_sd.plot(n, result.column("vm_uniform", "sd"), "o-", label="VM+U (k2sd)")
    ax_sd.plot(n, result.column("gauss_uniform", "sigma"), "^-", label="Gauss+U sigma")
    ax_sd.plot(n, result.column("swap", "sd"), "s-", label="swap (k2sd)")
    _set_size_axis(ax_sd)
    ax_sd.set_ylabel("component SD (rad)")
    ax_sd.legend(fontsize=7)
    return fig


def figure_mixture_densities(result: MixtureResult, bins: int = 60) -> Figure:
    """Error histograms with the fitted von Mises + uniform and Gaussian + uniform densities."""
    set_sizes = result.set_sizes
    fig, axes = _grid(len(set_sizes))
    edges = np.linspace(-np.pi, np.pi, bins + 1)
    grid = np.linspace(-np.pi, np.pi, 400)
    for ax, n in zip(axes, set_sizes, strict=False):
        fits = result.fits[n]
        if result.errors is not None:
            density, _ = np.histogram(result.errors[result.set_size == n], edges, density=True)
            _densities_panel(ax, edges, density, f"N = {n} ({fits.n_trials} trials)")
        ax.plot(grid, fits.vm_uniform.pdf(grid), color="tab:red", lw=1.2, label="VM + U")
        ax.plot(grid, fits.gauss_uniform.pdf(grid), color="tab:green", lw=1.0, ls="--",
                label="Gauss + U")
    axes[0].legend(fontsize=7)
    fig.suptitle("Mixture fits")
    return fig


def figure_performance(result: PerformanceResult) -> Figure:
    """Performance per epoch and per trial condition (one panel per condition variable)."""
    conditions = list(result.by_condition)
    fig = Figure(figsize=(3.2 * (1 + len(conditions)), 3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 1 + len(conditions), squeeze=False).ravel())
    label = result.metric_label
    epochs = list(result.by_epoch)
    per_epoch = [np.nan if result.by_epoch[e] is None else result.by_epoch[e] for e in epochs]
    axes[0].bar(range(len(epochs)), per_epoch, color="tab:blue")
    axes[0].set_xticks(range(len(epochs)), epochs, rotation=30, fontsize=8)
    axes[0].set_ylabel(f"{label} per step")
    axes[0].set_title(f"{result.task}: by epoch", fontsize=9)
    for ax, name in zip(axes[1:], conditions, strict=True):
        groups = result.by_condition[name]
        values = list(groups)
        ax.bar(range(len(values)), [groups[v]["score"] for v in values], color="tab:orange")
        ax.set_xticks(range(len(values)), values, rotation=30, fontsize=8)
        ax.set_title(f"by {name}", fontsize=9)
        ax.set_ylabel(f"trial {label}")
    if result.chance is not None:
        for ax in axes[1:]:
            ax.axhline(result.chance, color="0.5", ls=":", lw=0.8)
    return fig


def plot_errors(result: ErrorsResult, out_dir: Path) -> list[Path]:
    """``error_hist.png`` and ``error_statistics.png`` (people's shipped summary overlaid)."""
    from analysis.human.comparison import load_human_summary

    out_dir = Path(out_dir)
    return [save_figure(figure_error_histograms(result), out_dir / "error_hist.png"),
            save_figure(figure_error_statistics(result.statistics, human=load_human_summary()),
                        out_dir / "error_statistics.png")]


def plot_mixture(result: MixtureResult, out_dir: Path) -> list[Path]:
    """``mixture_parameters.png`` and ``mixture_fits.png``."""
    out_dir = Path(out_dir)
    return [save_figure(figure_mixture_parameters(result), out_dir / "mixture_parameters.png"),
            save_figure(figure_mixture_densities(result), out_dir / "mixture_fits.png")]


def plot_performance(result: PerformanceResult, out_dir: Path) -> list[Path]:
    """``performance.png``."""
    return [save_figure(figure_performance(result), Path(out_dir) / "performance.png")]

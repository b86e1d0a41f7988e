"""Figures of the behavioural analyses (errors, mixture fits, comparison with people).

Each function takes a result object and a path, writes one PNG and returns the path. Figures are
built with ``matplotlib.figure.Figure`` directly (no pyplot state, no backend switching).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter, NullLocator, ScalarFormatter

if TYPE_CHECKING:
    from analysis.errors import ErrorsResult, ErrorStatistics
    from analysis.human import BehaviourSummary, HumanComparison
    from analysis.mixture import MixtureResult

__all__ = [
    "plot_error_histograms",
    "plot_error_statistics",
    "plot_mixture_parameters",
    "plot_mixture_densities",
    "plot_human_comparison",
]

_DPI = 100


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


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


def plot_error_histograms(result: ErrorsResult, path: Path) -> Path:
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
    return _save(fig, path)


def plot_error_statistics(statistics: ErrorStatistics, path: Path,
                          human: BehaviourSummary | None = None) -> Path:
    """MAE, circular variance (-2 ln R, log-log) and kurtosis against set size."""
    fig = Figure(figsize=(10, 3), layout="constrained")
    axes = fig.subplots(1, 3)
    n = np.array(statistics.set_sizes)
    panels = [("mae", "mean abs. error (rad)", False),
              ("circular_variance", "circular variance -2 ln R", True),
              ("circular_kurtosis", "circular kurtosis", False)]
    for ax, (name, label, loglog) in zip(axes, panels, strict=True):
        ax.plot(n, statistics.column(name), "o-", label="model")
        if human is not None and name in ("mae", "circular_variance"):
            ax.plot(human.set_sizes, getattr(human, name), "s--", color="k", label="human")
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")
        _set_size_axis(ax, [*n, *(human.set_sizes if human is not None else [])])
        ax.set_ylabel(label)
    axes[0].axhline(np.pi / 2, color="0.5", ls=":", lw=0.8)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_mixture_parameters(result: MixtureResult, path: Path) -> Path:
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
    return _save(fig, path)


def plot_mixture_densities(result: MixtureResult, path: Path, bins: int = 60) -> Path:
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
    return _save(fig, path)


def plot_human_comparison(result: HumanComparison, path: Path) -> Path:
    """Model and human MAE, circular variance and guess rate against set size."""
    labels = {"mae": "mean abs. error (rad)", "circular_variance": "circular variance -2 ln R",
              "p_guess": "guess rate (VM + U)"}
    fig = Figure(figsize=(10, 3), layout="constrained")
    axes = fig.subplots(1, len(labels))
    n = np.array(result.set_sizes)
    for ax, (name, label) in zip(axes, labels.items(), strict=True):
        for who, style, values in (("model", "o-", result.model[name]),
                                   ("human", "s--", result.human[name])):
            y = np.array([np.nan if v is None else v for v in values], float)
            ax.plot(n, y, style, label=who, color="tab:blue" if who == "model" else "k")
        _set_size_axis(ax)
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("Model vs. human (van den Berg et al. 2012, orientation)", fontsize=10)
    return _save(fig, path)

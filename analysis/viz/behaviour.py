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
    ax.set_xlabel("error (rad)", fontsize=8)
    ax.set_ylabel("density (1/rad)", fontsize=8)


def figure_error_histograms(result: ErrorsResult) -> Figure:
    """Density histograms of the errors, one panel per set size (dotted: chance density)."""
    edges, density = result.histogram()
    set_sizes = sorted(density)
    fig, axes = _grid(max(len(set_sizes), 1))
    for ax, n in zip(axes, set_sizes, strict=False):
        stats = result.statistics.per_set_size[n]
        _densities_panel(ax, edges, density[n], f"set size {n}: MAE {stats.mae:.2f} rad")
    fig.suptitle("Recall errors by set size")
    return fig


ERROR_STATISTIC_PANELS: dict[str, str] = {
    "circular_sd": "circular SD (rad)",
    "circular_kurtosis": "circular kurtosis",
    "excess_kurtosis": "excess kurtosis vs von Mises",
}
"""The panels of :func:`figure_error_statistics` and their axis labels (MAE against set size
is drawn once, against people's, by :func:`analysis.viz.human.figure_human_comparison`)."""


def _with_se(ax, n, values, se, **style) -> None:
    """A statistic against set size, with its bootstrap SE when known."""
    ax.errorbar(n, values, yerr=se, capsize=2, **style)


def figure_error_statistics(statistics: ErrorStatistics) -> Figure:
    """Circular SD, circular kurtosis and its excess over a von Mises against set size, each
    with its bootstrap SE over trials."""
    fig = Figure(figsize=(9, 2.8), layout="constrained")
    axes = fig.subplots(1, len(ERROR_STATISTIC_PANELS))
    n = np.array(statistics.set_sizes)
    for ax, (name, label) in zip(axes, ERROR_STATISTIC_PANELS.items(), strict=True):
        _with_se(
            ax, n, statistics.column(name), statistics.se_column(name), fmt="o-", color="tab:blue"
        )
        _set_size_axis(ax)
        ax.set_ylabel(label)
    axes[2].axhline(0.0, color="0.5", ls=":", lw=0.8)
    return fig


def figure_mixture_parameters(result: MixtureResult) -> Figure:
    """Guess rates, swap rate and component SDs of the three models against set size, each
    with its bootstrap SE over trials."""
    n = np.array(result.set_sizes)
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax_rate, ax_sd = fig.subplots(1, 2)
    rates = [
        ("vm_uniform", "p_guess", "o-", "VM+U guess"),
        ("gauss_uniform", "p_guess", "^-", "Gauss+U guess"),
        ("swap", "p_guess", "s-", "swap model: guess"),
        ("swap", "p_nontarget", "d-", "swap model: swap"),
    ]
    sds = [
        ("vm_uniform", "sd", "o-", "VM+U (circular SD)"),
        ("gauss_uniform", "sigma", "^-", "Gauss+U sigma"),
        ("swap", "sd", "s-", "swap model (circular SD)"),
    ]
    for ax, series in ((ax_rate, rates), (ax_sd, sds)):
        for model, parameter, fmt, label in series:
            _with_se(
                ax,
                n,
                result.column(model, parameter),
                result.se_column(model, parameter),
                fmt=fmt,
                label=label,
            )
        _set_size_axis(ax)
        ax.legend(fontsize=7)
    ax_rate.set_ylabel("mixture weight (probability)")
    ax_rate.set_ylim(0, 1)
    ax_sd.set_ylabel("component SD (rad)")
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
            _densities_panel(ax, edges, density, f"set size {n} ({fits.n_trials} errors)")
        ax.plot(grid, fits.vm_uniform.pdf(grid), color="tab:red", lw=1.2, label="VM + U")
        ax.plot(
            grid,
            fits.gauss_uniform.pdf(grid),
            color="tab:green",
            lw=1.0,
            ls="--",
            label="Gauss + U",
        )
    axes[0].legend(fontsize=7)
    fig.suptitle("Mixture fits")
    return fig


def figure_performance(result: PerformanceResult) -> Figure:
    """Performance per epoch that has a score (epochs without one are left out), and per trial
    condition (one panel per condition variable, each bar ± SE over its trials with its trial
    count under it); chance (dotted) where the task defines it."""
    conditions = list(result.by_condition)
    # a condition panel widens with its levels, so each bar's count under it stays readable
    widths = [3.2] + [max(3.2, 0.6 * len(result.by_condition[c])) for c in conditions]
    fig = Figure(figsize=(min(sum(widths), 12.0), 3), layout="constrained")
    axes = np.atleast_1d(
        fig.subplots(1, 1 + len(conditions), squeeze=False, width_ratios=widths).ravel()
    )
    label = result.metric_label
    epochs = [e for e, score in result.by_epoch.items() if score is not None]
    axes[0].bar(range(len(epochs)), [result.by_epoch[e] for e in epochs], color="tab:blue")
    axes[0].set_xticks(range(len(epochs)), epochs, rotation=30, fontsize=8)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel(f"{label} per step")
    axes[0].set_title(f"{result.task}: by epoch", fontsize=9)
    for ax, name in zip(axes[1:], conditions, strict=True):
        groups = result.by_condition[name]
        values = list(groups)
        ses = [groups[v].get("se") for v in values]
        ax.bar(
            range(len(values)),
            [groups[v]["score"] for v in values],
            yerr=None if all(se is None for se in ses) else [se or 0.0 for se in ses],
            capsize=2,
            color="tab:orange",
        )
        # each bar's trial count under its label: a bar of 48 trials is not one of 500
        labels = [f"{v}\n(n={groups[v]['n']})" if "n" in groups[v] else v for v in values]
        ax.set_xticks(range(len(values)), labels, fontsize=7)
        ax.set_title(f"by {name.replace('_', ' ')}", fontsize=9)
        ax.set_xlabel(name.replace("_", " "))
        ax.set_ylabel(f"trial {label}")
    if result.chance is not None:
        for ax in axes[1:]:
            ax.axhline(result.chance, color="0.5", ls=":", lw=0.8)
    return fig


def plot_errors(result: ErrorsResult, out_dir: Path) -> list[Path]:
    """``error_histograms_by_set_size.png`` and ``error_sd_and_kurtosis_vs_set_size.png``."""
    out_dir = Path(out_dir)
    return [
        save_figure(figure_error_histograms(result), out_dir / "error_histograms_by_set_size.png"),
        save_figure(
            figure_error_statistics(result.statistics),
            out_dir / "error_sd_and_kurtosis_vs_set_size.png",
        ),
    ]


def plot_mixture(result: MixtureResult, out_dir: Path) -> list[Path]:
    """``mixture_parameters_vs_set_size.png`` and ``mixture_fits_on_error_histograms.png``."""
    out_dir = Path(out_dir)
    return [
        save_figure(
            figure_mixture_parameters(result), out_dir / "mixture_parameters_vs_set_size.png"
        ),
        save_figure(
            figure_mixture_densities(result), out_dir / "mixture_fits_on_error_histograms.png"
        ),
    ]


def plot_performance(result: PerformanceResult, out_dir: Path) -> list[Path]:
    """``performance_by_epoch_and_condition.png``."""
    return [
        save_figure(
            figure_performance(result), Path(out_dir) / "performance_by_epoch_and_condition.png"
        )
    ]

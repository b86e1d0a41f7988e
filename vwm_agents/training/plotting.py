"""Plots of a run's training history (computing stays in the trainer; this only draws)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

__all__ = [
    "plot_training_history",
    "figure_sweep_error_vs_set_size",
    "plot_sweep_error_vs_set_size",
]


def plot_training_history(
    history: Sequence[dict[str, Any]], path: str | Path | None = None
) -> Figure:
    """Error (per set size where known), firing rate and learning rate against iteration.

    Args:
        history: the records of the run's history (:func:`vwm_agents.training.rundir.read_history`).
        path: where to save the figure (PNG); None only returns it.
    """
    iterations = [record["iteration"] for record in history]
    figure = Figure(figsize=(12, 3.6))
    # fixed margins: a layout engine costs more than the drawing itself
    figure.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.91, wspace=0.3)
    error_ax, rate_ax, lr_ax = figure.subplots(1, 3)
    sizes = list(history[-1].get("per_set_size", {})) if history else []
    colours = _colours(len(sizes))
    for size, colour in zip(sizes, colours, strict=True):
        values = [_get(r.get("per_set_size", {}).get(size, {}), "error") for r in history]
        error_ax.plot(iterations, values, color=colour, lw=1, label=f"set size {size}")
    if len(sizes) > MAX_LEGEND_SET_SIZES:  # shades nobody can tell apart in a legend: a colour bar
        _set_size_colour_bar(figure, error_ax, sizes)
    error_ax.plot(iterations, [_get(r, "error") for r in history], color="k", lw=1.5, label="all")
    if any(r.get("val_error") is not None for r in history):
        error_ax.plot(
            iterations, [_get(r, "val_error") for r in history], "k--", lw=1, label="validation"
        )
    _legend_of_visible(error_ax, skip_set_sizes=len(sizes) > MAX_LEGEND_SET_SIZES)
    error_ax.set(xlabel="iteration", ylabel="error (rad)" if sizes else "error", title="Error")
    rate_ax.plot(iterations, [_get(r, "rate") for r in history], color="tab:red")
    rate_ax.set(xlabel="iteration", ylabel="mean |rate| (Hz)", title="Activity")
    lr_ax.plot(iterations, [r["lr"] for r in history], color="tab:blue")
    lr_ax.set(xlabel="iteration", ylabel="learning rate", yscale="log", title="Learning rate")
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


MAX_LEGEND_SET_SIZES = 6
"""More set sizes than this get a labelled colour bar instead of legend entries."""


def _legend_of_visible(ax, *, skip_set_sizes: bool) -> None:
    """A legend of exactly the series drawn with data (a series of only missing values, e.g. a
    validation error never logged, is left out; so are the set sizes a colour bar names)."""
    import math

    shown = [
        line
        for line in ax.get_lines()
        if any(math.isfinite(y) for y in line.get_ydata())
        and not (skip_set_sizes and line.get_label().startswith("set size "))
    ]
    if shown:
        ax.legend(handles=shown, fontsize=7, ncol=2)


def _set_size_colour_bar(figure: Figure, ax, sizes: list[str]) -> None:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm

    values = [int(s) for s in sizes]
    edges = [v - 0.5 for v in values] + [values[-1] + 0.5]
    cmap = colormaps["viridis"].resampled(len(values))  # the colours of _colours, one per size
    mappable = ScalarMappable(norm=BoundaryNorm(edges, len(values)), cmap=cmap)
    bar = figure.colorbar(mappable, ax=ax, ticks=values, pad=0.01)
    bar.set_label("set size")


def _get(record: dict[str, Any], key: str) -> float:
    value = record.get(key)
    return float("nan") if value is None else float(value)


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


# ----------------------------------------------------------------------------------------------
# Sweeps (vwm_agents.sweep)

SWEEP_FIGURE = "sweep_error_vs_set_size.png"


def figure_sweep_error_vs_set_size(curves: Sequence[Any], *, title: str = "") -> Figure:
    """Error against set size, one curve per swept setting, mean +/- SEM over seeds.

    Args:
        curves: :class:`vwm_agents.sweep.results.ErrorCurve` objects (``set_sizes``, ``mean``,
            ``sem`` -- nan where one seed finished --, ``label``).
    """
    import math

    figure = Figure(figsize=(6, 4.2), layout="constrained")
    ax = figure.add_subplot()
    for curve in curves:
        sem = [0.0 if math.isnan(s) else s for s in curve.sem]
        ax.errorbar(curve.set_sizes, curve.mean, yerr=sem, marker="o", capsize=3, label=curve.label)
    ax.axhline(math.pi / 2, linestyle=":", color="grey", label="chance (\u03c0/2)")
    ax.set_xticks(sorted({size for curve in curves for size in curve.set_sizes}))
    ax.set_xlabel("set size")
    ax.set_ylabel("mean absolute error (rad)")
    ax.set_title(f"{title}: mean \u00b1 SEM over seeds" if title else "mean \u00b1 SEM over seeds")
    ax.legend(fontsize="small")
    return figure


def plot_sweep_error_vs_set_size(
    curves: Sequence[Any], out_dir: str | Path, *, title: str = ""
) -> list[Path]:
    """Save :func:`figure_sweep_error_vs_set_size` as ``out_dir/sweep_error_vs_set_size.png``."""
    path = Path(out_dir) / SWEEP_FIGURE
    figure_sweep_error_vs_set_size(curves, title=title).savefig(path, dpi=120)
    return [path]

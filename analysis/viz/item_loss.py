"""Figure of :mod:`analysis.neural.item_loss`: readout lengths per set size, a model against a
control (or one model alone, as ``python -m analysis`` draws it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from analysis.neural.item_loss import ItemLoss
from analysis.viz.figures import save_figure


def plot_item_loss(
    results: Sequence[tuple[str, ItemLoss]], path: Path, set_sizes: Sequence[int] = (1, 2, 4, 8)
) -> Path:
    """One row per (label, result): histograms of each item's readout length (log axis) at
    ``set_sizes``, with the share of items below the trough between the two modes and their MAE,
    and Silverman's p-value (one mode vs more); then MAE against readout length, and MAE against
    the gain each item drew (tasks with ``item_gain``), in deciles per set size."""
    columns = len(set_sizes) + 2
    # at most 13 inches wide, so that it reads at 100 dpi
    fig = Figure(figsize=(min(13.0, 2.2 * columns), 2.3 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), columns, squeeze=False)
    # up to the longest readout of any result: under the `rad` loss lengths exceed 1
    longest = max(float(np.max(r.readouts.length, initial=1.0)) for _, r in results)
    bins = np.logspace(-3, np.log10(max(3.2, 1.1 * longest)), 50)
    colours = {
        n: c for n, c in zip(set_sizes, ("#1b9e77", "#7570b3", "#d95f02", "#e7298a"), strict=False)
    }
    for row, (label, result) in enumerate(results):
        data = result.readouts
        for col, n in enumerate(set_sizes):
            ax = axes[row, col]
            rows = data.set_size == n
            ax.hist(
                np.maximum(data.length[rows], 1e-3),
                bins=bins,
                color=colours.get(n, "grey"),
                density=False,
            )
            ax.set_xscale("log")
            p = result.modes[n]["p_value"]
            text = f"one mode: p = {p:.3f}" if p >= 0.001 else "one mode: p < 0.001"
            split = result.split.get(n)
            if split is not None and p < 0.05:
                ax.axvline(split["length"], color="k", lw=0.8, ls="--")
                text += (
                    f"\nbelow trough: {100 * split['fraction_below']:.0f} %"
                    f"\nMAE {split['mae_below']:.2f} vs {split['mae_above']:.2f} rad"
                )
            ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=7)
            ax.set_title(f"{label}: set size {n}" if col == 0 else f"set size {n}", fontsize=8)
            if row == len(results) - 1:
                ax.set_xlabel("readout length (target = 1)")
            ax.set_ylabel(f"items ({data.n_trials} trials)" if col == 0 else "items")
        _binned_mae(
            axes[row, -2],
            data.length,
            data,
            set_sizes,
            colours,
            "readout length (target = 1)",
            log=True,
            limits=(bins[0], bins[-1]),
            legend=row == 0,
        )
        if data.gain is None:
            axes[row, -1].text(
                0.5,
                0.5,
                "no gain drawn\n(task without item_gain)",
                ha="center",
                va="center",
                transform=axes[row, -1].transAxes,
                fontsize=8,
            )
            axes[row, -1].set_axis_off()
        else:
            _binned_mae(
                axes[row, -1],
                data.gain,
                data,
                set_sizes,
                colours,
                "drawn gain (lone item = 1)",
                log=True,
                limits=(3e-3, 3),
                legend=False,
            )
    return save_figure(fig, Path(path))


def plot_item_loss_run(result: ItemLoss, out_dir: Path) -> list[Path]:
    """The registry's figure: one run's readout lengths and errors against them (and against the
    drawn gain), at up to four of its set sizes (the smallest, the largest and two between)."""
    sizes = list(result.set_sizes)
    shown = sorted({sizes[round(i * (len(sizes) - 1) / 3)] for i in range(4)}) if sizes else []
    return [
        plot_item_loss(
            [("model", result)],
            Path(out_dir) / "item_loss_readout_length_and_error.png",
            set_sizes=shown,
        )
    ]


def _binned_mae(
    ax,
    x: np.ndarray,
    data,
    set_sizes,
    colours,
    label: str,
    *,
    log: bool,
    limits: tuple[float, float],
    legend: bool,
) -> None:
    """MAE of the items in each decile of ``x`` (per set size) against the decile's median."""
    for n in set_sizes:
        rows = data.set_size == n
        values, errors = x[rows], np.abs(data.error[rows])
        edges = np.quantile(values, np.linspace(0, 1, 11))
        which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, 9)
        centres, mae = [], []
        for b in range(10):
            inside = which == b
            if inside.sum() >= 20 and np.median(values[inside]) > 0:
                centres.append(np.median(values[inside]))
                mae.append(errors[inside].mean())
        ax.plot(centres, mae, "o-", ms=3, color=colours.get(n, "grey"), label=f"set size {n}")
    ax.axhline(np.pi / 2, color="grey", lw=0.8, ls=":")  # MAE of a guess
    if log:
        ax.set_xscale("log")
    ax.set_xlim(*limits)
    ax.set_ylim(0, 1.75)
    ax.set_ylabel("MAE (rad)")
    ax.set_xlabel(label)
    ax.set_title(f"error vs {label.split(' (')[0]} (deciles)", fontsize=8)
    if legend:
        ax.legend(fontsize=6, frameon=False)

"""Plots of a run's training history (computing stays in the trainer; this only draws)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

__all__ = ["plot_training_history"]


def plot_training_history(history: Sequence[dict[str, Any]], path: str | Path | None = None) -> Figure:
    """Error (per set size where known), firing rate and learning rate against iteration.

    Args:
        history: the records of ``history.yaml``.
        path: where to save the figure (PNG); None only returns it.
    """
    iterations = [record["iteration"] for record in history]
    figure = Figure(figsize=(12, 3.6))
    # fixed margins: a layout engine costs more than the drawing itself
    figure.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.91, wspace=0.3)
    error_ax, rate_ax, lr_ax = figure.subplots(1, 3)
    sizes = list(history[-1].get("per_set_size", {})) if history else []
    if sizes:
        colours = _colours(len(sizes))
        for size, colour in zip(sizes, colours, strict=True):
            values = [_get(r.get("per_set_size", {}).get(size, {}), "error") for r in history]
            error_ax.plot(iterations, values, color=colour, lw=1, label=f"N={size}")
        error_ax.legend(fontsize=7, ncol=2)
    error_ax.plot(iterations, [_get(r, "error") for r in history], color="k", lw=1.5, label="all")
    if any(r.get("heldout_error") is not None for r in history):
        error_ax.plot(iterations, [_get(r, "heldout_error") for r in history], "k--", lw=1,
                      label="held-out")
    error_ax.set(xlabel="iteration", ylabel="error (rad)" if sizes else "error", title="Error")
    rate_ax.plot(iterations, [_get(r, "activation") for r in history], color="tab:red")
    rate_ax.set(xlabel="iteration", ylabel="mean |rate| (Hz)", title="Activity")
    lr_ax.plot(iterations, [r["lr"] for r in history], color="tab:blue")
    lr_ax.set(xlabel="iteration", ylabel="learning rate", yscale="log", title="Learning rate")
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def _get(record: dict[str, Any], key: str) -> float:
    value = record.get(key)
    return float("nan") if value is None else float(value)


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]

"""Figures of population dynamics: trajectories in PC space coloured by epoch, and the fixed
points with their PCA views (trajectories, decoded angle, searches) and eigenvalues.

Epoch colours follow each trial's own epoch boundaries, as the env gave them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.viz.figures import save_figure

__all__ = [
    "VWM_EPOCH_COLOURS",
    "epoch_colours",
    "draw_trajectories",
    "figure_trajectories",
    "figure_fixed_points_pca",
    "figure_fixed_points_decoded",
    "figure_fixed_points_search",
    "figure_fixed_points_eigenvalues",
    "plot_trajectories",
    "plot_fixed_points",
]

VWM_EPOCH_COLOURS = {
    "init": "0.6",
    "stimulus": "goldenrod",
    "delay": "seagreen",
    "decode": "royalblue",
}
"""The reference's colours: stimulus gold, delay green, decode blue."""


def epoch_colours(epochs) -> dict[str, object]:
    """A colour per epoch name: the reference's for VWM epochs, tab10 in order for any other."""
    from matplotlib import colormaps

    cycle = colormaps["tab10"].colors
    others = [name for name in epochs if name not in VWM_EPOCH_COLOURS]
    return {
        name: VWM_EPOCH_COLOURS.get(name) or cycle[others.index(name) % len(cycle)]
        for name in epochs
    }


def draw_trajectories(
    ax, projection: np.ndarray, epochs: dict[str, np.ndarray], dims=(0, 1)
) -> None:
    """Each trial's steps of each epoch as one line (from the epoch's previous step, so the
    pieces join), coloured by epoch; the line's gid is ``"<epoch>:<trial>"``."""
    colours = epoch_colours(epochs)
    i, j = dims
    for name, bounds in epochs.items():
        bounds = np.broadcast_to(np.asarray(bounds), (projection.shape[0], 2))
        for trial, (start, end) in enumerate(bounds):
            if end <= start:
                continue
            segment = projection[trial, max(start - 1, 0) : end]
            ax.plot(
                segment[:, i], segment[:, j], color=colours[name], lw=0.7, gid=f"{name}:{trial}"
            )
    ax.set_xlabel(f"PC{i + 1}")
    ax.set_ylabel(f"PC{j + 1}")


def _epoch_legend(ax, epochs, extra=()) -> None:
    colours = epoch_colours(epochs)
    handles = [Line2D([], [], color=colours[name], label=name) for name in epochs]
    ax.legend(handles=handles + list(extra), fontsize=7)


def _pairs(n_components: int) -> list[tuple[int, int]]:
    return [(0, 1), (0, 2)] if n_components >= 3 else [(0, 1)]


def figure_trajectories(result) -> Figure:
    """Trajectories in PC1-PC2 (and PC1-PC3), coloured by the env's epochs."""
    k = result.projection.shape[-1]
    pairs = _pairs(k)
    fig = Figure(figsize=(5 * len(pairs), 4.5))
    axes = np.atleast_1d(fig.subplots(1, len(pairs)))
    for ax, dims in zip(axes, pairs, strict=True):
        draw_trajectories(ax, result.projection, result.epochs, dims)
    _epoch_legend(axes[0], result.epochs)
    ratio = ", ".join(f"{v:.0%}" for v in result.explained_variance_ratio)
    shown = result.projection.shape[0]
    fig.suptitle(
        f"{result.task}: {shown} of {result.n_trials} trials shown in PC space (PCA of all "
        f"{result.n_trials}; variance {ratio})",
        fontsize=10,
    )
    return fig


def plot_trajectories(result, out_dir: Path) -> list[Path]:
    return [
        save_figure(figure_trajectories(result), Path(out_dir) / "trajectories_pca_by_epoch.png")
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _scatter_points(ax, result, dims) -> list:
    views = result.views
    i, j = dims
    stable = result.stable
    handles = []  # only series that are drawn
    if result.n_points:
        ax.scatter(
            views.points[stable, i], views.points[stable, j], c="k", s=30, zorder=3, gid="stable"
        )
        ax.scatter(
            views.points[~stable, i],
            views.points[~stable, j],
            c="r",
            marker="x",
            s=30,
            zorder=3,
            gid="unstable",
        )
    if stable.any():
        handles.append(
            Line2D([], [], color="k", marker="o", ls="", label=f"stable ({int(stable.sum())})")
        )
    if (~stable).any():
        handles.append(
            Line2D([], [], color="r", marker="x", ls="", label=f"unstable ({int((~stable).sum())})")
        )
    return handles


def figure_fixed_points_pca(result) -> Figure:
    """Trajectories (by epoch) with the stable and unstable fixed points, in PC space."""
    views = result.views
    k = views.trajectories.shape[-1]
    pairs = _pairs(k)
    fig = Figure(figsize=(5 * len(pairs), 4.5))
    axes = np.atleast_1d(fig.subplots(1, len(pairs)))
    projection = np.where(views.valid[..., None], views.trajectories, np.nan)
    for ax, dims in zip(axes, pairs, strict=True):
        draw_trajectories(ax, projection, views.epochs, dims)
        handles = _scatter_points(ax, result, dims)
    _epoch_legend(axes[0], views.epochs, handles)
    fig.suptitle(
        f"trajectories and fixed points ({_count(result.n_points, 'point')}, from {result.epoch})"
    )
    return fig


def figure_fixed_points_decoded(result) -> Figure:
    """Left: fixed points in PC1-PC2 coloured by their decoded angle, with the trial ends coloured
    by the item's angle; right: the decoded angles on the circle."""
    from matplotlib import colormaps

    views = result.views
    hsv = colormaps["hsv"]
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    angle_kind = views.decoded_kind == "angle"
    # classes: one tab10 colour per integer (classes >= 10 wrap around)
    norm_kw = (
        {"cmap": hsv, "vmin": -np.pi, "vmax": np.pi}
        if angle_kind
        else {"cmap": "tab10", "vmin": -0.5, "vmax": 9.5}
    )
    if views.trial_label is not None:
        left.scatter(
            views.trial_ends[:, 0],
            views.trial_ends[:, 1],
            c=views.trial_label,
            marker="^",
            s=25,
            alpha=0.6,
            gid="trial_ends",
            **({"cmap": hsv, "vmin": -np.pi, "vmax": np.pi}),
        )
    elif views.trial_ends_decoded is not None and not angle_kind:
        left.scatter(
            views.trial_ends[:, 0],
            views.trial_ends[:, 1],
            c=views.trial_ends_decoded % 10,
            marker="^",
            s=25,
            alpha=0.6,
            gid="trial_ends",
            **norm_kw,
        )
    else:
        left.scatter(
            views.trial_ends[:, 0],
            views.trial_ends[:, 1],
            color="0.5",
            marker="^",
            s=25,
            gid="trial_ends",
        )
    if views.points_decoded is not None and result.n_points:
        colour = views.points_decoded if angle_kind else views.points_decoded % 10
        image = left.scatter(
            views.points[:, 0],
            views.points[:, 1],
            c=colour,
            s=60,
            edgecolors="k",
            gid="points",
            **norm_kw,
        )
        fig.colorbar(image, ax=left, label="decoded " + views.decoded_kind)
    left.set_xlabel("PC1")
    left.set_ylabel("PC2")
    left.set_title("fixed points (circles) and trial ends (triangles)", fontsize=9)
    circle = np.linspace(-np.pi, np.pi, 200)
    right.plot(np.cos(circle), np.sin(circle), color="0.8")
    if angle_kind and views.points_decoded is not None:
        right.scatter(
            np.cos(views.points_decoded),
            np.sin(views.points_decoded),
            c=views.points_decoded,
            s=60,
            edgecolors="k",
            gid="points_on_circle",
            **norm_kw,
        )
        if views.trial_ends_decoded is not None:
            right.scatter(
                0.8 * np.cos(views.trial_ends_decoded),
                0.8 * np.sin(views.trial_ends_decoded),
                marker="^",
                s=20,
                color="0.4",
                gid="trial_ends_on_circle",
            )
        right.set_title("decoded angle: fixed points (outer), trial ends (inner)", fontsize=9)
        right.set_xlabel("cos(decoded angle)")
        right.set_ylabel("sin(decoded angle)")
    elif views.points_decoded is not None:
        right.cla()
        classes, counts = np.unique(views.points_decoded, return_counts=True)
        right.bar(classes, counts, width=0.6, color="0.4", gid="class_counts")
        right.set_xticks(classes)
        right.set_xlabel("decoded class (argmax of the readout)")
        right.set_ylabel("fixed points")
    right.set_aspect("equal" if angle_kind else "auto")
    return fig


def figure_fixed_points_search(result) -> Figure:
    """Each search from its initial state (grey) to where it ended (black: converged)."""
    views = result.views
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for start, end in zip(views.search_start, views.search_end, strict=True):
        ax.plot([start[0], end[0]], [start[1], end[1]], color="0.7", lw=0.6)
    ax.scatter(
        views.search_start[:, 0],
        views.search_start[:, 1],
        s=10,
        color="0.6",
        gid="start",
        label="start",
    )
    converged = np.ones(len(views.search_end), bool)
    if result.final_states is not None and result.q_final is not None:
        converged = result.q_final < result.tol_q
    ax.scatter(
        views.search_end[converged, 0],
        views.search_end[converged, 1],
        s=14,
        color="k",
        gid="end",
        label="end (converged)",
    )
    ax.scatter(
        views.search_end[~converged, 0],
        views.search_end[~converged, 1],
        s=14,
        color="r",
        marker="x",
        gid="end_slow",
        label="end (slow point)",
    )
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_title(f"{len(views.search_start)} searches: start -> end", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def figure_fixed_points_eigenvalues(result) -> Figure:
    """Left: the Jacobian eigenvalues of every point in the complex plane, zoomed on them, with
    the unit circle; right: each mode's decay time constant in ms (what the eigenvalues mean for
    memory), sorted."""
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax, ax_tau = fig.subplots(1, 2)
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 400))
    ax.plot(circle.real, circle.imag, color="0.6", lw=0.8)
    for eig, stable in zip(result.eigenvalues, result.stable, strict=True):
        ax.scatter(eig.real, eig.imag, s=6, color="k" if stable else "r", alpha=0.6)
    if result.n_points:
        values = np.concatenate(result.eigenvalues)
        pad = 0.05 + 0.1 * max(np.ptp(values.real), np.ptp(values.imag))
        ax.set_xlim(values.real.min() - pad, max(values.real.max(), 1.0) + pad)
        ax.set_ylim(values.imag.min() - pad, values.imag.max() + pad)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title(f"Jacobian eigenvalues ({_count(result.n_points, 'point')})", fontsize=9)
    for tau, stable in zip(result.time_constants_ms(), result.stable, strict=True):
        shown = np.sort(tau[np.isfinite(tau)])[::-1]
        ax_tau.plot(np.arange(1, shown.size + 1), shown, ".", color="k" if stable else "r")
    ax_tau.set_yscale("log")
    ax_tau.set_xlabel("mode (slowest first)")
    ax_tau.set_ylabel("decay time constant (ms)")
    ax_tau.set_title("black: stable points, red: unstable", fontsize=9)
    return fig


def plot_fixed_points(result, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    paths = []
    if result.views is not None:
        paths += [
            save_figure(
                figure_fixed_points_pca(result), out_dir / "fixed_points_on_pca_trajectories.png"
            ),
            save_figure(
                figure_fixed_points_decoded(result), out_dir / "fixed_points_decoded_angles.png"
            ),
            save_figure(
                figure_fixed_points_search(result), out_dir / "fixed_points_search_paths.png"
            ),
        ]
    paths.append(
        save_figure(
            figure_fixed_points_eigenvalues(result),
            out_dir / "fixed_points_eigenvalues_and_time_constants.png",
        )
    )
    return paths

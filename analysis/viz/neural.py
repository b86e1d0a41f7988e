"""Figures of the neural analyses: SNR, normalisation (dn), selectivity and weights here; fixed
points and trajectories in :mod:`analysis.viz.dynamics` (re-exported).

``figure_<x>(result) -> Figure`` builds one figure without pyplot's global state (safe in
notebooks and threads; no backend is chosen at import). ``plot_<name>(result, out_dir)`` saves
the figures of analysis ``<name>`` as PNGs and returns their paths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Rectangle
from scipy.stats import chi2

from analysis.viz.dynamics import epoch_colours
from analysis.viz.figures import save_figure

__all__ = [
    "confidence_ellipse",
    "figure_snr_points",
    "figure_snr_vs_set_size",
    "figure_snr_side_views",
    "figure_snr_trajectories",
    "figure_dn_summation",
    "figure_dn_load",
    "figure_selectivity",
    "figure_selectivity_ipr",
    "figure_weights",
    "plot_snr",
    "plot_dn",
    "plot_selectivity",
    "plot_weights",
]

DIVERGING = "RdBu_r"


def confidence_ellipse(
    mean: np.ndarray, covariance: np.ndarray, level: float = 0.95, **kwargs
) -> Ellipse:
    """The ``level`` probability ellipse of a 2-D Gaussian (radius^2 = chi2(2) quantile)."""
    values, vectors = np.linalg.eigh(covariance)
    scale = np.sqrt(chi2.ppf(level, 2) * np.maximum(values, 0.0))
    angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
    return Ellipse(mean, 2 * scale[-1], 2 * scale[0], angle=angle, fill=False, **kwargs)


MAX_LEGEND_COLOURS = 6
"""More set sizes than this are told apart by a labelled colour bar, not a legend of shades."""


def _set_size_colours(sizes) -> list:
    from matplotlib import colormaps

    return list(colormaps["viridis"](np.linspace(0, 0.9, len(sizes))))


def _set_size_key(fig: Figure, axes, sizes, **legend) -> None:
    """A legend of the set sizes' colours, or with more than :data:`MAX_LEGEND_COLOURS` of
    them a colour bar labelled "set size" (one tick per set size)."""
    axes = list(np.atleast_1d(axes))
    if len(sizes) <= MAX_LEGEND_COLOURS:
        axes[0].legend(**legend)
        return
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap

    colours = ListedColormap(_set_size_colours(sizes))
    bounds = np.arange(len(sizes) + 1) - 0.5
    bar = fig.colorbar(
        ScalarMappable(BoundaryNorm(bounds, colours.N), colours),
        ax=axes,
        ticks=np.arange(len(sizes)),
        shrink=0.8,
    )
    bar.ax.set_yticklabels([str(n) for n in sizes])
    bar.set_label("set size")


# --- SNR ---------------------------------------------------------------------------------------
def figure_snr_points(result, averaged: bool) -> Figure:
    """Decoded points of the item (per step, or time-averaged per trial), each stimulus rotated
    so that its true orientation is (1, 0), with 95% ellipses of the within-stimulus noise."""
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.subplots()
    for colour, n in zip(_set_size_colours(result.set_sizes), result.set_sizes, strict=True):
        cloud = result.points[n]
        pts = cloud.mean(1) if averaged else cloud.reshape(-1, 2)
        stats = result.stats[n]
        cov = stats.noise2_covariance if averaged else stats.noise1_covariance
        ax.scatter(pts[:2000, 0], pts[:2000, 1], s=2, color=colour, alpha=0.3)
        ax.add_patch(
            confidence_ellipse(stats.signal, cov, edgecolor=colour, lw=1.5, label=f"set size {n}")
        )
        ax.plot(*stats.signal, "x", color=colour)
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.plot([1.0], [0.0], "k*", ms=10, label="true orientation")
    _set_size_key(fig, ax, result.set_sizes, fontsize=7, markerscale=3)
    ax.set_aspect("equal", "datalim")
    ax.set_xlabel("decoded point along the true orientation")
    ax.set_ylabel("decoded point orthogonal to it")
    ax.set_title(
        ("time-averaged" if averaged else "per-step") + " decoded points, 95% ellipses", fontsize=9
    )
    return fig


def figure_snr_vs_set_size(result) -> Figure:
    """SNR (dB) against set size with bootstrap SEs over stimuli, and each fitted slope with its
    95 % interval (shaded)."""
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    sizes = np.asarray(result.set_sizes)
    x = np.log10(sizes)
    fits = (
        ("snr1_db", 0, "per step", result.slope1_db_per_decade, result.slope1_ci),
        ("snr2_db", 1, "time-averaged", result.slope2_db_per_decade, result.slope2_ci),
    )
    for key, index, label, slope, ci in fits:
        db = np.array([getattr(result.stats[n], key) for n in sizes], float)
        db[~np.isfinite(db)] = np.nan
        se = np.array([result.db_se.get(n, (np.nan, np.nan))[index] for n in sizes], float)
        bars = ax.errorbar(
            sizes,
            db,
            yerr=se,
            fmt="o",
            capsize=2,
            label=f"{label}: {slope:.1f} dB/decade [{ci[0]:.1f}, {ci[1]:.1f}]",
        )
        ok = np.isfinite(db)
        if ok.sum() >= 2 and np.all(np.isfinite(ci)):
            colour = bars.lines[0].get_color()
            x0, y0 = x[ok].mean(), db[ok].mean()
            grid = np.linspace(x.min(), x.max(), 50)
            ax.plot(10**grid, y0 + slope * (grid - x0), color=colour, lw=1)
            low, high = (y0 + c * (grid - x0) for c in ci)
            ax.fill_between(
                10**grid,
                np.minimum(low, high),
                np.maximum(low, high),
                color=colour,
                alpha=0.15,
                lw=0,
            )
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("set size")
    ax.set_ylabel("SNR (dB)")
    source = "" if result.noise_source == "agent" else f", input noise {result.input_noise:g} rad"
    ax.set_title(f"SNR ± SE over {result.n_stimuli} stimuli; slope [95% CI]{source}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


SIDE_VIEW_LABELS = {
    "rate": "rate, delay",
    "recurrent_input": "recurrent input W_eff r, delay",
    "external_input": "external input B u, stimulus step 2",
}


SIDE_VIEW_UNITS = {
    "rate": "rate (Hz)",
    "recurrent_input": "input (a.u.)",
    "external_input": "input (a.u.)",
}

NO_SPREAD = 1e-9
"""An SD below this (relative to the mean's scale) is rounding error, not variability: a panel
whose SDs are all below it (the external input without input noise) is not drawn."""


def _has_spread(views) -> bool:
    scale = (
        max((float(np.max(np.abs(v.mean))) for v in views.values() if np.size(v.mean)), default=0.0)
        or 1.0
    )
    return any(np.size(v.sd) and float(np.max(v.sd)) > NO_SPREAD * scale for v in views.values())


def figure_snr_side_views(result) -> Figure:
    """Per-neuron mean against trial-to-trial SD, one panel per quantity that varies across
    repeats, one colour per set size."""
    names = [
        n for n in SIDE_VIEW_LABELS if n in result.side_views and _has_spread(result.side_views[n])
    ]
    fig = Figure(figsize=(4.2 * len(names), 4))
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    colours = _set_size_colours(result.set_sizes)
    for ax, name in zip(axes, names, strict=True):
        for colour, n in zip(colours, result.set_sizes, strict=True):
            view = result.side_views[name][n]
            ax.scatter(
                view.mean,
                view.sd,
                s=8,
                color=colour,
                alpha=0.7,
                label=f"set size {n}",
                gid=f"{name}:{n}",
            )
        ax.set_xlabel(f"mean over repeats, {SIDE_VIEW_UNITS[name]}")
        ax.set_ylabel(f"SD across repeats, {SIDE_VIEW_UNITS[name]}")
        ax.set_title(SIDE_VIEW_LABELS[name], fontsize=9)
    _set_size_key(fig, axes, result.set_sizes, fontsize=7)
    fig.suptitle("per-neuron mean vs SD across repeats of a stimulus")
    return fig


def figure_snr_trajectories(result) -> Figure:
    """Per set size: sample neurons' rates over a trial (epochs shaded), and the decoded point
    over the decode epoch (where the readout is trained) against the true one."""
    sizes = _shown_set_sizes(result.set_sizes)
    fig = Figure(figsize=(3.0 * len(sizes), 6.0), layout="constrained")
    axes = fig.subplots(2, len(sizes), squeeze=False)
    dt = result.dt_ms
    colours = epoch_colours(result.epochs)
    start, end = result.epochs["decode"]
    circle = np.linspace(-np.pi, np.pi, 200)
    for column, n in enumerate(sizes):
        top, bottom = axes[0, column], axes[1, column]
        for name, (first, last) in result.epochs.items():
            top.axvspan(first * dt, last * dt, color=colours[name], alpha=0.12, lw=0)
        rates = result.sample_rates[n][0]
        top.plot(np.arange(rates.shape[0]) * dt, rates, lw=1)
        top.set_title(f"set size {n}")
        top.set_xlabel("time (ms)")
        top.set_ylabel("rate (Hz)")
        bottom.plot(np.cos(circle), np.sin(circle), color="0.85", lw=0.8)
        for trial in result.sample_decoded[n]:
            bottom.plot(trial[start:end, 0], trial[start:end, 1], lw=0.8, marker=".", ms=3)
        angle = result.true_orientation[n]
        bottom.plot([np.cos(angle)], [np.sin(angle)], "k*", ms=10, gid="true")
        bottom.set_aspect("equal", "datalim")
        bottom.set_xlabel("decoded cos")
        bottom.set_ylabel("decoded sin")
    axes[1, 0].set_title("decode epoch; star: true orientation", fontsize=8)
    return fig


MAX_COLUMNS = 4
"""Set sizes shown side by side at most (more would make the figure too wide to read)."""


def _shown_set_sizes(set_sizes: list[int]) -> list[int]:
    """All set sizes, or :data:`MAX_COLUMNS` of them evenly spread (first and last kept)."""
    if len(set_sizes) <= MAX_COLUMNS:
        return list(set_sizes)
    picks = np.round(np.linspace(0, len(set_sizes) - 1, MAX_COLUMNS)).astype(int)
    return [set_sizes[i] for i in picks]


def plot_snr(result, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    return [
        save_figure(figure_snr_points(result, False), out_dir / "snr_decoded_points_per_step.png"),
        save_figure(
            figure_snr_points(result, True), out_dir / "snr_decoded_points_time_averaged.png"
        ),
        save_figure(figure_snr_vs_set_size(result), out_dir / "snr_db_vs_set_size.png"),
        save_figure(figure_snr_side_views(result), out_dir / "snr_neuron_mean_vs_sd.png"),
        save_figure(
            figure_snr_trajectories(result), out_dir / "snr_sample_trials_rates_and_decodes.png"
        ),
    ]


# --- divisive normalisation --------------------------------------------------------------------
def _dn_label(fits: dict) -> str:
    return (
        f"w1 + w2 = {fits['pooled_w_sum']:.2f} ± {fits['pooled_w_sum_se'] or 0:.2f} (pooled), "
        f"median {fits['w_sum_median']:.2f}"
    )


def figure_dn_summation(result) -> Figure:
    """(w1, w2) per trial, baseline-subtracted, for the model and its linear null."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.add_patch(Rectangle((0, 0), 1, 1, color="tab:green", alpha=0.15, label="DN region"))
    for fits, colour, label in ((result.null, "0.6", "linear null"), (result.model, "k", "model")):
        sub = fits["baseline_subtracted"]
        ax.scatter(
            sub["w1"],
            sub["w2"],
            s=10,
            color=colour,
            gid=label,
            label=f"{label}: {_dn_label(sub)}",
        )
    raw = result.model["raw"]
    ax.scatter(
        raw["w1"],
        raw["w2"],
        s=8,
        marker="x",
        color="tab:red",
        alpha=0.5,
        gid="model raw",
        label=f"model, raw rates: {raw['pooled_w_sum']:.2f} (pooled)",
    )
    line = np.linspace(-1.0, 3.0, 50)  # inside symlog's linear range, so a straight line there
    ax.plot(line, 2.0 - line, color="0.4", ls="--", lw=1, label="w1 + w2 = 2 (linear)")
    ax.plot([1], [1], "r+", ms=12)
    symlog = _tame_heavy_tail(ax, [result.model, result.null])
    scale = " (linear within ±3, log beyond)"
    ax.set_xlabel("w1" + (scale if symlog["x"] else ""))
    ax.set_ylabel("w2" + (scale if symlog["y"] else ""))
    ax.set_title(f"r12 - r0 ~ w1 (r1 - r0) + w2 (r2 - r0), {result.epoch} epoch", fontsize=9)
    ax.legend(fontsize=7)
    return fig


_SYMLOG_TICKS = (-1000, -100, -10, -3, -1, 0, 1, 2, 3, 10, 100, 1000)


def _tame_heavy_tail(ax, fits: list[dict]) -> dict[str, bool]:
    """Per axis, symlog (linear within |w| < 3, logarithmic beyond) where that axis' weights
    exceed 10, so that the bulk near the DN region and the heavy tail are both in view; ticks
    labelled as plain numbers. Returns which axes turned symlog."""
    turned = {}
    for axis, key in (("x", "w1"), ("y", "w2")):
        values = np.concatenate([np.asarray(f["baseline_subtracted"][key], float) for f in fits])
        values = values[np.isfinite(values)]
        turned[axis] = bool(values.size and np.abs(values).max() > 10)
        if not turned[axis]:
            continue
        getattr(ax, f"set_{axis}scale")("symlog", linthresh=3)
        low, high = getattr(ax, f"get_{axis}lim")()
        ticks = [t for t in _SYMLOG_TICKS if low <= t <= high]
        getattr(ax, f"set_{axis}ticks")(ticks, [f"{t:g}" for t in ticks])
    return turned


def figure_dn_load(result) -> Figure:
    """Stimulus epoch: input and rate above baseline relative to set size 1 (model, null); and
    the decode-epoch rate apart."""
    fig = Figure(figsize=(9, 4))
    left, right = fig.subplots(1, 2)
    sizes = result.set_sizes

    def relative(values):
        values = np.asarray(values, float)
        return values / values[0] if values[0] else np.full_like(values, np.nan)

    left.plot(sizes, relative(result.mean_input), "o-", label="input B u", gid="input")
    left.plot(
        sizes,
        relative(result.null_rate_stimulus),
        "s--",
        color="0.5",
        label="rate, linear null",
        gid="null_rate",
    )
    left.plot(
        sizes, relative(result.rate_stimulus), "^-", color="k", label="rate, model", gid="rate"
    )
    left.set_xlabel("set size")
    left.set_ylabel("relative to set size 1")
    left.set_title("stimulus epoch, above the no-item baseline", fontsize=9)
    left.legend(fontsize=8)
    right.plot(sizes, result.rate_decode, "^-", color="royalblue", gid="rate_decode")
    right.set_xlabel("set size")
    right.set_ylabel("mean rate")
    right.set_title("decode epoch (no input)", fontsize=9)
    return fig


def plot_dn(result, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    return [
        save_figure(figure_dn_summation(result), out_dir / "dn_two_item_summation_weights.png"),
        save_figure(figure_dn_load(result), out_dir / "dn_input_and_rate_vs_set_size.png"),
    ]


# --- selectivity -------------------------------------------------------------------------------
def _selective_order(result) -> tuple[np.ndarray, np.ndarray]:
    selective = result.selective_neurons & np.isfinite(result.ipr)
    key = np.where(selective, result.ipr, -1.0)
    return np.argsort(key, kind="stable"), selective


def figure_selectivity(result) -> Figure:
    """IPR (selective neurons; chance IPR beside it) above R^T with the significant cells marked."""
    order, selective = _selective_order(result)
    k = result.r_matrix.shape[1]
    fig = Figure(figsize=(8, 5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    x = np.arange(order.size)
    sel = selective[order]
    top.plot(x[sel], result.ipr[order][sel], "k.", label="IPR (selective)", gid="ipr")
    top.plot(
        x[sel],
        result.chance_ipr[order][sel],
        ".",
        color="0.6",
        label="chance IPR",
        gid="chance_ipr",
    )
    top.axhline(1.0 / k, color="0.6", ls=":")
    top.set_ylabel("IPR")
    top.set_xlabel("neurons (sorted by IPR)")
    top.legend(fontsize=7)
    image = bottom.imshow(
        result.r_matrix[order].T, aspect="auto", cmap="magma", interpolation="nearest"
    )
    ys, xs = np.nonzero(result.selective[order].T)
    bottom.scatter(
        xs, ys, s=4, color="c", marker="o", label="above chance (95%)", gid="significant"
    )
    n_silent = 0 if result.silent is None else int(result.silent.sum())
    bottom.set_xlabel(
        f"neurons (sorted by IPR; {int(selective.sum())} selective, {n_silent} "
        f"silent of {order.size})"
    )
    bottom.set_ylabel("slot")
    bottom.legend(fontsize=7, loc="upper left")
    fig.colorbar(image, ax=[top, bottom], label="vector strength R")
    return fig


def figure_selectivity_ipr(result) -> Figure:
    """Histogram of IPR of the selective neurons against their chance IPR."""
    _, selective = _selective_order(result)
    k = result.r_matrix.shape[1]
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    bins = np.linspace(0, 1, 21)
    ax.hist(result.chance_ipr[selective], bins=bins, color="0.75", label="chance (shuffled)")
    ax.hist(
        result.ipr[selective],
        bins=bins,
        histtype="step",
        color="k",
        lw=1.5,
        label="selective neurons",
    )
    ax.axvline(1.0 / k, color="r", ls=":", label="1/K (single slot)")
    ax.set_xlabel("IPR")
    ax.set_ylabel("neurons")
    ax.legend(fontsize=8)
    effect = result.ipr_against_chance()
    if effect["se"] is not None:
        ax.set_title(
            f"IPR - chance: {effect['mean']:.2f} ± {effect['se']:.2f} (SE), "
            f"d_z {effect['effect_size_dz']:.2f}, {effect['n']} neurons",
            fontsize=9,
        )
    return fig


def plot_selectivity(result, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    return [
        save_figure(figure_selectivity(result), out_dir / "selectivity_slot_tuning_by_neuron.png"),
        save_figure(
            figure_selectivity_ipr(result),
            out_dir / "selectivity_participation_ratio_histogram.png",
        ),
    ]


# --- weights -----------------------------------------------------------------------------------
def figure_weights(result) -> Figure:
    """Each matrix in a diverging colour map centred at 0; E and I blocks of neuron axes marked."""
    names = list(result.matrices)
    widths = [max(result.matrices[n].shape[1], 4) for n in names]
    fig = Figure(
        figsize=(min(3 + 0.04 * sum(widths) + 2 * len(names), 12.0), 4.5), layout="constrained"
    )
    axes = np.atleast_1d(fig.subplots(1, len(names), gridspec_kw={"width_ratios": widths}))
    for ax, name in zip(axes, names, strict=True):
        m = result.matrices[name]
        limit = float(np.abs(m).max()) or 1.0
        image = ax.imshow(
            m,
            cmap=DIVERGING,
            norm=TwoSlopeNorm(0.0, -limit, limit),
            aspect="auto",
            interpolation="nearest",
        )
        rows_neurons, cols_neurons = result.neuron_axes[name]
        n_exc = result.n_excitatory
        if n_exc is not None:
            if rows_neurons:
                ax.axhline(n_exc - 0.5, color="k", lw=1, gid="ei_rows")
                ax.text(
                    -0.02,
                    n_exc / 2,
                    "E",
                    transform=ax.get_yaxis_transform(),
                    ha="right",
                    va="center",
                )
                ax.text(
                    -0.02,
                    (n_exc + m.shape[0]) / 2,
                    "I",
                    transform=ax.get_yaxis_transform(),
                    ha="right",
                    va="center",
                )
            if cols_neurons:
                ax.axvline(n_exc - 0.5, color="k", lw=1, gid="ei_cols")
        ax.set_title(name)
        ax.set_ylabel("neurons (postsynaptic)" if rows_neurons else "outputs")
        # B's columns are the task's inputs; the readout's (F^T) are the outputs
        ax.set_xlabel(
            "neurons (presynaptic)"
            if cols_neurons
            else "inputs"
            if name.startswith("B")
            else "outputs"
        )
        fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    fig.suptitle(f"{result.agent} weights (colour centred at 0)")
    return fig


def plot_weights(result, out_dir: Path) -> list[Path]:
    return [
        save_figure(figure_weights(result), Path(out_dir) / "weights_input_recurrent_readout.png")
    ]

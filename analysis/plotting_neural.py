"""Figures of the neural analyses (SNR, normalisation, selectivity, fixed points).

Each function takes a result dataclass and an output folder, writes PNGs and returns their paths.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse, Rectangle  # noqa: E402
from scipy.stats import chi2  # noqa: E402

__all__ = ["confidence_ellipse", "plot_snr", "plot_dn", "plot_selectivity", "plot_fixed_points"]

EPOCH_COLOURS = {"init": "0.6", "stimulus": "goldenrod", "delay": "seagreen", "decode": "royalblue"}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def confidence_ellipse(mean: np.ndarray, covariance: np.ndarray, level: float = 0.95, **kwargs) -> Ellipse:
    """The ``level`` probability ellipse of a 2-D Gaussian (radius^2 = chi2(2) quantile)."""
    values, vectors = np.linalg.eigh(covariance)
    scale = np.sqrt(chi2.ppf(level, 2) * np.maximum(values, 0.0))
    angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
    return Ellipse(mean, 2 * scale[-1], 2 * scale[0], angle=angle, fill=False, **kwargs)


def plot_snr(result, out_dir: Path) -> list[Path]:
    sizes = result.set_sizes
    colours = plt.cm.viridis(np.linspace(0, 1, len(sizes)))
    paths = []
    for name, averaged in (("snr_points_per_step.png", False), ("snr_points_time_averaged.png", True)):
        fig, ax = plt.subplots(figsize=(5.5, 5.5))
        for colour, n in zip(colours, sizes, strict=True):
            cloud = result.points[n]
            pts = cloud.mean(1) if averaged else cloud.reshape(-1, 2)
            stats = result.stats[n]
            cov = stats.noise2_covariance if averaged else stats.noise1_covariance
            ax.scatter(pts[:2000, 0], pts[:2000, 1], s=2, color=colour, alpha=0.3)
            ax.add_patch(confidence_ellipse(stats.signal, cov, edgecolor=colour, lw=1.5, label=f"n={n}"))
            ax.plot(*stats.signal, "x", color=colour)
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
        ax.set_aspect("equal", "datalim")
        ax.set_xlabel("decoded cos")
        ax.set_ylabel("decoded sin")
        ax.set_title(("time-averaged" if averaged else "per-step") + " decoded points, 95% ellipses")
        ax.legend(fontsize=7, markerscale=3)
        paths.append(_save(fig, out_dir / name))

    fig, ax = plt.subplots(figsize=(5, 4))
    for key, label, slope in (("snr1_db", "per step", result.slope1_db_per_decade),
                              ("snr2_db", "time-averaged", result.slope2_db_per_decade)):
        ax.plot(sizes, [getattr(result.stats[n], key) for n in sizes], "o-",
                label=f"{label} ({slope:.1f} dB/decade)")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("set size")
    ax.set_ylabel("SNR (dB)")
    ax.set_title("SNR against set size (normalisation: -10 dB/decade)")
    ax.legend()
    paths.append(_save(fig, out_dir / "snr_vs_set_size.png"))
    return paths


def plot_dn(result, out_dir: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.add_patch(Rectangle((0, 0), 1, 1, color="tab:green", alpha=0.15, label="DN region"))
    ax.scatter(result.w1, result.w2, s=10, color="k")
    ax.axline((0, 1), slope=-1, color="0.5", ls=":", lw=1, label="w1 + w2 = 1")
    ax.plot([1], [1], "r+", ms=12, label="linear summation")
    ax.set_xlabel("w1")
    ax.set_ylabel("w2")
    ax.set_title("r12 ~ w1 r1 + w2 r2 (one point per trial)")
    ax.legend(fontsize=8)
    paths = [_save(fig, out_dir / "dn_sublinearity.png")]

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(result.set_sizes, result.mean_input, "o-", label="mean input B u (stimulus)")
    ax.plot(result.set_sizes, result.mean_rate_stimulus, "s-", label="mean rate (stimulus, Hz)")
    ax.plot(result.set_sizes, result.mean_rate_decode, "^-", label="mean rate (decode, Hz)")
    ax.set_xlabel("set size")
    ax.set_ylabel("mean over neurons")
    ax.set_title("input grows with load; normalised activity stays flat")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "dn_input_vs_rate.png"))
    return paths


def plot_selectivity(result, out_dir: Path) -> list[Path]:
    order = np.argsort(np.nan_to_num(result.ipr, nan=-1.0))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True,
                                      gridspec_kw={"height_ratios": [1, 2]})
    top.plot(result.ipr[order], "k.")
    top.set_ylabel("IPR")
    k = result.r_matrix.shape[1]
    top.axhline(1.0 / k, color="0.6", ls=":")
    image = bottom.imshow(result.r_matrix[order].T, aspect="auto", cmap="magma", interpolation="nearest")
    bottom.set_xlabel("neuron (sorted by IPR)")
    bottom.set_ylabel("slot")
    fig.colorbar(image, ax=[top, bottom], label="vector strength R")
    paths = [_save(fig, out_dir / "selectivity_R_with_IPR.png")]

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.hist(result.ipr[np.isfinite(result.ipr)], bins=20, range=(0, 1), color="0.3")
    ax.axvline(1.0 / k, color="r", ls=":", label="1/K (single slot)")
    ax.set_xlabel("IPR")
    ax.set_ylabel("neurons")
    ax.legend()
    paths.append(_save(fig, out_dir / "selectivity_ipr_hist.png"))
    return paths


def plot_fixed_points(result, out_dir: Path) -> list[Path]:
    paths = []
    if result.trajectories is not None:
        traj = result.trajectories
        flat = traj.reshape(-1, traj.shape[-1])
        mean = flat.mean(0)
        _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
        basis = vt[:3].T

        def project(x):
            return (x - mean) @ basis

        proj = project(traj)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        for ax, (i, j) in zip(axes, ((0, 1), (0, 2)), strict=True):
            for epoch, (start, end) in (result.epochs or {}).items():
                segment = proj[:, max(start - 1, 0) : end]
                for trial in segment:
                    ax.plot(trial[:, i], trial[:, j], color=EPOCH_COLOURS.get(epoch, "0.5"), lw=0.6)
            if result.n_points:
                pts = project(result.points)
                ax.scatter(pts[result.stable, i], pts[result.stable, j], c="k", s=25, zorder=3,
                           label="stable")
                ax.scatter(pts[~result.stable, i], pts[~result.stable, j], c="r", marker="x", s=25,
                           zorder=3, label="unstable")
            ax.set_xlabel(f"PC{i + 1}")
            ax.set_ylabel(f"PC{j + 1}")
        handles = [plt.Line2D([], [], color=c, label=e) for e, c in EPOCH_COLOURS.items()]
        axes[0].legend(handles=handles + axes[0].get_legend_handles_labels()[0], fontsize=7)
        fig.suptitle(f"trajectories and fixed points ({result.n_points} points, from {result.epoch})")
        paths.append(_save(fig, out_dir / "fixed_points_pca.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    ax.plot(circle.real, circle.imag, color="0.6", lw=0.8)
    for eig, stable in zip(result.eigenvalues, result.stable, strict=True):
        ax.scatter(eig.real, eig.imag, s=4, color="k" if stable else "r", alpha=0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("Re lambda")
    ax.set_ylabel("Im lambda")
    ax.set_title("Jacobian eigenvalues (black: stable points)")
    paths.append(_save(fig, out_dir / "fixed_points_eigenvalues.png"))
    return paths

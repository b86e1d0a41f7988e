"""Plot one trial of a VWM task (inputs per slot, targets, mask) with its epochs shaded.

neurogym's ``plot_env`` cannot draw vector-action envs, so this module draws from the trial
arrays directly. It builds a bare :class:`matplotlib.figure.Figure` (no pyplot state), so it
works under any backend, including Agg.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from vwm_tasks.batch import TrialBatch

EPOCH_COLOURS = ("#f4f4f4", "#e4e4e4")


def _trial_arrays(source: Any, index: int) -> dict[str, Any]:
    """ob, gt, mask (T, .), epochs {name: (start, end)}, dt, presence and probe of one trial."""
    if isinstance(source, TrialBatch):
        if not source.is_dense:
            raise ValueError("plot_trial needs a dense TrialBatch (sample_batch(dense=True))")
        if not 0 <= index < source.batch_size:
            raise ValueError(f"index must be in [0, {source.batch_size}), got {index!r}")
        length = int(source.valid[index].sum())
        presence = None if source.presence is None else source.presence[index]
        probe = -1 if source.probe is None else int(source.probe[index])
        return {
            "ob": source.ob[index, :length],
            "gt": source.gt[index, :length],
            "mask": source.mask[index, :length],
            "epochs": {name: tuple(bounds[index]) for name, bounds in source.epochs.items()},
            "dt": source.dt,
            "presence": presence,
            "probe": probe,
        }
    env = source.unwrapped if hasattr(source, "unwrapped") else source
    if getattr(env, "trial", None) is None:
        env.new_trial()
    trial = env.trial
    return {
        "ob": env.ob,
        "gt": env.gt,
        "mask": getattr(env, "mask", None),
        "epochs": {name: (env.start_ind[name], env.end_ind[name]) for name in env.start_ind},
        "dt": env.dt,
        "presence": trial.get("presence"),
        "probe": int(trial.get("probe", -1)),
    }


def _shade_epochs(ax: Any, epochs: dict[str, tuple[int, int]], dt: float, label: bool) -> None:
    for i, (name, (start, end)) in enumerate(epochs.items()):
        if end <= start:
            continue
        ax.axvspan(start * dt, end * dt, color=EPOCH_COLOURS[i % len(EPOCH_COLOURS)], zorder=0)
        if label:
            ax.text(
                (start + end) / 2 * dt,
                1.02,
                name,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8,
            )


def plot_trial(
    source: Any, index: int = 0, *, title: str | None = None, figsize: tuple[float, float] = (8, 7)
) -> Figure:
    """Draw one trial: the input channels grouped by slot, the targets and the loss mask.

    Args:
        source: an env (wrapped or not; its current trial, or a new one if it has none) or a
            dense :class:`~vwm_tasks.batch.TrialBatch`.
        index: which trial of a batch.
        title: figure title.
        figsize: figure size in inches.

    Returns:
        The matplotlib ``Figure`` (three panels sharing the time axis, in ms).
    """
    data = _trial_arrays(source, index)
    ob, gt, mask, dt = data["ob"], data["gt"], data["mask"], data["dt"]
    presence, probe = data["presence"], data["probe"]
    n_steps = ob.shape[0]
    ob2 = ob.reshape(n_steps, -1)
    gt2 = gt.reshape(n_steps, -1) if gt.ndim > 1 else gt[:, None]
    extent = (0, n_steps * dt)

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(3, 1, sharex=True, height_ratios=[3, 2, 2])
    for ax in axes:
        _shade_epochs(ax, data["epochs"], dt, label=ax is axes[0])

    ax = axes[0]
    # Zeros are left transparent so the epoch shading shows through.
    image = ax.imshow(
        np.ma.masked_equal(ob2.T, 0),
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap="viridis",
        vmin=0,
        extent=(*extent, -0.5, ob2.shape[1] - 0.5),
        zorder=1,
    )
    fig.colorbar(image, ax=ax, label="input")
    ax.set_ylabel("input channel")
    if presence is not None:
        n_slots = len(presence)
        n_cue = n_slots if probe >= 0 else 0
        per_slot = (ob2.shape[1] - n_cue) // n_slots
        for k in range(1, n_slots + (1 if n_cue else 0)):
            ax.axhline(k * per_slot - 0.5, color="w", lw=0.4, zorder=2)
        ticks = [k * per_slot + (per_slot - 1) / 2 for k in range(n_slots)]
        labels = [f"slot {k}" for k in range(n_slots)]
        if n_cue:
            ticks.append(n_slots * per_slot + (n_cue - 1) / 2)
            labels.append("cue")
        ax.set_yticks(ticks, labels, fontsize=7)

    ax = axes[1]
    time = np.arange(n_steps + 1) * dt
    gt2 = np.concatenate([gt2, gt2[-1:]])  # repeat the last step so steps-post spans it
    colours = [f"C{k % 10}" for k in range(max(1, gt2.shape[1] // 2))]
    if gt2.shape[1] % 2 == 0 and presence is not None:
        # (output pair, slot) drawn: the probed slot on the only pair, or each present slot's own.
        pairs = [(0, probe)] if probe >= 0 else [(k, k) for k in np.flatnonzero(presence)]
        for pair, slot in pairs:
            colour = colours[slot % len(colours)]
            ax.plot(
                time,
                gt2[:, 2 * pair],
                color=colour,
                lw=1.5,
                label=f"slot {slot}",
                zorder=2,
                drawstyle="steps-post",
            )
            ax.plot(
                time,
                gt2[:, 2 * pair + 1],
                color=colour,
                lw=1.5,
                ls="--",
                zorder=2,
                drawstyle="steps-post",
            )
        ax.legend(
            fontsize=7,
            ncol=5,
            loc="lower left",
            title="cos (solid), sin (dashed)",
            title_fontsize=7,
        )
    else:
        ax.plot(time, gt2, lw=1.5, zorder=2, drawstyle="steps-post")
    ax.set_ylabel("target")

    ax = axes[2]
    if mask is not None:
        mask2 = mask.reshape(n_steps, -1) if mask.ndim > 1 else mask[:, None]
        ax.imshow(
            np.ma.masked_equal(mask2.T, 0),
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            cmap="Greys",
            vmin=0,
            vmax=1,
            extent=(*extent, -0.5, mask2.shape[1] - 0.5),
            zorder=1,
        )
        if mask2.shape[1] == 2:
            ax.set_yticks([0, 1], ["cos", "sin"], fontsize=7)
        elif mask2.shape[1] % 2 == 0 and presence is not None:
            ax.set_yticks(
                np.arange(0, mask2.shape[1], 2) + 0.5,
                [f"slot {k}" for k in range(mask2.shape[1] // 2)],
                fontsize=7,
            )
    ax.set_ylabel("mask (output)")
    ax.set_xlabel("time (ms)")
    ax.set_xlim(*extent)
    if title:
        fig.suptitle(title)
    return fig


def save_trial_figure(
    path: str | Path = "docs/trial.png",
    env_id: str = "VWMRecall-v0",
    seed: int = 0,
    set_size: int | None = 4,
    **env_kwargs: Any,
) -> Path:
    """Write a picture of one seeded trial of ``env_id`` (the README's figure) and return its path."""
    import gymnasium as gym

    import vwm_tasks  # noqa: F401 - registers the ids

    env = gym.make(env_id, **env_kwargs).unwrapped
    env.seed(seed)
    env.new_trial(**({} if set_size is None else {"set_size": set_size}))
    fig = plot_trial(env, title=f"{env_id}: one trial (set size {env.trial['set_size']})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    print(save_trial_figure())

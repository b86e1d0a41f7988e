"""How items are lost: the length of each item's decode-window readout, and whether it splits
into held and dropped items.

Under the ``l2`` error the readout of an item is the network's estimate of its (cos, sin): its
length is the network's own confidence in the item (a lone, well-held item reads ~1; an item the
network has no information about is best read as 0, its decoded angle then random). A network that
spreads its resource over all items gives one broad peak of lengths that slides down as set size
grows; a network that keeps some items and drops others gives two peaks at large set sizes, one
near the lengths of well-held items and one near 0.

:func:`item_readouts` runs a model on fresh trials (as :func:`analysis.core.trials.model_errors` does:
the env's trials, the model's noise on, seeded) and keeps, per reported item, its set size, readout
length, error and, for tasks with the ``item_gain`` option, the gain it drew. :func:`item_loss`
summarises them per set size and tests each set size's lengths for more than one mode with
Silverman's (1981) critical-bandwidth test (modes counted inside the central 99 % of the values, Hall & York 2001): the smallest Gaussian-kernel bandwidth ``h_crit`` at
which the density estimate has one mode; its null distribution (one mode) comes from a smoothed
bootstrap from that density, rescaled to the sample's variance (Efron & Tibshirani 1993, 16.5).
The p-value is the fraction of null resamples that need a bandwidth larger than ``h_crit``. The
number of modes is counted on the log of the length (lengths are positive and skewed; a
log-normal is unimodal on both scales).

Pure functions and a dataclass result with ``to_dict``; the figure is
:func:`analysis.viz.item_loss.plot_item_loss`; ``python -m analysis`` runs it as ``item_loss``
(:func:`run`), a figure per run, and ``benchmarks/human_fit_item_loss.py`` draws a model beside
its control.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ItemReadouts",
    "ItemLoss",
    "item_readouts",
    "item_loss",
    "count_modes",
    "critical_bandwidth",
    "silverman_test",
    "run",
    "unavailable",
]

_GRID = 512  # points of the density grid
_LENGTH_FLOOR = 1e-4  # log of the length: a readout never reads exactly 0
_TAIL = 0.005  # modes are counted between the quantiles _TAIL and 1 - _TAIL
LOW_GAIN = 0.05  # of a lone item's mean drive: below it, an item is (nearly) not shown


@dataclass
class ItemReadouts:
    """One row per reported item.

    Attributes:
        set_size: (n,) set size of the item's trial.
        length: (n,) length of the item's decode-window mean readout (cos, sin), without the
            readout's observation noise for models with ``mean_readout(rates)`` (DaleRNN): the
            network's own estimate, not the noise it is read with.
        error: (n,) wrap(response - true angle), radians.
        gain: (n,) the gain the item drew: the task's ``item_gain``, or the efficacy of its input
            synapses for a DaleRNN with ``item_synapse_noise`` (both in units of a lone item's
            mean), else None.
        n_trials, seed: trials per set size and their seed.
    """

    set_size: np.ndarray
    length: np.ndarray
    error: np.ndarray
    gain: np.ndarray | None = None
    n_trials: int = 0
    seed: int = 0


def item_readouts(
    model, env, n_trials: int = 500, seed: int = 0, *, batch_size: int = 250
) -> ItemReadouts:
    """Readout length, error (and gain) of every reported item on ``n_trials`` fresh trials per
    set size of ``env``; trials and the model's noise seeded by ``seed``, no gradients."""

    from analysis.core.tasks import needs_vwm_recall
    from analysis.core.trials import forward_chunks
    from vwm_agents.training.losses import angular_errors, masked_time_mean

    reason = needs_vwm_recall(model, env)
    if reason is not None:
        raise ValueError(f"env: {reason}")
    if n_trials < 1:
        raise ValueError(f"n_trials: must be >= 1, got {n_trials}")
    base = getattr(env, "unwrapped", env)
    batch = base.sample_batch(
        n_trials * len(base.set_sizes),
        np.random.default_rng(seed),
        dense=False,
        balance_set_sizes=True,
    )
    lengths, errors, present, efficacies = [], [], [], []
    draws_efficacies = getattr(model, "item_synapse_noise", None) is not None
    for step in forward_chunks(model, base, batch, seed, batch_size=batch_size):
        if draws_efficacies:  # the forward drew them first: replay its generator
            efficacies.append(_replayed_efficacies(model, step.ob, step.rng_state))
        # The network's own estimate: the readout of its (noisy-dynamics) rates without
        # the readout's observation noise, when the model can say what that is.
        intended = (
            model.mean_readout(step.out[1])
            if isinstance(step.out, tuple) and hasattr(model, "mean_readout")
            else step.outputs
        )
        readout = masked_time_mean(intended, step.mask)
        lengths.append(readout.reshape(len(readout), -1, 2).norm(dim=-1).cpu().numpy())
        error, shown = angular_errors(step.outputs, step.gt, step.mask)
        errors.append(-error.cpu().numpy())  # ours: wrap(response - target)
        present.append(shown.cpu().numpy())
    shown = np.concatenate(present)
    set_size = np.broadcast_to(batch.set_size[:, None], shown.shape)[shown]
    gain = None if batch.item_gain is None else batch.item_gain[shown]
    if draws_efficacies:
        gain = np.concatenate(efficacies)[shown]
    return ItemReadouts(
        set_size=set_size,
        length=np.concatenate(lengths)[shown],
        error=np.concatenate(errors)[shown],
        gain=gain,
        n_trials=int(n_trials),
        seed=int(seed),
    )


def _replayed_efficacies(model, ob, rng_state) -> np.ndarray:
    """``(B, K)`` the per-item synapse efficacies a DaleRNN's forward on ``ob`` draws first from
    the global generator in state ``rng_state`` (the same draws, from a copy of that state)."""
    import torch

    from vwm_agents.models.item_synapses import draw_item_efficacies, item_presence

    generator = torch.Generator()
    generator.set_state(rng_state)
    presence = item_presence(ob, model.n_outputs // 2, 3)
    return (
        draw_item_efficacies(presence, model.item_synapse_noise, noise=True, generator=generator)
        .cpu()
        .numpy()
    )


# ----------------------------------------------------------------------------- modes
def _density(x: np.ndarray, h: float, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of ``x`` at bandwidth ``h`` on ``grid`` (binned, then smoothed)."""
    step = grid[1] - grid[0]
    counts, _ = np.histogram(x, bins=len(grid), range=(grid[0] - step / 2, grid[-1] + step / 2))
    radius = max(1, int(np.ceil(4 * h / step)))
    offsets = np.arange(-radius, radius + 1) * step
    kernel = np.exp(-0.5 * (offsets / h) ** 2)
    full = np.convolve(counts, kernel / kernel.sum())  # "same" would be the kernel's length
    return full[radius : radius + len(grid)]


def count_modes(x: np.ndarray, h: float, grid: np.ndarray | None = None) -> int:
    """Local maxima of the Gaussian kernel density of ``x`` at bandwidth ``h`` that lie between
    the 0.5 % and 99.5 % quantiles of ``x`` (Hall & York, 2001: a lone value in a tail would
    otherwise count as a mode)."""
    grid = _grid(x) if grid is None else grid
    d = _density(x, h, grid)
    step = np.diff(d)
    signs = np.where(step > 1e-12 * d.max(), 1, np.where(step < -1e-12 * d.max(), -1, 0))
    where = np.flatnonzero(signs)
    signs = signs[where]
    # a mode: a rise followed (after any flat run) by a fall; located at the fall's start
    peaks = grid[where[1:][(signs[:-1] == 1) & (signs[1:] == -1)]]
    low, high = np.quantile(x, [_TAIL, 1 - _TAIL])
    return int(np.sum((peaks >= low) & (peaks <= high)))


def _grid(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    return np.linspace(x.min() - 0.1 * span, x.max() + 0.1 * span, _GRID)


def critical_bandwidth(
    x: np.ndarray, grid: np.ndarray | None = None, *, iterations: int = 30
) -> float:
    """The smallest bandwidth at which the kernel density of ``x`` has one mode (bisection)."""
    grid = _grid(x) if grid is None else grid
    low, high = (grid[1] - grid[0]) / 2, float(np.ptp(x)) + 1e-12
    for _ in range(iterations):
        middle = np.sqrt(low * high)
        if count_modes(x, middle, grid) > 1:
            low = middle
        else:
            high = middle
    return high


def silverman_test(x: np.ndarray, *, n_boot: int = 200, seed: int = 0) -> dict[str, float]:
    """Silverman's test of one mode against more: ``{"h_crit", "p_value", "n", "n_boot"}``.

    Null resamples: ``y = mean + (x* - mean + h_crit eps) / sqrt(1 + h_crit^2 / var)`` with ``x*``
    drawn from ``x`` with replacement and ``eps`` standard normal; p is the fraction whose own
    one-mode bandwidth exceeds ``h_crit`` (i.e. whose density at ``h_crit`` has > 1 mode).
    """
    x = np.asarray(x, dtype=float)
    if len(x) < 10:
        raise ValueError(f"x: need at least 10 values, got {len(x)}")
    grid = _grid(x)
    h = critical_bandwidth(x, grid)
    rng = np.random.default_rng(seed)
    mean, var = x.mean(), x.var()
    scale = 1.0 / np.sqrt(1.0 + h * h / var)
    more = 0
    for _ in range(n_boot):
        y = mean + (rng.choice(x, len(x)) - mean + h * rng.standard_normal(len(x))) * scale
        more += count_modes(y, h, _grid(y)) > 1
    return {
        "h_crit": float(h),
        "p_value": (more + 1) / (n_boot + 1),
        "n": int(len(x)),
        "n_boot": int(n_boot),
    }


# ----------------------------------------------------------------------------- summary
@dataclass
class ItemLoss:
    """Per set size: readout-length quantiles, the MAE of items below and above the length that
    splits the two modes (the density's deepest trough between them at ``h_crit``), and
    Silverman's test on log length.

    Attributes:
        set_sizes: the set sizes, ascending.
        quantiles: set size -> length at the 5/25/50/75/95 % quantiles.
        modes: set size -> Silverman's test (``h_crit``, ``p_value``, ``n``, ``n_boot``).
        split: set size -> ``{"length", "fraction_below", "mae_below", "mae_above"}`` or None.
        gain_error: set size -> Spearman correlation of the drawn gain with |error| (None when
            no gain is drawn).
        low_gain: set size -> for the items that drew a gain below ``LOW_GAIN`` (a lone item's
            mean is 1) and those above: their share, MAE and the Rayleigh test's p-value against
            uniform errors (a guess); None when no gain is drawn.
        readouts: the per-item data.
    """

    set_sizes: list[int]
    quantiles: dict[int, list[float]]
    modes: dict[int, dict[str, float]]
    split: dict[int, dict[str, float] | None]
    gain_error: dict[int, float] | None
    low_gain: dict[int, dict[str, Any]] | None
    readouts: ItemReadouts = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "set_sizes": self.set_sizes,
            "quantiles_5_25_50_75_95": {str(n): q for n, q in self.quantiles.items()},
            "silverman_log_length": {str(n): m for n, m in self.modes.items()},
            "split": {str(n): s for n, s in self.split.items()},
            "gain_error_spearman": (
                None if self.gain_error is None else {str(n): r for n, r in self.gain_error.items()}
            ),
            "low_gain": (
                None if self.low_gain is None else {str(n): v for n, v in self.low_gain.items()}
            ),
            "low_gain_threshold": LOW_GAIN,
            "n_trials": self.readouts.n_trials,
            "seed": self.readouts.seed,
        }


def _split(
    log_length: np.ndarray, h: float, length: np.ndarray, error: np.ndarray
) -> dict[str, float] | None:
    """The deepest trough between the two highest modes of the density at ``h``, if any."""
    grid = _grid(log_length)
    d = _density(log_length, h * 0.999, grid)  # just below h_crit: the two modes still stand
    peaks = [i for i in range(1, len(d) - 1) if d[i] > d[i - 1] and d[i] >= d[i + 1]]
    if len(peaks) < 2:
        return None
    first, second = sorted(sorted(peaks, key=lambda i: d[i])[-2:])
    trough = first + int(np.argmin(d[first : second + 1]))
    cut = float(np.exp(grid[trough]))
    below = length < cut
    return {
        "length": cut,
        "fraction_below": float(below.mean()),
        "mae_below": float(np.abs(error[below]).mean()) if below.any() else None,
        "mae_above": float(np.abs(error[~below]).mean()) if (~below).any() else None,
    }


def item_loss(readouts: ItemReadouts, *, n_boot: int = 200, seed: int = 0) -> ItemLoss:
    """Summarise :class:`ItemReadouts` per set size (see :class:`ItemLoss`)."""
    from scipy.stats import spearmanr

    sizes = sorted(int(n) for n in np.unique(readouts.set_size))
    quantiles, modes, split, gain_error, low_gain = {}, {}, {}, {}, {}
    for n in sizes:
        rows = readouts.set_size == n
        length, error = readouts.length[rows], readouts.error[rows]
        log_length = np.log(np.maximum(length, _LENGTH_FLOOR))
        quantiles[n] = [float(q) for q in np.quantile(length, [0.05, 0.25, 0.5, 0.75, 0.95])]
        modes[n] = silverman_test(log_length, n_boot=n_boot, seed=seed)
        split[n] = _split(log_length, modes[n]["h_crit"], length, error)
        if readouts.gain is not None:
            gain_error[n] = float(spearmanr(readouts.gain[rows], np.abs(error)).statistic)
            low = readouts.gain[rows] < LOW_GAIN
            low_gain[n] = {
                "below": _uniformity(error[low], low.mean()),
                "above": _uniformity(error[~low], (~low).mean()),
            }
    drawn = readouts.gain is not None
    return ItemLoss(
        set_sizes=sizes,
        quantiles=quantiles,
        modes=modes,
        split=split,
        gain_error=gain_error if drawn else None,
        low_gain=low_gain if drawn else None,
        readouts=readouts,
    )


def _uniformity(error: np.ndarray, share: float) -> dict[str, Any]:
    """Share, count, MAE and the Rayleigh test of uniform errors (p ~ exp(-n R^2), with
    Zar's small-sample correction) of a group of items."""
    n = len(error)
    if n == 0:
        return {"share": float(share), "n": 0, "mae": None, "rayleigh_p": None}
    r = np.abs(np.mean(np.exp(1j * error)))
    z = n * r * r
    p = np.exp(np.sqrt(1 + 4 * n + 4 * (n * n - n * n * r * r)) - (1 + 2 * n))
    return {
        "share": float(share),
        "n": int(n),
        "mae": float(np.abs(error).mean()),
        "rayleigh_z": float(z),
        "rayleigh_p": float(min(1.0, p)),
    }


def unavailable(model: Any, env: Any) -> str | None:
    """Why the analysis cannot run on this agent or task (needs VWM recall), or None."""
    from analysis.core.tasks import needs_vwm_recall

    return needs_vwm_recall(model, env)


def run(model: Any, env: Any, *, n_trials: int, seed: int) -> ItemLoss:
    """The registry's entry (``python -m analysis RUN --only item_loss``): :func:`item_loss` of
    :func:`item_readouts` on ``n_trials`` fresh trials per set size of the run's task."""
    return item_loss(item_readouts(model, env, n_trials=n_trials, seed=seed), seed=seed)

"""Signal-to-noise ratio of the decoded item against set size (see docs/model.md, section
Signal-to-noise ratio).

For each set size n, one stimulus (slot ``slot`` present plus n - 1 other random slots, random
angles, no input noise) is shown in many repeats; the only variability left is the agent's own
noise (the Dale RNN's spiking noise). An agent without noise of its own (a GRU) is shown the
task's input (ILC) noise instead, and the result says so (``noise_source``). The decoded points d = (r_obs F^T)[slot's (cos, sin)] over the decode window give

* signal = mean point (a 2-vector),
* noise1 = covariance of all (trial, step) points (per-step noise),
* noise2 = covariance of the per-trial time-averaged points (what the decoder averages),
* power = trace(covariance), SNR = |signal|^2 / power, dB = 10 log10 SNR.

If resources are shared by normalisation, SNR ~ 1/n, i.e. -10 dB per decade of set size;
:func:`db_slope` fits that slope by least squares.

Side views (the reference's): per neuron, the mean against the trial-to-trial SD of the rate
(delay epoch), of the recurrent input W_eff r (delay epoch) and of the external input B u (the
second stimulus step), for each set size (the inputs for rate networks only); and sample
trajectories (a few neurons' rates and the decoded point over a trial) per set size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from analysis.core.agent_protocol import is_rate_network, needs_states, run_agent
from analysis.core.neural_trials import ForcedTrials, forced_trials, simulate
from analysis.core.tasks import needs_vwm_task

__all__ = ["SNRStats", "SNRResult", "SideView", "snr_from_points", "db_slope", "has_own_noise",
           "unavailable", "run"]

N_SAMPLE_TRIALS = 3
N_SAMPLE_NEURONS = 5


@dataclass
class SNRStats:
    """SNR of one cloud of decoded points."""

    signal: np.ndarray
    noise1_covariance: np.ndarray
    noise2_covariance: np.ndarray

    @property
    def signal_magnitude(self) -> float:
        return float(np.linalg.norm(self.signal))

    @property
    def noise1_power(self) -> float:
        return float(np.trace(self.noise1_covariance))

    @property
    def noise2_power(self) -> float:
        return float(np.trace(self.noise2_covariance))

    @property
    def snr1(self) -> float:
        return self.signal_magnitude**2 / self.noise1_power

    @property
    def snr2(self) -> float:
        return self.signal_magnitude**2 / self.noise2_power

    @property
    def snr1_db(self) -> float:
        return float(10.0 * np.log10(self.snr1))

    @property
    def snr2_db(self) -> float:
        return float(10.0 * np.log10(self.snr2))

    def to_dict(self) -> dict:
        return {
            "signal": self.signal.tolist(),
            "signal_magnitude": self.signal_magnitude,
            "noise1": {"covariance": self.noise1_covariance.tolist(), "power": self.noise1_power},
            "noise2": {"covariance": self.noise2_covariance.tolist(), "power": self.noise2_power},
            "SNR1": self.snr1,
            "SNR2": self.snr2,
            "SNR1_dB": self.snr1_db,
            "SNR2_dB": self.snr2_db,
        }


def snr_from_points(points: np.ndarray) -> SNRStats:
    """Signal and the two noise covariances of decoded points ``(trials, steps, 2)``."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 3 or points.shape[-1] != 2 or points.shape[0] < 2 or points.shape[1] < 1:
        raise ValueError(f"points must be (trials >= 2, steps, 2), got shape {points.shape}")
    signal = points.mean(axis=(0, 1))
    noise1 = np.cov(points.reshape(-1, 2), rowvar=False)
    noise2 = np.cov(points.mean(axis=1), rowvar=False)
    return SNRStats(signal, noise1, noise2)


def db_slope(set_sizes, db) -> tuple[float, float]:
    """Least-squares slope of dB against log10(set size) (dB per decade) and its standard error.

    The standard error is nan with fewer than three set sizes.
    """
    x = np.log10(np.asarray(set_sizes, dtype=float))
    y = np.asarray(db, dtype=float)
    if x.shape != y.shape or x.size < 2 or np.ptp(x) == 0:
        raise ValueError("db_slope needs matching arrays over at least two different set sizes")
    design = np.stack([x, np.ones_like(x)], 1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    if x.size < 3:
        return float(coef[0]), float("nan")
    residual = y - design @ coef
    sigma2 = residual @ residual / (x.size - 2)
    se = np.sqrt(sigma2 / np.sum((x - x.mean()) ** 2))
    return float(coef[0]), float(se)


@dataclass
class SideView:
    """Per-neuron mean and trial-to-trial SD of one quantity at one set size."""

    mean: np.ndarray
    sd: np.ndarray

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "sd": self.sd.tolist()}


def _mean_sd(values: np.ndarray, start: int, end: int) -> SideView:
    """values (trials, T, N) -> per neuron mean over trials and steps [start, end), and SD across
    trials averaged over those steps."""
    window = values[:, start:end]
    return SideView(window.mean((0, 1)), window.std(0, ddof=1).mean(0))


@dataclass
class SNRResult:
    """SNR per set size, its dB slope, and the point clouds (kept for the figures only)."""

    set_sizes: list[int]
    stats: dict[int, SNRStats]
    true_orientation: dict[int, float]
    slot: int
    n_trials: int
    slope1_db_per_decade: float
    slope1_se: float
    slope2_db_per_decade: float
    slope2_se: float
    points: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    noise_source: str = "agent"
    """"agent" (its own noise) or "input" (the task's ILC noise, for noiseless agents)."""
    input_noise: float = 0.0
    side_views: dict[str, dict[int, SideView]] = field(default_factory=dict)
    """"rate", "recurrent_input", "external_input" -> set size -> per-neuron mean and SD."""
    sample_rates: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    """set size -> (N_SAMPLE_TRIALS, T, N_SAMPLE_NEURONS) rates of a few neurons."""
    sample_decoded: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    """set size -> (N_SAMPLE_TRIALS, T, 2) the slot's decoded point over each trial."""
    sample_neurons: list[int] = field(default_factory=list)
    epochs: dict[str, tuple[int, int]] = field(default_factory=dict)
    dt_ms: float = 1.0
    """Duration of one time step (the figures' time axes are in ms)."""

    def to_dict(self) -> dict:
        return {
            "slot": self.slot,
            "dt_ms": self.dt_ms,
            "n_trials": self.n_trials,
            "noise_source": self.noise_source,
            "input_noise": self.input_noise,
            "side_views": {
                name: {str(n): view.to_dict() for n, view in views.items()}
                for name, views in self.side_views.items()
            },
            "sample_neurons": self.sample_neurons,
            "epochs": {name: list(bounds) for name, bounds in self.epochs.items()},
            "set_sizes": self.set_sizes,
            "per_set_size": {
                str(n): {
                    "true_orientation": self.true_orientation[n],
                    "true_point": [np.cos(self.true_orientation[n]), np.sin(self.true_orientation[n])],
                    **self.stats[n].to_dict(),
                }
                for n in self.set_sizes
            },
            "slope_db_per_decade": {
                "SNR1": self.slope1_db_per_decade,
                "SNR1_se": _finite_or_none(self.slope1_se),
                "SNR2": self.slope2_db_per_decade,
                "SNR2_se": _finite_or_none(self.slope2_se),
                "normalisation_prediction": -10.0,
            },
        }


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def has_own_noise(model: torch.nn.Module, trials: ForcedTrials, seed: int = 0) -> bool:
    """Whether two runs of the agent on the same trial, noise on, give different outputs."""
    ob = trials.ob[:1].repeat(2, 1, 1).to(next(model.parameters()).device)
    generator = torch.Generator(device=ob.device).manual_seed(seed)
    with torch.no_grad():
        outputs, _ = run_agent(model, ob, noise=True, generator=generator)
    return not torch.equal(outputs[0], outputs[1])


def unavailable(model: torch.nn.Module, env) -> str | None:
    reason = needs_vwm_task("snr", env) or needs_states("snr", model, env)
    if reason is not None:
        return reason
    task = env.unwrapped
    k = int(task.max_items)
    probe = forced_trials(env, np.zeros((1, k)), np.eye(1, k, dtype=bool), ilc_noise=0.0, rng=0)
    if not has_own_noise(model, probe) and not float(getattr(task, "ilc_noise", 0.0)) > 0:
        return (f"snr: needs noise; {type(model).__name__} has none of its own and the task's "
                f"ilc_noise is 0")
    return None


def run(
    model: torch.nn.Module,
    env,
    *,
    n_trials: int = 1000,
    seed: int = 0,
    set_sizes: list[int] | None = None,
    slot: int = 0,
) -> SNRResult:
    """Decoded-point SNR of ``slot`` for each set size, over ``n_trials`` repeats of one stimulus.

    The agent's own noise is on (it is the noise being measured) and input (ILC) noise is 0; an
    agent without noise of its own gets the task's ILC noise instead.
    """
    task = env.unwrapped
    k = int(task.max_items)
    sizes = list(range(1, k + 1)) if set_sizes is None else [int(n) for n in set_sizes]
    if not sizes or any(n < 1 or n > k for n in sizes):
        raise ValueError(f"set_sizes must be integers in [1, {k}], got {set_sizes!r}")
    if not 0 <= slot < k:
        raise ValueError(f"slot must be in [0, {k - 1}], got {slot!r}")
    if n_trials < 2:
        raise ValueError(f"n_trials must be >= 2, got {n_trials}")
    rng = np.random.default_rng(seed)
    probe = forced_trials(env, np.zeros((1, k)), np.eye(1, k, slot, dtype=bool), ilc_noise=0.0, rng=0)
    own_noise = has_own_noise(model, probe, seed)
    input_noise = 0.0 if own_noise else float(getattr(task, "ilc_noise", 0.0))
    rate_network = is_rate_network(model)
    if rate_network:
        w_eff = model.W_eff.detach().double().cpu().numpy()
        b = model.input_weights.detach().double().cpu().numpy()
    stats, points, orientation = {}, {}, {}
    views: dict[str, dict[int, SideView]] = {"rate": {}}
    if rate_network:
        views.update(recurrent_input={}, external_input={})
    sample_rates, sample_decoded, neurons, epochs = {}, {}, [], {}
    for n in sizes:
        theta = rng.uniform(-np.pi, np.pi, k)
        others = rng.permutation(np.delete(np.arange(k), slot))[: n - 1]
        presence = np.zeros(k, bool)
        presence[[slot, *others]] = True
        trials = forced_trials(env, np.tile(theta, (n_trials, 1)), np.tile(presence, (n_trials, 1)),
                               ilc_noise=input_noise, rng=rng)
        sim = simulate(model, trials, noise=True, seed=seed + n)
        epochs = trials.fixed_epochs()
        start, end = epochs["decode"]
        outputs = sim.outputs[..., 2 * slot : 2 * slot + 2].double().numpy()
        cloud = outputs[:, start:end]
        stats[n], points[n], orientation[n] = snr_from_points(cloud), cloud, float(theta[slot])
        rates = sim.rates.double().numpy()
        if not neurons:
            count = min(N_SAMPLE_NEURONS, rates.shape[-1])
            # Own generator: the sample shown must not change the stimuli of later set sizes.
            pick = np.random.default_rng([seed, 1])
            neurons = sorted(pick.choice(rates.shape[-1], count, replace=False).tolist())
        sample_rates[n] = rates[:N_SAMPLE_TRIALS][..., neurons]
        sample_decoded[n] = outputs[:N_SAMPLE_TRIALS]
        delay = epochs.get("delay", epochs["decode"])
        views["rate"][n] = _mean_sd(rates, *delay)
        if rate_network:
            views["recurrent_input"][n] = _mean_sd(rates @ w_eff.T, *delay)
            stim = epochs["stimulus"][0] + 1
            views["external_input"][n] = _mean_sd(trials.ob.double().numpy() @ b.T, stim, stim + 1)
    db1 = [stats[n].snr1_db for n in sizes]
    db2 = [stats[n].snr2_db for n in sizes]
    (s1, se1), (s2, se2) = (db_slope(sizes, db1), db_slope(sizes, db2)) if len(sizes) > 1 else ((np.nan, np.nan),) * 2
    return SNRResult(
        sizes, stats, orientation, slot, n_trials, s1, se1, s2, se2, points,
        noise_source="agent" if own_noise else "input", input_noise=input_noise, side_views=views,
        sample_rates=sample_rates, sample_decoded=sample_decoded, sample_neurons=neurons,
        epochs=epochs, dt_ms=float(getattr(getattr(env, "unwrapped", env), "dt", 1.0)),
    )

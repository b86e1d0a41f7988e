"""Signal-to-noise ratio of the decoded item against set size (see docs/model.md, section
Signal-to-noise ratio).

For each set size n, up to :data:`N_STIMULI` stimuli (slot ``slot`` present plus n - 1 other
random slots, random angles, no input noise) are each shown in repeats (``n_trials`` trials in
all, at least :data:`MIN_REPEATS` per stimulus); the only variability within a stimulus is the
agent's own noise (the Dale RNN's spiking noise). An agent without noise of its own (a GRU) is
shown the task's input (ILC) noise instead, and the result says so (``noise_source``). The
decoded points d = (r_obs F^T)[slot's (cos, sin)] over the decode window, each stimulus' rotated
so that its true orientation lies on (1, 0), give

* signal = the mean point's projection on the true orientation (a decode that points elsewhere
  carries no signal however long it is; negative when it points away),
* noise1 = covariance of all (trial, step) points of a stimulus (per-step noise), averaged over
  stimuli,
* noise2 = covariance of the per-trial time-averaged points (what the decoder averages),
* power = trace(covariance), SNR = max(signal, 0)^2 / power, dB = 10 log10 SNR (-inf: no
  signal).

If resources are shared by normalisation, SNR ~ 1/n, i.e. -10 dB per decade of set size;
:func:`db_slope` fits that slope by least squares. The SEs of each dB value and of the slope
(with its 95 % interval) come from a bootstrap over the stimuli (:data:`N_BOOTSTRAP`
resamples), the sampling unit that varies the signal.

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

__all__ = [
    "SNRStats",
    "SNRResult",
    "SideView",
    "snr_from_points",
    "snr_from_stimuli",
    "bootstrap_db",
    "slope_uncertainty",
    "db_slope",
    "has_own_noise",
    "unavailable",
    "run",
]

N_SAMPLE_TRIALS = 3
N_SAMPLE_NEURONS = 5
N_STIMULI = 16
"""Stimuli (orientations and other items) per set size, at most."""
MIN_REPEATS = 4
"""Repeats of each stimulus at least (fewer stimuli when ``n_trials`` is small)."""
N_BOOTSTRAP = 200
"""Resamples of the stimuli for the SEs of the dB values and of the slope."""


@dataclass
class SNRStats:
    """SNR of one cloud of decoded points."""

    signal: np.ndarray
    noise1_covariance: np.ndarray
    noise2_covariance: np.ndarray
    projected: bool = False
    """``signal`` is in the frame of the true orientation: its first component is the signal."""
    per_stimulus: np.ndarray | None = None
    """(stimuli, 3): each stimulus' signal projection, noise1 and noise2 power (the bootstrap)."""

    @property
    def signal_magnitude(self) -> float:
        """The signal: the projection on the true orientation (projected), else |mean point|."""
        if self.projected:
            return float(self.signal[0])
        return float(np.linalg.norm(self.signal))

    @property
    def noise1_power(self) -> float:
        return float(np.trace(self.noise1_covariance))

    @property
    def noise2_power(self) -> float:
        return float(np.trace(self.noise2_covariance))

    @property
    def snr1(self) -> float:
        return max(self.signal_magnitude, 0.0) ** 2 / self.noise1_power

    @property
    def snr2(self) -> float:
        return max(self.signal_magnitude, 0.0) ** 2 / self.noise2_power

    @property
    def snr1_db(self) -> float:
        return _db(self.snr1)

    @property
    def snr2_db(self) -> float:
        return _db(self.snr2)

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


def _db(ratio) -> np.ndarray | float:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(ratio)


def snr_from_stimuli(points: np.ndarray) -> SNRStats:
    """Signal (projection) and noise of decoded points ``(stimuli, repeats, steps, 2)`` already
    rotated so that each stimulus' true orientation is (1, 0); noise within each stimulus,
    averaged over stimuli."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 4 or points.shape[-1] != 2 or points.shape[1] < 2:
        raise ValueError(f"points must be (stimuli, repeats >= 2, steps, 2), got {points.shape}")
    each = [snr_from_points(stimulus) for stimulus in points]
    per_stimulus = np.array([[e.signal[0], e.noise1_power, e.noise2_power] for e in each])
    return SNRStats(
        points.mean(axis=(0, 1, 2)),
        np.mean([e.noise1_covariance for e in each], axis=0),
        np.mean([e.noise2_covariance for e in each], axis=0),
        projected=True,
        per_stimulus=per_stimulus,
    )


def bootstrap_db(
    stats: dict[int, SNRStats], n_bootstrap: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """dB per set size of ``n_bootstrap`` resamples of the stimuli: ``{"snr1": (B, sizes),
    "snr2": (B, sizes)}`` (-inf where a resample has no signal)."""
    sizes = sorted(stats)
    out = {"snr1": np.empty((n_bootstrap, len(sizes))), "snr2": np.empty((n_bootstrap, len(sizes)))}
    for j, n in enumerate(sizes):
        table = stats[n].per_stimulus
        rows = table[rng.integers(0, len(table), (n_bootstrap, len(table)))]  # (B, S, 3)
        signal = np.maximum(rows[..., 0].mean(1), 0.0) ** 2
        out["snr1"][:, j] = _db(signal / rows[..., 1].mean(1))
        out["snr2"][:, j] = _db(signal / rows[..., 2].mean(1))
    return out


def slope_uncertainty(sizes: list[int], draws: np.ndarray) -> tuple[float, list[float]]:
    """SE and 95 % interval of the dB slope over bootstrap ``draws`` (B, sizes) (nan with fewer
    than two finite set sizes in a resample)."""
    slopes = []
    for row in draws:
        ok = np.isfinite(row)
        if ok.sum() >= 2 and np.ptp(np.asarray(sizes)[ok]) > 0:
            slopes.append(db_slope(np.asarray(sizes)[ok], row[ok])[0])
    if len(slopes) < 2:
        return float("nan"), [float("nan"), float("nan")]
    return float(np.std(slopes, ddof=1)), np.percentile(slopes, [2.5, 97.5]).tolist()


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


def _mean_sd(
    values: np.ndarray, start: int, end: int, per_stimulus: tuple[int, int] | None = None
) -> SideView:
    """values (trials, T, N) -> per neuron mean over trials and steps [start, end), and SD across
    trials averaged over those steps; with ``per_stimulus`` (stimuli, repeats) the trials are
    that many repeats of each stimulus and the SD is across the repeats of one stimulus,
    averaged over stimuli."""
    window = values[:, start:end]
    if per_stimulus is None:
        return SideView(window.mean((0, 1)), window.std(0, ddof=1).mean(0))
    window = window.reshape(*per_stimulus, *window.shape[1:])
    return SideView(window.mean((0, 1, 2)), window.std(1, ddof=1).mean((0, 1)))


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
    db_se: dict[int, tuple[float, float]] = field(default_factory=dict)
    """set size -> bootstrap SE (over stimuli) of the per-step and time-averaged dB."""
    slope1_ci: list[float] = field(default_factory=lambda: [np.nan, np.nan])
    slope2_ci: list[float] = field(default_factory=lambda: [np.nan, np.nan])
    n_stimuli: int = 1
    repeats: int = 0
    dt_ms: float = 1.0
    """Duration of one time step (the figures' time axes are in ms)."""

    def to_dict(self) -> dict:
        return {
            "slot": self.slot,
            "n_stimuli_per_set_size": self.n_stimuli,
            "repeats_per_stimulus": self.repeats,
            "signal": "projection of the mean decoded point on the true orientation",
            "uncertainty": f"bootstrap over the stimuli ({N_BOOTSTRAP} resamples)",
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
                    "true_point": [
                        np.cos(self.true_orientation[n]),
                        np.sin(self.true_orientation[n]),
                    ],
                    **self.stats[n].to_dict(),
                    "SNR1_dB_se": _finite_or_none(self.db_se.get(n, (np.nan,) * 2)[0]),
                    "SNR2_dB_se": _finite_or_none(self.db_se.get(n, (np.nan,) * 2)[1]),
                }
                for n in self.set_sizes
            },
            "slope_db_per_decade": {
                "SNR1": self.slope1_db_per_decade,
                "SNR1_se": _finite_or_none(self.slope1_se),
                "SNR1_ci95": [_finite_or_none(v) for v in self.slope1_ci],
                "SNR2": self.slope2_db_per_decade,
                "SNR2_se": _finite_or_none(self.slope2_se),
                "SNR2_ci95": [_finite_or_none(v) for v in self.slope2_ci],
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
        return (
            f"snr: needs noise; {type(model).__name__} has none of its own and the task's "
            f"ilc_noise is 0"
        )
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
    probe = forced_trials(
        env, np.zeros((1, k)), np.eye(1, k, slot, dtype=bool), ilc_noise=0.0, rng=0
    )
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
    n_stimuli = max(1, min(N_STIMULI, n_trials // MIN_REPEATS))
    repeats = max(n_trials // n_stimuli, 2)
    for n in sizes:
        theta = rng.uniform(-np.pi, np.pi, (n_stimuli, k))
        presence = np.zeros((n_stimuli, k), bool)
        for row in presence:
            others = rng.permutation(np.delete(np.arange(k), slot))[: n - 1]
            row[[slot, *others]] = True
        trials = forced_trials(
            env,
            np.repeat(theta, repeats, 0),
            np.repeat(presence, repeats, 0),
            ilc_noise=input_noise,
            rng=rng,
        )
        sim = simulate(model, trials, noise=True, seed=seed + n)
        epochs = trials.fixed_epochs()
        start, end = epochs["decode"]
        outputs = sim.outputs[..., 2 * slot : 2 * slot + 2].double().numpy()
        cloud = outputs[:, start:end].reshape(n_stimuli, repeats, end - start, 2)
        angle = theta[:, slot][:, None, None]
        rotated = np.stack(
            [
                np.cos(angle) * cloud[..., 0] + np.sin(angle) * cloud[..., 1],
                -np.sin(angle) * cloud[..., 0] + np.cos(angle) * cloud[..., 1],
            ],
            -1,
        )
        stats[n] = snr_from_stimuli(rotated)
        points[n] = rotated.reshape(n_stimuli * repeats, end - start, 2)
        orientation[n] = float(theta[0, slot])
        rates = sim.rates.double().numpy()
        if not neurons:
            count = min(N_SAMPLE_NEURONS, rates.shape[-1])
            # Own generator: the sample shown must not change the stimuli of later set sizes.
            pick = np.random.default_rng([seed, 1])
            neurons = sorted(pick.choice(rates.shape[-1], count, replace=False).tolist())
        shown = min(N_SAMPLE_TRIALS, repeats)  # repeats of the first stimulus
        sample_rates[n] = rates[:shown][..., neurons]
        sample_decoded[n] = outputs[:shown]
        delay = epochs.get("delay", epochs["decode"])
        per_stimulus = (n_stimuli, repeats)
        views["rate"][n] = _mean_sd(rates, *delay, per_stimulus)
        if rate_network:
            views["recurrent_input"][n] = _mean_sd(rates @ w_eff.T, *delay, per_stimulus)
            stim = epochs["stimulus"][0] + 1
            views["external_input"][n] = _mean_sd(
                trials.ob.double().numpy() @ b.T, stim, stim + 1, per_stimulus
            )
    draws = bootstrap_db(stats, N_BOOTSTRAP, np.random.default_rng([seed, 2]))
    db_se = {
        n: tuple(
            float(np.std(d[np.isfinite(d)], ddof=1)) if np.isfinite(d).sum() > 1 else float("nan")
            for d in (draws["snr1"][:, j], draws["snr2"][:, j])
        )
        for j, n in enumerate(sizes)
    }
    slopes = []
    for key in ("snr1", "snr2"):
        db = np.array([getattr(stats[n], f"{key}_db") for n in sizes])
        ok = np.isfinite(db)
        slope = db_slope(np.asarray(sizes)[ok], db[ok])[0] if ok.sum() >= 2 else float("nan")
        slopes.append((slope, *slope_uncertainty(sizes, draws[key])))
    (s1, se1, ci1), (s2, se2, ci2) = slopes
    return SNRResult(
        sizes,
        stats,
        orientation,
        slot,
        n_trials,
        s1,
        se1,
        s2,
        se2,
        points,
        noise_source="agent" if own_noise else "input",
        input_noise=input_noise,
        side_views=views,
        sample_rates=sample_rates,
        sample_decoded=sample_decoded,
        sample_neurons=neurons,
        epochs=epochs,
        db_se=db_se,
        slope1_ci=ci1,
        slope2_ci=ci2,
        n_stimuli=n_stimuli,
        repeats=repeats,
        dt_ms=float(getattr(getattr(env, "unwrapped", env), "dt", 1.0)),
    )

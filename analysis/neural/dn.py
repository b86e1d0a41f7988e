"""Divisive normalisation: sublinear summation of items, against a linear null, and the load on
input and rate within one epoch (see docs/model.md, section Divisive normalisation;
Carandini & Heeger 2012).

1. Summation. For each of ``n_trials`` angle draws, the epoch-mean rates (decode epoch by
   default) with an item in slot a alone (r1), in slot b alone (r2) and in both (r12, same
   angles) are compared with the same epoch's response to no item (r0, the baseline, averaged
   over trials). One least-squares fit across neurons per trial,

       r12 - r0 ~ w1 (r1 - r0) + w2 (r2 - r0),

   gives w1 + w2 = 2 for any linear network (superposition) and < 2 when each item's response
   is divided down by the other's. The reference's fit on raw rates (r12 ~ w1 r1 + w2 r2) is
   reported too: it is biased below 2 by any shared baseline, normalisation or not.
   The per-trial weights are heavy-tailed where a one-item response is near zero (a trial
   whose single item left almost nothing in the epoch gives a huge w): their mean is not a
   summary. The headline is the pooled fit (the same regression over every trial's neurons at
   once, so that each trial counts by the size of its responses), with its SE from a bootstrap
   over trials; the per-trial median and mean are kept beside it.
2. The null. The same fits on a linear network of the same size, built here: the model's own
   linearisation at its operating point (its weights, time constants and no-item baseline, with
   phi replaced by its slope at the rates the model has with the items shown: the mean of its
   one- and two-item responses in the fitted epoch; for the load, at its stimulus-epoch rates).
   Linearised at the no-item baseline instead, a network nearly silent there has a slope near
   0 and a null that responds a hundred times less than the model: another operating point. Its epoch means get the model's per-neuron trial-to-trial SD
   (measured on repeats of one two-item stimulus), scaled by the ratio of the null's response
   size to the model's, so that its fit sees the model's signal-to-noise ratio (and so the same
   attenuation of the weights by noise in the regressors). Its w1 + w2 is what the analysis
   gives without normalisation.
3. Load, within one epoch. For each set size, the stimulus-epoch mean external input B u and the
   stimulus-epoch mean rate above baseline, for the model and the linear null. Without
   normalisation the rate follows the input (linearly in the null); normalisation flattens it.
   The decode-epoch rate is listed apart (there is no input then).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from analysis.core.agent_protocol import needs_rate_network
from analysis.core.neural_trials import ForcedTrials, forced_trials, simulate
from analysis.core.tasks import needs_vwm_task

__all__ = [
    "dn_weights",
    "pooled_weights",
    "weight_summary",
    "LinearNull",
    "DNResult",
    "unavailable",
    "run",
]

MAX_NULL_GAIN = 0.9
"""Largest real part allowed for the eigenvalues of the null's recurrent map diag(g) W_eff
(stability of the linear null); a larger one is scaled down to it and the scale is reported."""


def dn_weights(r1: np.ndarray, r2: np.ndarray, r12: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-trial least-squares weights of ``r12 ~ w1 r1 + w2 r2`` across neurons.

    Args:
        r1, r2, r12: (trials, N) responses (or (N,) for one trial).

    Returns:
        w1, w2: (trials,) (or scalars); nan where r1 and r2 are collinear.
    """
    return _solve(*_normal_equations(r1, r2, r12))


def _normal_equations(r1, r2, r12) -> tuple[np.ndarray, ...]:
    """(a11, a12, a22, b1, b2) of the least-squares fit, per trial (summed over neurons)."""
    r1, r2, r12 = (np.asarray(a, dtype=float) for a in (r1, r2, r12))
    if not r1.shape == r2.shape == r12.shape:
        raise ValueError(
            f"r1, r2, r12 must have the same shape, got {r1.shape}, {r2.shape}, {r12.shape}"
        )
    return (
        (r1 * r1).sum(-1),
        (r1 * r2).sum(-1),
        (r2 * r2).sum(-1),
        (r1 * r12).sum(-1),
        (r2 * r12).sum(-1),
    )


def _solve(a11, a12, a22, b1, b2) -> tuple[np.ndarray, np.ndarray]:
    det = a11 * a22 - a12**2
    singular = det <= 1e-12 * np.maximum(a11 * a22, np.finfo(float).tiny)
    det = np.where(singular, np.nan, det)
    return (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det


def pooled_weights(
    r1: np.ndarray, r2: np.ndarray, r12: np.ndarray, *, n_bootstrap: int = 2000, seed: int = 0
) -> dict:
    """One least-squares fit of ``r12 ~ w1 r1 + w2 r2`` over the neurons of every trial.

    Each trial weighs by the size of its responses, so a trial whose one-item response is
    near zero (a huge, meaningless per-trial weight) counts for little. The SE of w1 + w2 is
    the SD of the same fit over ``n_bootstrap`` resamples of whole trials (seeded).

    Args:
        r1, r2, r12: (trials, N) responses.

    Returns:
        ``{"w1", "w2", "w_sum", "w_sum_se", "w_sum_ci95"}`` (SE and interval None for one trial).
    """
    terms = np.stack(_normal_equations(r1, r2, r12), axis=-1)  # (trials, 5)
    if terms.ndim != 2:
        raise ValueError(f"r1, r2, r12 must be (trials, N), got shape {np.shape(r1)}")
    w1, w2 = _solve(*terms.sum(0))
    out = {"w1": float(w1), "w2": float(w2), "w_sum": float(w1 + w2)}
    n = terms.shape[0]
    if n < 2:
        return {**out, "w_sum_se": None, "w_sum_ci95": None}
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap)  # trials drawn
    b1, b2 = _solve(*(counts @ terms).T)
    sums = (b1 + b2)[np.isfinite(b1 + b2)]
    low, high = np.percentile(sums, [2.5, 97.5])
    return {**out, "w_sum_se": float(sums.std(ddof=1)), "w_sum_ci95": [float(low), float(high)]}


def weight_summary(w1: np.ndarray, w2: np.ndarray, pooled: dict | None = None) -> dict:
    """Per-trial weights: mean w1, w2, w1 + w2 with the SE of the sum across trials, the
    median of the sum and the DN-region fraction; with ``pooled`` (:func:`pooled_weights`)
    the pooled fit beside them (``pooled_w_sum``, ``pooled_w_sum_se``, ...)."""
    w1, w2 = np.asarray(w1, float), np.asarray(w2, float)
    ok = np.isfinite(w1) & np.isfinite(w2)
    w1, w2 = w1[ok], w2[ok]
    total = w1 + w2
    in_region = (w1 >= 0) & (w1 <= 1) & (w2 >= 0) & (w2 <= 1)
    summary = {
        "w1": w1.tolist(),
        "w2": w2.tolist(),
        "w1_mean": float(w1.mean()) if w1.size else None,
        "w2_mean": float(w2.mean()) if w2.size else None,
        "w_sum_mean": float(total.mean()) if total.size else None,
        "w_sum_se": float(total.std(ddof=1) / np.sqrt(total.size)) if total.size > 1 else None,
        "w_sum_median": float(np.median(total)) if total.size else None,
        "fraction_in_dn_region": float(in_region.mean()) if w1.size else None,
        "n_singular": int((~ok).sum()),
    }
    if pooled is not None:
        summary.update({f"pooled_{key}": value for key, value in pooled.items()})
    return summary


def _fits(r1, r2, r12, base, seed: int) -> dict:
    """Raw and baseline-subtracted summaries (per trial and pooled) of one set of responses."""
    return {
        "raw": weight_summary(*dn_weights(r1, r2, r12), pooled_weights(r1, r2, r12, seed=seed)),
        "baseline_subtracted": weight_summary(
            *dn_weights(r1 - base, r2 - base, r12 - base),
            pooled_weights(r1 - base, r2 - base, r12 - base, seed=seed),
        ),
    }


@dataclass
class LinearNull:
    """The linearised network: rates r0 + d with d <- d + leak (-d + g (W_eff d + B u))."""

    baseline: Tensor
    """(N,) r0, the model's baseline rates in the fitted epoch."""
    gain: Tensor
    """(N,) g = phi'(W_eff r0), the slope of phi at the baseline."""
    recurrent: Tensor
    """(N, N) diag(g) W_eff, scaled by ``scale``."""
    input_weights: Tensor
    leak: Tensor
    scale: float
    """factor applied to diag(g) W_eff for stability (1: none)."""

    @classmethod
    def of(
        cls, model: torch.nn.Module, baseline: np.ndarray, operating_point: np.ndarray | None = None
    ) -> LinearNull:
        """The linearisation of ``model`` at the rates ``operating_point`` (default: the
        baseline), responding around ``baseline``."""
        dtype = torch.float64
        with torch.no_grad():
            w_eff = model.W_eff.detach().to("cpu", dtype)
            r0 = torch.as_tensor(baseline, dtype=dtype)
            r_op = r0 if operating_point is None else torch.as_tensor(operating_point, dtype=dtype)
        pre = (w_eff @ r_op).requires_grad_(True)
        with torch.enable_grad():
            phi = model.phi(pre.to(next(model.parameters()).device, torch.float32))
            (gain,) = torch.autograd.grad(phi.sum(), pre)
        gain = gain.detach()
        recurrent = gain[:, None] * w_eff
        abscissa = float(torch.linalg.eigvals(recurrent).real.max())
        scale = 1.0 if abscissa < MAX_NULL_GAIN else MAX_NULL_GAIN / abscissa
        return cls(
            r0,
            gain,
            recurrent * scale,
            model.input_weights.detach().to("cpu", dtype),
            model.leak.detach().to("cpu", dtype),
            scale,
        )

    def rates(self, ob: Tensor) -> np.ndarray:
        """Noise-free rates (B, T, N) for inputs ``ob (B, T, n_in)``."""
        ob = ob.to(torch.float64)
        drive = self.gain * (ob @ self.input_weights.T)
        d = torch.zeros(ob.shape[0], self.baseline.shape[0], dtype=torch.float64)
        out = []
        for t in range(ob.shape[1]):
            d = d + self.leak * (-d + d @ self.recurrent.T + drive[:, t])
            out.append(d)
        return (torch.stack(out, 1) + self.baseline).numpy()


@dataclass
class DNResult:
    """Summation weights (model and linear null; raw and baseline-subtracted) and the load."""

    epoch: str
    n_trials: int
    model: dict
    """{"raw": weight_summary, "baseline_subtracted": weight_summary}."""
    null: dict
    """The same for the linear null."""
    null_scale: float
    set_sizes: list[int]
    mean_input: list[float]
    """Stimulus epoch, mean over neurons and trials of B u."""
    rate_stimulus: list[float]
    """Stimulus epoch, mean rate above the no-item baseline (model)."""
    null_rate_stimulus: list[float]
    """The same for the linear null."""
    rate_decode: list[float]
    """Decode epoch, mean rate (no input then; listed apart)."""
    baseline_rate: dict[str, float] = field(default_factory=dict)
    noise_sd: float = 0.0
    """Mean over neurons of the model's trial-to-trial SD in the fitted epoch (two items)."""
    signal_to_noise: float = 0.0
    """RMS response above baseline over that SD: the same for the model and the null."""
    operating_point: dict[str, float] = field(default_factory=dict)
    """Mean rate at which the null is linearised (fitted epoch; stimulus epoch for the load),
    and the RMS response above baseline of the model and of the noise-free null there."""

    @property
    def w1(self) -> np.ndarray:
        return np.asarray(self.model["baseline_subtracted"]["w1"])

    @property
    def w2(self) -> np.ndarray:
        return np.asarray(self.model["baseline_subtracted"]["w2"])

    def to_dict(self) -> dict:
        def growth(values: list[float]) -> list[float | None]:
            first = values[0] if values else 0.0
            return [v / first if first else None for v in values]

        return {
            "n_trials": self.n_trials,
            "epoch": self.epoch,
            "summation": {
                "fit": "r12 - r0 ~ w1 (r1 - r0) + w2 (r2 - r0) across neurons, one fit per "
                "trial (w1, w2, w_sum_*) and one over every trial's neurons (pooled_*, SE by a "
                "bootstrap over trials)",
                "model": self.model,
                "linear_null": self.null,
                "linear_null_recurrence_scale": self.null_scale,
                "trial_to_trial_sd": self.noise_sd,
                "response_to_noise_ratio": self.signal_to_noise,
                "null_operating_point": self.operating_point,
                "baseline_rate": self.baseline_rate,
            },
            "load": {
                "epoch": "stimulus",
                "set_sizes": self.set_sizes,
                "mean_input": self.mean_input,
                "rate_above_baseline": self.rate_stimulus,
                "null_rate_above_baseline": self.null_rate_stimulus,
                "growth_relative_to_set_size_1": {
                    "input": growth(self.mean_input),
                    "rate": growth(self.rate_stimulus),
                    "null_rate": growth(self.null_rate_stimulus),
                },
                "rate_decode_epoch": self.rate_decode,
            },
        }


def unavailable(model: torch.nn.Module, env) -> str | None:
    return needs_vwm_task("dn", env, min_items=2) or needs_rate_network("dn", model)


def _trials(env, theta: np.ndarray, present: list[int], rng) -> ForcedTrials:
    presence = np.zeros(theta.shape, bool)
    presence[:, present] = True
    return forced_trials(env, theta, presence, rng=rng)


@torch.no_grad()
def run(
    model: torch.nn.Module,
    env,
    *,
    n_trials: int = 100,
    seed: int = 0,
    set_sizes: list[int] | None = None,
    slots: tuple[int, int] = (0, 1),
    epoch: str = "decode",
    progress: bool = False,
) -> DNResult:
    """Summation weights over ``n_trials`` angle draws in ``epoch`` (model and linear null), and
    stimulus-epoch input and rate per set size. Input (ILC) noise is the env's, drawn separately
    in each condition as in the reference; the model's spiking noise is on. ``progress``: a bar
    over its simulations (4 conditions, the repeats, one per set size), each of ``n_trials``
    trials, so its estimate of the time left is right."""
    from tqdm.auto import tqdm

    task = env.unwrapped
    k = int(task.max_items)
    if k < 2:
        raise ValueError("the normalisation analysis needs max_items >= 2")
    a, b = slots
    if a == b or not (0 <= a < k and 0 <= b < k):
        raise ValueError(f"slots must be two different slots in [0, {k - 1}], got {slots!r}")
    sizes = list(range(1, k + 1)) if set_sizes is None else [int(n) for n in set_sizes]
    if not sizes or any(n < 1 or n > k for n in sizes):
        raise ValueError(f"set_sizes must be integers in [1, {k}], got {set_sizes!r}")
    if n_trials < 2:
        raise ValueError(f"n_trials must be >= 2, got {n_trials}")
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-np.pi, np.pi, (n_trials, k))
    bar = tqdm(
        total=5 + len(sizes), desc="dn simulations", unit="sim", disable=not progress, leave=False
    )

    responses, trials_by_condition = [], []
    for i, present in enumerate(([], [a], [b], [a, b])):
        trials = _trials(env, theta, present, rng)
        rates = simulate(model, trials, noise=True, seed=seed + i).rates.double().numpy()
        responses.append(trials.epoch_mean(rates, epoch))
        trials_by_condition.append(trials)
        bar.update()
        if i == 0:
            baseline_trials = rates
    r0, r1, r2, r12 = responses
    base = r0.mean(0)
    operating = np.mean([r1, r2, r12], axis=(0, 1))
    null = LinearNull.of(model, base, operating)
    clean_null = [trials.epoch_mean(null.rates(trials.ob), epoch) for trials in trials_by_condition]

    # The model's trial-to-trial noise in the fitted responses: repeats of one two-item stimulus
    # (fresh spiking and input noise each time), per neuron.
    repeats = _trials(env, np.repeat(theta[:1], max(n_trials, 2), 0), [a, b], rng)
    noise_sd = repeats.epoch_mean(
        simulate(model, repeats, noise=True, seed=seed + 4).rates.double().numpy(), epoch
    ).std(0, ddof=1)
    bar.update()
    # The null's responses are of another size (phi's slope at the baseline); give them the same
    # noise relative to their size, so that the fit sees the same signal-to-noise ratio.
    size_model = np.sqrt(np.mean([(r - base) ** 2 for r in (r1, r2, r12)]))
    size_null = np.sqrt(np.mean([(n - clean_null[0]) ** 2 for n in clean_null[1:]]))
    relative = size_null / size_model if size_model > 0 else 0.0
    n0, n1, n2, n12 = (n + relative * noise_sd * rng.standard_normal(n.shape) for n in clean_null)
    null_base = n0.mean(0)
    model_fits = _fits(r1, r2, r12, base, seed)
    null_fits = _fits(n1, n2, n12, null_base, seed)

    stim_base = trials_by_condition[0].epoch_mean(baseline_trials, "stimulus").mean(0)
    stim_baseline = float(stim_base.mean())
    weights = model.input_weights.detach().double().cpu().numpy()
    mean_input, rate_stim, rate_decode, load_trials = [], [], [], []
    stim_rates = []
    for n in sizes:
        theta_n = rng.uniform(-np.pi, np.pi, (n_trials, k))
        order = np.argsort(rng.random((n_trials, k)), axis=1)
        presence = np.zeros((n_trials, k), bool)
        np.put_along_axis(presence, order[:, :n], True, axis=1)
        trials = forced_trials(env, theta_n, presence, rng=rng)
        rates = simulate(model, trials, noise=True, seed=seed + 10 + n).rates.double().numpy()
        drive = trials.ob.double().numpy() @ weights.T
        mean_input.append(float(trials.epoch_mean(drive, "stimulus").mean()))
        stim_rates.append(trials.epoch_mean(rates, "stimulus").mean(0))
        rate_stim.append(float(stim_rates[-1].mean() - stim_baseline))
        rate_decode.append(float(trials.epoch_mean(rates, "decode").mean()))
        load_trials.append(trials)
        bar.update()
    bar.close()
    # the load's null: linearised at the model's stimulus-epoch rates with the items shown
    load_null = LinearNull.of(model, stim_base, np.mean(stim_rates, axis=0))
    null_stim_baseline = float(load_null.baseline.mean())
    null_stim = [
        float(trials.epoch_mean(load_null.rates(trials.ob), "stimulus").mean() - null_stim_baseline)
        for trials in load_trials
    ]
    clean_size = np.sqrt(np.mean([(n - clean_null[0]) ** 2 for n in clean_null[1:]]))
    operating_point = {
        "epoch": epoch,
        "mean_rate": float(operating.mean()),
        "baseline_rate": float(base.mean()),
        "model_response_rms": float(size_model),
        "null_response_rms": float(clean_size),
        "load_epoch": "stimulus",
        "load_mean_rate": float(np.mean(stim_rates)),
    }
    return DNResult(
        epoch=epoch,
        n_trials=n_trials,
        model=model_fits,
        null=null_fits,
        null_scale=null.scale,
        set_sizes=sizes,
        mean_input=mean_input,
        rate_stimulus=rate_stim,
        null_rate_stimulus=null_stim,
        rate_decode=rate_decode,
        baseline_rate={epoch: float(base.mean()), "stimulus": float(stim_baseline)},
        noise_sd=float(noise_sd.mean()),
        signal_to_noise=float(size_model / noise_sd.mean())
        if noise_sd.mean() > 0
        else float("inf"),
        operating_point=operating_point,
    )

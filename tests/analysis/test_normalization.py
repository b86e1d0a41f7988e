"""Divisive normalisation: the summation weights on synthetic data; baseline-subtracted w1 + w2 = 2
on a linear network and < 2 on one with explicit divisive normalisation; run() on a Dale RNN."""

import gymnasium as gym
import neurogym  # noqa: F401  (registers DelayMatchSample-v0)
import numpy as np
import pytest
import torch

import vwm_tasks  # noqa: F401  (registers the envs)
from analysis.neural.dn import LinearNull, dn_weights, pooled_weights, run, unavailable
from vwm_agents.models.dale_rnn import DaleRNN
from vwm_agents.models.gru import GRUAgent

TIMING = {"init": 20, "stimulus": 100, "delay": 100, "decode": 100}


def test_dn_weights_recover_known_weights_exactly_without_noise():
    rng = np.random.default_rng(0)
    r1, r2 = rng.random((50, 64)), rng.random((50, 64))
    w1_true, w2_true = rng.uniform(0, 1, 50), rng.uniform(0, 1, 50)
    r12 = w1_true[:, None] * r1 + w2_true[:, None] * r2
    w1, w2 = dn_weights(r1, r2, r12)
    np.testing.assert_allclose(w1, w1_true, atol=1e-10)
    np.testing.assert_allclose(w2, w2_true, atol=1e-10)


def test_dn_weights_with_noise_within_standard_error():
    rng = np.random.default_rng(1)
    n, sigma = 2000, 0.1
    r1, r2 = rng.random(n), rng.random(n)
    r12 = 0.7 * r1 + 0.4 * r2 + sigma * rng.standard_normal(n)
    w1, w2 = dn_weights(r1, r2, r12)
    cov = sigma**2 * np.linalg.inv(np.stack([r1, r2], 1).T @ np.stack([r1, r2], 1))
    assert abs(w1 - 0.7) < 4 * np.sqrt(cov[0, 0])
    assert abs(w2 - 0.4) < 4 * np.sqrt(cov[1, 1])


def test_pooled_fit_is_not_thrown_by_trials_whose_one_item_response_is_near_zero():
    # Half the trials: the one-item responses are a thousandth of the others' while the
    # two-item response keeps its noise, so their per-trial weights are noise over ~0 (huge).
    rng = np.random.default_rng(2)
    n_trials, n_neurons, sigma, w_true = 200, 60, 0.05, 0.7
    r1, r2 = rng.random((n_trials, n_neurons)), rng.random((n_trials, n_neurons))
    r12 = w_true * (r1 + r2) + sigma * rng.standard_normal((n_trials, n_neurons))
    r1[::2] *= 1e-3
    r2[::2] *= 1e-3
    w1, w2 = dn_weights(r1, r2, r12)
    assert np.mean(np.abs(w1 + w2 - 2 * w_true)) > 10  # the per-trial mean is no summary
    pooled = pooled_weights(r1, r2, r12, seed=0)
    # OLS on all (trial, neuron) rows: var(w) = sigma^2 (X'X)^-1, its SE of w1 + w2
    x = np.stack([r1.ravel(), r2.ravel()], 1)
    cov = sigma**2 * np.linalg.inv(x.T @ x)
    se = float(np.sqrt(cov.sum()))
    assert abs(pooled["w_sum"] - 2 * w_true) < 4 * se
    # the bootstrap over trials estimates that SE (resampling error ~ 1/sqrt(2 n_trials) = 5 %,
    # the 2000 resamples' own ~ 1.6 %: 25 % is five of their combined SDs)
    assert abs(pooled["w_sum_se"] / se - 1) < 0.25
    low, high = pooled["w_sum_ci95"]
    assert low < 2 * w_true < high


def test_pooled_fit_of_one_trial_has_no_standard_error():
    rng = np.random.default_rng(3)
    r1, r2 = rng.random((1, 30)), rng.random((1, 30))
    pooled = pooled_weights(r1, r2, 0.5 * r1 + 0.25 * r2)
    assert pooled["w1"] == pytest.approx(0.5) and pooled["w2"] == pytest.approx(0.25)
    assert pooled["w_sum_se"] is None and pooled["w_sum_ci95"] is None


def test_collinear_responses_give_nan_not_garbage():
    r = np.arange(1.0, 6.0)
    w1, w2 = dn_weights(r, 2 * r, 3 * r)
    assert np.isnan(w1) and np.isnan(w2)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        dn_weights(np.ones(3), np.ones(3), np.ones(4))


def test_run_on_untrained_model():
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=32)
    result = run(model, env, n_trials=12, seed=0)
    d = result.to_dict()
    fits = d["summation"]["model"]["baseline_subtracted"]
    assert len(fits["w1"]) + fits["n_singular"] == 12
    assert d["load"]["set_sizes"] == [1, 2, 3]
    # The input encoding scales by K, not by the set size: B u grows linearly with n.
    inputs = np.array(d["load"]["mean_input"])
    np.testing.assert_allclose(inputs / inputs[0], [1, 2, 3], rtol=0.05)
    # ... and the linear null's stimulus-epoch rate above baseline follows it
    np.testing.assert_allclose(
        d["load"]["growth_relative_to_set_size_1"]["null_rate"], [1, 2, 3], rtol=0.05
    )
    assert all(np.isfinite(d["load"]["rate_decode_epoch"]))


class RateNet(torch.nn.Module):
    """A small rate network with a baseline: linear, or with explicit divisive normalisation of
    the input drive by the population's mean drive (Carandini & Heeger 2012):

        linear:     r <- r + leak (-r + c + W r + B u) + noise
        normalised: r <- r + leak (-r + c + (B u) / (1 + mean(B u) / sigma)) + noise
    """

    def __init__(
        self, n_in: int, n_out: int, n: int, *, normalised: bool, noise_sd: float, seed: int = 0
    ) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.input_weights = torch.nn.Parameter(0.1 * torch.rand(n, n_in, generator=gen))
        w = torch.zeros(n, n) if normalised else torch.randn(n, n, generator=gen) * 0.3 / n**0.5
        self.recurrent = torch.nn.Parameter(w)
        self.baseline = torch.nn.Parameter(5.0 + torch.rand(n, generator=gen))
        self.leak = torch.full((n,), 0.3)
        self.normalised, self.noise_sd, self.n_out = normalised, noise_sd, n_out

    @property
    def W_eff(self):  # noqa: N802
        return self.recurrent

    def phi(self, x):
        return x + self.baseline

    def forward(self, ob, *, noise=True, generator=None):
        drive = ob @ self.input_weights.T
        if self.normalised:
            drive = drive / (1.0 + drive.mean(-1, keepdim=True) / 2.0)
        r = self.baseline.expand(ob.shape[0], -1)
        out = []
        for t in range(ob.shape[1]):
            r = r + self.leak * (
                -r + self.phi(r @ self.recurrent.T + drive[:, t])
                if not self.normalised
                else -r + self.baseline + drive[:, t]
            )
            if noise and self.noise_sd:
                r = r + self.noise_sd * torch.randn(r.shape, generator=generator)
            out.append(r)
        rates = torch.stack(out, 1)
        return rates.new_zeros(*rates.shape[:2], self.n_out), rates


def _sum_and_se(result, which="model"):
    fits = getattr(result, which)["baseline_subtracted"]
    return fits["w_sum_mean"], fits["w_sum_se"]


def test_baseline_subtracted_sum_is_two_on_a_linear_network():
    env = gym.make("VWMRecall-v0", max_items=2, ilc_noise=0.0, timing=TIMING)
    net = RateNet(6, 4, 40, normalised=False, noise_sd=0.01)
    result = run(net, env, n_trials=40, seed=0, epoch="stimulus")
    total, se = _sum_and_se(result)
    assert se > 0
    assert abs(total - 2.0) < 3 * se
    pooled = result.model["baseline_subtracted"]
    assert abs(pooled["pooled_w_sum"] - 2.0) < 3 * pooled["pooled_w_sum_se"]
    # the raw-rate fit of the reference is far below 2 on the same linear network (baseline)
    raw = result.model["raw"]
    assert raw["w_sum_mean"] < 2.0 - 10 * raw["w_sum_se"]
    # the null is the linearisation of a linear network: itself, so it agrees
    null_total, null_se = _sum_and_se(result, "null")
    assert abs(null_total - 2.0) < 3 * null_se


def test_baseline_subtracted_sum_is_below_two_with_divisive_normalisation():
    env = gym.make("VWMRecall-v0", max_items=2, ilc_noise=0.0, timing=TIMING)
    net = RateNet(6, 4, 40, normalised=True, noise_sd=0.01)
    result = run(net, env, n_trials=40, seed=0, epoch="stimulus")
    total, se = _sum_and_se(result)
    assert total < 2.0 - 10 * se
    pooled = result.model["baseline_subtracted"]
    assert pooled["pooled_w_sum"] < 2.0 - 10 * pooled["pooled_w_sum_se"]
    null_total, null_se = _sum_and_se(result, "null")
    assert abs(null_total - 2.0) < 3 * null_se
    # stimulus-epoch rate grows less than the input with load; the null's grows with it
    d = result.to_dict()["load"]["growth_relative_to_set_size_1"]
    assert d["rate"][1] < d["null_rate"][1] - 0.2


def test_linear_null_is_linear():
    torch.manual_seed(0)
    model = DaleRNN(6, 4, n_neurons=16)
    null = LinearNull.of(model, np.full(16, 3.0))
    ob1, ob2 = torch.rand(2, 1, 10, 6).unbind(0)
    r0 = null.rates(torch.zeros(1, 10, 6))
    np.testing.assert_allclose(
        null.rates(ob1 + ob2) - r0, (null.rates(ob1) - r0) + (null.rates(ob2) - r0), atol=1e-10
    )
    assert np.all(np.real(np.linalg.eigvals(null.recurrent.numpy())) < 1.0)


def test_unavailable_names_what_is_missing():
    env = gym.make("VWMRecall-v0", max_items=2, timing=TIMING)
    assert unavailable(DaleRNN(6, 4, n_neurons=8), env) is None
    assert unavailable(GRUAgent(6, 4, n_hidden=8), env).startswith(
        "dn: specific to rate networks with non-negative rates and inputs"
    )
    assert unavailable(DaleRNN(3, 3, n_neurons=8), gym.make("DelayMatchSample-v0")).startswith(
        "dn: needs a VWM recall task; this run trained DelayMatchSample-v0"
    )
    assert "max_items >= 2" in unavailable(
        DaleRNN(3, 2, n_neurons=8), gym.make("VWMRecall-v0", max_items=1, timing=TIMING)
    )


def test_epoch_setting_changes_the_fitted_epoch():
    # analysis.dn.epoch reaches run(): the summation fit uses that epoch's rates.
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=32)
    decode = run(model, env, n_trials=6, seed=0).to_dict()
    stimulus = run(model, env, n_trials=6, seed=0, epoch="stimulus").to_dict()
    assert (decode["epoch"], stimulus["epoch"]) == ("decode", "stimulus")
    w_decode = decode["summation"]["model"]["baseline_subtracted"]["w1"]
    w_stimulus = stimulus["summation"]["model"]["baseline_subtracted"]["w1"]
    assert not np.allclose(w_decode, w_stimulus)


def test_null_is_linearised_at_the_models_operating_point():
    # phi's slope at the items' rates, not at the no-item baseline: the null answers the
    # model's question at the model's rates (a network silent at baseline has slope ~0 there)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=16)
    baseline, operating = np.full(16, 0.01), np.full(16, 5.0)
    at_baseline = LinearNull.of(model, baseline)
    at_operating = LinearNull.of(model, baseline, operating)
    pre = model.W_eff.detach().double() @ torch.as_tensor(operating)
    pre = pre.clone().requires_grad_(True)
    (slope,) = torch.autograd.grad(model.phi(pre.float()).sum(), pre)
    np.testing.assert_allclose(at_operating.gain.numpy(), slope.numpy(), rtol=1e-5)
    np.testing.assert_allclose(at_operating.baseline.numpy(), baseline)
    assert not np.allclose(at_operating.gain.numpy(), at_baseline.gain.numpy())
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    point = run(model, env, n_trials=6, seed=0).to_dict()["summation"]["null_operating_point"]
    assert point["epoch"] == "decode" and point["null_response_rms"] > 0
    assert set(point) >= {"mean_rate", "baseline_rate", "model_response_rms", "load_mean_rate"}

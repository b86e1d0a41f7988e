"""Spiking noise: moments of every type against the formulas, gradients, dt invariance.

Statistical tolerances are Z standard errors: SE(mean) = sqrt(var / n) and
SE(var) = sqrt((mu4 - var^2) / n), with the fourth central moment mu4 of the target distribution.
The gamma sampler may also be off by its documented bias (mean 0.16 %, variance 0.4 %).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from vwm_agents.models.noise import NOISE_TYPES, noise_fn, observe_rates, unit_gamma

Z = 4.5  # standard errors; with ~60 checks, a false alarm has probability < 1e-3
DT = 10.0
DT_S = DT / 1000.0
WH_MEAN_BIAS = 0.0016
WH_VAR_BIAS = 0.004


def _draw(noise_type: str, rate: float, factor: float, n: int, seed: int = 0, dt: float = DT):
    generator = torch.Generator().manual_seed(seed)
    rates = torch.full((n,), rate, dtype=torch.float64)
    return observe_rates(rates, noise_type, factor, dt, generator).numpy()


def _assert_moments(
    x: np.ndarray, mean: float, var: float, mu4: float, mean_bias=0.0, var_bias=0.0
):
    n = x.size
    se_mean = math.sqrt(var / n)
    se_var = math.sqrt((mu4 - var**2) / n)
    assert abs(x.mean() - mean) <= Z * se_mean + mean_bias * mean, (x.mean(), mean, se_mean)
    assert abs(x.var() - var) <= Z * se_var + var_bias * var, (x.var(), var, se_var)


def _gamma_moments(shape: float, rate: float) -> tuple[float, float, float]:
    """Mean, variance and fourth central moment of Gamma(shape, rate)."""
    return shape / rate, shape / rate**2, 3.0 * shape * (shape + 2.0) / rate**4


@pytest.mark.parametrize("factor", [0.05, 0.1, 0.3])
@pytest.mark.parametrize("rate", [0.01, 0.1, 0.3, 1.0, 5.0, 20.0, 60.0])
def test_gamma_moments_match_exact_gamma(rate, factor):
    lam = DT_S / factor**2
    mean, var, mu4 = _gamma_moments(rate * lam, lam)
    assert math.isclose(var, rate * factor**2 / DT_S)
    x = _draw("gamma", rate, factor, 100_000, seed=int(rate * 100 + factor * 1000))
    _assert_moments(x, mean, var, mu4, WH_MEAN_BIAS, WH_VAR_BIAS)


@pytest.mark.parametrize("shape", [0.05, 0.5, 4.0, 50.0])
def test_gamma_distribution_matches_exact_gamma(shape):
    """Beyond two moments: a Kolmogorov-Smirnov test against the exact Gamma CDF."""
    x = unit_gamma(
        1.0 / math.sqrt(shape),
        torch.empty(20_000, dtype=torch.float64),
        torch.Generator().manual_seed(7),
    ).numpy()
    assert stats.kstest(x, stats.gamma(shape, scale=1.0 / shape).cdf).pvalue > 1e-3


def test_gauss_moments():
    rate, factor = 20.0, 0.05  # SD 2.2 Hz: the ReLU at 9 SD changes nothing measurable
    var = factor**2 * rate / DT_S
    _assert_moments(_draw("gauss", rate, factor, 200_000), rate, var, 3 * var**2)


def test_puregauss_moments_do_not_depend_on_rate():
    factor = 0.05
    var = (15.0 * factor) ** 2
    for rate in (10.0, 40.0):
        _assert_moments(_draw("puregauss", rate, factor, 200_000), rate, var, 3 * var**2)


@pytest.mark.parametrize("factor", [0.05, 0.3])  # kappa = 20 and 0.56 (the boosted branch)
def test_csnr_moments(factor):
    rate = 12.0
    kappa = 5.0 * DT_S / factor**2
    mean, var, mu4 = _gamma_moments(kappa, kappa / rate)
    assert math.isclose(var, rate**2 * factor**2 / (5.0 * DT_S))
    _assert_moments(_draw("csnr", rate, factor, 200_000), mean, var, mu4, WH_MEAN_BIAS, WH_VAR_BIAS)


@pytest.mark.parametrize("noise_type", NOISE_TYPES)
def test_zero_factor_and_none_are_identity(noise_type):
    rates = torch.rand(64, 8) * 30
    rates[0] = 0.0
    assert torch.equal(observe_rates(rates, noise_type, 0.0, DT), rates)
    assert torch.equal(observe_rates(rates, "none", 0.3, DT), rates)
    # A tensor k (a model buffer) is never read back to the host, but k = 0 is still exact.
    assert torch.equal(observe_rates(rates, noise_type, torch.tensor(0.0), DT), rates)


@pytest.mark.parametrize("noise_type", ["gamma", "gauss", "puregauss", "csnr"])
def test_draws_come_from_the_generator(noise_type):
    rates = torch.rand(32, 16) * 30
    first = observe_rates(rates, noise_type, 0.1, DT, torch.Generator().manual_seed(3))
    again = observe_rates(rates, noise_type, 0.1, DT, torch.Generator().manual_seed(3))
    other = observe_rates(rates, noise_type, 0.1, DT, torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert (first >= 0).all()


def test_tensor_factor_broadcasts_per_model():
    """(S, 1, 1) factors give each stacked model its own noise level."""
    rates = torch.full((2, 4000, 8), 20.0, dtype=torch.float64)
    factor = torch.tensor([0.05, 0.2], dtype=torch.float64).reshape(2, 1, 1)
    x = observe_rates(rates, "gamma", factor, DT, torch.Generator().manual_seed(0))
    variance = x.flatten(1).var(dim=1)
    expected = 20.0 * factor.flatten() ** 2 / DT_S
    assert torch.allclose(variance, expected, rtol=0.1)


@pytest.mark.parametrize("noise_type", ["gamma", "csnr", "gauss"])
@pytest.mark.parametrize("rate", [0.05, 2.0, 30.0])
def test_gradient_is_finite_and_unbiased(noise_type, rate):
    """The pathwise dX/dr averages to dE[X]/dr = 1 (gauss: above its ReLU)."""
    rates = torch.full((50_000,), rate, dtype=torch.float64, requires_grad=True)
    x = observe_rates(rates, noise_type, 0.1, DT, torch.Generator().manual_seed(11))
    x.sum().backward()
    grad = rates.grad
    assert torch.isfinite(grad).all()
    if noise_type == "gauss" and rate < 10.0:
        return  # the ReLU cuts into the distribution (SD 1.4 Hz at 2 Hz): E[X] is not r there
    se = grad.std().item() / math.sqrt(grad.numel())
    assert abs(grad.mean().item() - 1.0) <= Z * se + 0.01, (grad.mean().item(), se)


def test_gamma_gradient_matches_finite_differences():
    """Same random numbers, r +- eps: the custom backward is the derivative of the forward."""
    rates = torch.tensor([0.0, 1e-3, 0.1, 1.0, 5.0, 60.0], dtype=torch.float64).repeat(50)
    rates.requires_grad_()
    noise = noise_fn("gamma", 0.1, DT, torch.Generator().manual_seed(1))
    noise(rates).sum().backward()
    eps = 1e-7
    plus = noise_fn("gamma", 0.1, DT, torch.Generator().manual_seed(1))(rates.detach() + eps)
    minus = noise_fn("gamma", 0.1, DT, torch.Generator().manual_seed(1))(
        (rates.detach() - eps).clamp_min(0.0)
    )
    step = rates.detach() + eps - (rates.detach() - eps).clamp_min(0.0)
    finite_difference = (plus - minus) / step
    inside = rates.detach() > 1e-5
    assert torch.allclose(rates.grad[inside], finite_difference[inside], rtol=1e-4, atol=1e-6)
    assert torch.isfinite(rates.grad).all()


@pytest.mark.parametrize("noise_type", ["gamma", "gauss", "csnr"])
def test_time_averaged_noise_variance_does_not_depend_on_dt(noise_type):
    """BrainPy PR #850 anchor: over a fixed window, the noise of the time-averaged rate is the
    same whatever the time step (per-step variance proportional to 1/dt). k is small enough
    that the Gaussian's ReLU stays > 7 SD away even at dt = 1 ms."""
    rate, factor, window_ms, trials = 20.0, 0.02, 200.0, 4_000
    per_ms = rate * factor**2 * 1000.0 if noise_type != "csnr" else rate**2 * factor**2 * 1000 / 5
    expected = per_ms / window_ms  # Var of the window mean: (per-step var) / (steps per window)
    for dt in (1.0, 5.0, 10.0, 20.0):
        steps = int(window_ms / dt)
        generator = torch.Generator().manual_seed(int(dt))
        rates = torch.full((trials, steps), rate, dtype=torch.float64)
        window_mean = observe_rates(rates, noise_type, factor, dt, generator).mean(dim=1)
        # Window means are near-Gaussian: SE(var) = var sqrt(2 / n), plus the sampler's bias.
        tolerance = Z * expected * math.sqrt(2.0 / trials) + WH_VAR_BIAS * expected
        assert abs(window_mean.var().item() - expected) <= tolerance, (dt, window_mean.var())


def test_bad_arguments_raise_one_line_errors():
    rates = torch.ones(3)
    with pytest.raises(ValueError, match="spike_noise_type must be one of"):
        observe_rates(rates, "poisson", 0.1, DT)
    with pytest.raises(ValueError, match="spike_noise_factor must be >= 0"):
        observe_rates(rates, "gamma", -0.1, DT)
    with pytest.raises(ValueError, match="dt must be > 0"):
        observe_rates(rates, "gamma", 0.1, 0.0)

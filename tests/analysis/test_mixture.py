"""Mixture models: parameter recovery and optimality against a generic optimiser.

Recovery tolerances. A recovery study of the swap model (kappa = 8, g = .2, s = .15, N = 4,
n = 2000 trials, 20 seeds) found a relative kappa error of 0.03 +- 0.05 and |dg|, |ds| up to .038.
Standard errors shrink as 1/sqrt(n), so at n = 5000 they are ~0.63 of those (kappa ~3%, weights
~0.01-0.015), and the fixed tolerances used here at n >= 5000 (15% on kappa, .03 on the weights)
are >= 2.5-4 SE. The test also computes the observed-information SE of each fit
(inverse numerical Hessian) and asserts the error is within 4 of those, which is the derived
tolerance; the fixed anchor tolerances guard against the SE itself being large.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import approx_fprime, minimize
from scipy.stats import truncnorm

from analysis.behaviour import mixture as mx
from analysis.behaviour.synthetic import simulate_swap_responses

N_TRIALS = 5000
KAPPA, P_SWAP, P_GUESS, SET_SIZE = 8.0, 0.15, 0.2, 4
SIGMA = 0.35


@pytest.fixture(scope="module")
def swap_data():
    return simulate_swap_responses(
        0, N_TRIALS, kappa=KAPPA, p_nontarget=P_SWAP, p_guess=P_GUESS, set_size=SET_SIZE
    )


@pytest.fixture(scope="module")
def guess_data():
    return simulate_swap_responses(
        1, N_TRIALS, kappa=KAPPA, p_nontarget=0.0, p_guess=P_GUESS, set_size=1
    )[0]


@pytest.fixture(scope="module")
def gauss_data():
    rng = np.random.default_rng(2)
    normal = truncnorm.rvs(
        -np.pi / SIGMA, np.pi / SIGMA, scale=SIGMA, size=N_TRIALS, random_state=rng
    )
    return np.where(rng.random(N_TRIALS) < P_GUESS, rng.uniform(-np.pi, np.pi, N_TRIALS), normal)


def _standard_errors(negloglik, theta: np.ndarray) -> np.ndarray:
    """sqrt(diag(H^-1)) with H the numerical Hessian of the negative log-likelihood."""
    step = 1e-4 * np.maximum(np.abs(theta), 1.0)
    hessian = np.array(
        [
            (
                approx_fprime(theta + step[i] * np.eye(theta.size)[i], negloglik, step)
                - approx_fprime(theta - step[i] * np.eye(theta.size)[i], negloglik, step)
            )
            / (2 * step[i])
            for i in range(theta.size)
        ]
    )
    return np.sqrt(np.diag(np.linalg.inv(0.5 * (hessian + hessian.T))))


def test_vm_uniform_recovers_parameters(guess_data):
    fit = mx.fit_vm_uniform(guess_data)
    se = _standard_errors(
        lambda t: -mx.vm_uniform_loglik(guess_data, t[0], t[1]), np.array([fit.kappa, fit.p_guess])
    )
    assert abs(fit.kappa - KAPPA) < min(0.15 * KAPPA, 4 * se[0])
    assert abs(fit.p_guess - P_GUESS) < min(0.03, 4 * se[1])
    assert fit.n_trials == N_TRIALS


def test_gauss_uniform_recovers_parameters(gauss_data):
    fit = mx.fit_gauss_uniform(gauss_data)
    se = _standard_errors(
        lambda t: -mx.gauss_uniform_loglik(gauss_data, t[0], t[1]),
        np.array([fit.sigma, fit.p_guess]),
    )
    assert abs(fit.sigma - SIGMA) < min(0.075 * SIGMA, 4 * se[0])  # sigma ~ kappa^-1/2: half
    assert abs(fit.p_guess - P_GUESS) < min(0.03, 4 * se[1])


def test_swap_recovers_parameters(swap_data):
    errors, nontargets = swap_data
    fit = mx.fit_swap(errors, nontargets)
    se = _standard_errors(
        lambda t: -mx.swap_loglik(errors, nontargets, t[0], 1 - t[1] - t[2], t[1], t[2]),
        np.array([fit.kappa, fit.p_nontarget, fit.p_guess]),
    )
    assert abs(fit.kappa - KAPPA) < min(0.15 * KAPPA, 4 * se[0])
    assert abs(fit.p_nontarget - P_SWAP) < min(0.03, 4 * se[1])
    assert abs(fit.p_guess - P_GUESS) < min(0.03, 4 * se[2])
    assert fit.p_target + fit.p_nontarget + fit.p_guess == pytest.approx(1.0)
    assert fit.n_params == 3


def _softmax(z):
    w = np.exp(z - np.max(z))
    return w / w.sum()


def _generic_best(negloglik, starts) -> float:
    """Best log-likelihood of BFGS from several starts, the best one polished by Nelder-Mead."""
    runs = [minimize(negloglik, np.asarray(start, float), method="BFGS") for start in starts]
    best = min(runs, key=lambda run: run.fun)
    polished = minimize(
        negloglik,
        best.x,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000},
    )
    return -min(best.fun, polished.fun)


def _unpack2(z):
    """Unconstrained (log scale, logit weight) -> (scale, weight), clipped to stay finite."""
    z = np.clip(z, -30.0, 30.0)
    return np.exp(z[0]), 1 / (1 + np.exp(-z[1]))


def _logit(p):
    return np.log(p / (1 - p))


def test_vm_uniform_at_least_generic_optimiser(swap_data):
    errors = swap_data[0][:2000]
    generic = _generic_best(
        lambda z: -mx.vm_uniform_loglik(errors, *_unpack2(z)),
        [(np.log(k), _logit(g)) for k in (1.0, 10.0, 100.0) for g in (0.05, 0.4)],
    )
    assert mx.fit_vm_uniform(errors).loglik >= generic - 1e-6


def test_gauss_uniform_at_least_generic_optimiser(gauss_data):
    errors = gauss_data[:2000]
    generic = _generic_best(
        lambda z: -mx.gauss_uniform_loglik(errors, *_unpack2(z)),
        [(np.log(s), _logit(g)) for s in (0.1, 0.5, 2.0) for g in (0.05, 0.4)],
    )
    assert mx.fit_gauss_uniform(errors).loglik >= generic - 1e-6


def test_swap_at_least_generic_optimiser(swap_data):
    errors, nontargets = swap_data[0][:2000], swap_data[1][:2000]

    def negloglik(z):
        z = np.clip(z, -30.0, 30.0)
        w = _softmax(np.array([0.0, z[1], z[2]]))
        return -mx.swap_loglik(errors, nontargets, np.exp(z[0]), *w)

    starts = [
        (np.log(k), np.log(pn / 0.5), np.log(pu / 0.5))
        for k in (2.0, 20.0)
        for pn, pu in ((0.05, 0.05), (0.3, 0.3))
    ]
    assert mx.fit_swap(errors, nontargets).loglik >= _generic_best(negloglik, starts) - 1e-6


def test_swap_without_nontargets_is_vm_uniform(guess_data):
    swap = mx.fit_swap(guess_data[:1000])
    vm = mx.fit_vm_uniform(guess_data[:1000])
    assert swap.p_nontarget == 0.0 and swap.n_params == 2
    assert swap.kappa == pytest.approx(vm.kappa) and swap.loglik == pytest.approx(vm.loglik)


def test_information_criteria():
    fit = mx.VonMisesUniformFit(kappa=5.0, p_guess=0.1, loglik=-100.0, n_trials=50)
    assert fit.aic == pytest.approx(204.0)
    assert fit.bic == pytest.approx(200.0 + 2 * np.log(50))


def test_fitted_densities_are_normalised():
    grid = np.linspace(-np.pi, np.pi, 20001)
    vm = mx.VonMisesUniformFit(kappa=8.0, p_guess=0.2, loglik=0.0, n_trials=1)
    gauss = mx.GaussianUniformFit(sigma=2.0, p_guess=0.2, loglik=0.0, n_trials=1)
    edge_cases = [
        mx.VonMisesUniformFit(kappa=8.0, p_guess=g, loglik=0.0, n_trials=1) for g in (0.0, 1.0)
    ]  # a weight at its bound must still give an array
    for fit in (vm, gauss, *edge_cases):
        assert fit.pdf(grid).shape == grid.shape
        assert np.trapezoid(fit.pdf(grid), grid) == pytest.approx(1.0, abs=1e-6)


def test_fit_by_set_size_schema(swap_data):
    errors, nontargets = swap_data
    padded = np.full((600, SET_SIZE - 1), np.nan)
    padded[300:] = nontargets[300:600]
    set_size = np.repeat([1, SET_SIZE], 300)
    result = mx.fit_by_set_size(errors[:600], set_size, padded)
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {"1", str(SET_SIZE)}
    entry = data[str(SET_SIZE)]
    assert entry["n_trials"] == 300
    assert set(entry["vm_uniform"]) == {"kappa", "sd", "p_guess", "loglik", "aic", "bic"}
    assert set(entry["gauss_uniform"]) == {"sigma", "p_guess", "loglik", "aic", "bic"}
    assert set(entry["swap"]) == {
        "kappa",
        "sd",
        "p_target",
        "p_nontarget",
        "p_guess",
        "loglik",
        "aic",
        "bic",
    }
    assert data["1"]["swap"]["p_nontarget"] == 0.0
    np.testing.assert_allclose(
        result.column("swap", "p_nontarget"), [0.0, entry["swap"]["p_nontarget"]]
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.array([0.1, np.nan]),), "errors"),
        ((np.array([]),), "errors"),
        ((np.zeros(4), np.zeros((3, 2))), "nontarget_errors"),
    ],
)
def test_bad_input_errors(args, match):
    with pytest.raises(ValueError, match=match):
        mx.fit_swap(*args)

"""Circular statistics against closed forms (von Mises moments: Mardia & Jupp 2000, Fisher 1993)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from analysis.core import circstats as cs

N_SAMPLES = 100_000


@pytest.fixture(scope="module")
def vm8_samples() -> np.ndarray:
    return np.random.default_rng(0).vonmises(0.0, 8.0, N_SAMPLES)


def test_closed_forms_at_kappa_8():
    assert cs.vonmises_sd(8.0) == pytest.approx(0.3659, abs=1e-4)
    assert cs.vonmises_kurtosis(8.0) == pytest.approx(0.2745, abs=1e-4)


def test_circular_sd_of_von_mises_samples(vm8_samples):
    # SE of R-hat is sqrt((1 + A2 - 2 A1^2) / 2n) ~ 1e-4 here, i.e. ~0.1% of the circular SD,
    # so the anchors' 1% is about 10 SE.
    assert cs.circular_sd(vm8_samples) == pytest.approx(
        np.sqrt(-2 * np.log(cs.vonmises_a1(8.0))), rel=0.01
    )
    assert cs.circular_variance(vm8_samples) == pytest.approx(cs.circular_sd(vm8_samples) ** 2)


def test_circular_kurtosis_of_von_mises_samples(vm8_samples):
    # The anchors measured 0.283 at n = 1e5 against the closed form 0.275; allow 0.03.
    assert cs.circular_kurtosis(vm8_samples) == pytest.approx(cs.vonmises_kurtosis(8.0), abs=0.03)
    assert abs(cs.excess_circular_kurtosis(vm8_samples)) < 0.03


def test_excess_kurtosis_positive_for_guess_mixture():
    rng = np.random.default_rng(1)
    x = np.where(
        rng.random(N_SAMPLES) < 0.2,
        rng.uniform(-np.pi, np.pi, N_SAMPLES),
        rng.vonmises(0.0, 8.0, N_SAMPLES),
    )
    assert cs.excess_circular_kurtosis(x) > 0.3


def test_chance_mean_absolute_error():
    # |x| for uniform x is uniform on [0, pi]: SE = pi / sqrt(12 n) = 0.003, tolerance ~7 SE.
    x = np.random.default_rng(2).uniform(-np.pi, np.pi, N_SAMPLES)
    assert cs.mean_absolute_error(x) == pytest.approx(np.pi / 2, abs=0.02)
    assert cs.mean_absolute_error(x + 2 * np.pi) == pytest.approx(cs.mean_absolute_error(x))


def test_one_minus_r_is_not_minus_two_log_r(vm8_samples):
    r = cs.resultant_length(vm8_samples)
    assert cs.one_minus_r(vm8_samples) == pytest.approx(1 - r)
    assert cs.circular_variance(vm8_samples) == pytest.approx(-2 * np.log(r))


def test_angular_difference_wraps_to_half_open_interval():
    d = cs.angular_difference([np.pi, -np.pi, 3 * np.pi / 2], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(d, [-np.pi, -np.pi, -np.pi / 2])


@pytest.mark.parametrize("kappa", [1e-3, 0.3, 1.0, 2.5, 8.0, 40.0, 1e3])
def test_a1_inverse_fisher_and_exact(kappa):
    r = cs.vonmises_a1(kappa)
    assert cs.a1_inverse_exact(r) == pytest.approx(kappa, rel=1e-9)
    # Fisher's piecewise approximation is within a few percent everywhere.
    assert cs.a1_inverse(r) == pytest.approx(kappa, rel=0.05)


def test_a1_inverse_exact_edges():
    np.testing.assert_array_equal(
        cs.a1_inverse_exact(np.array([0.0, 1.0]), kappa_max=50.0), [0.0, 50.0]
    )


@pytest.mark.parametrize("kappa", [0.0, 1.0, 8.0, 500.0])
def test_vonmises_logpdf_normalised(kappa):
    total, _ = quad(
        lambda x: np.exp(cs.vonmises_logpdf(x, kappa)), -np.pi, np.pi, points=[0.0], limit=200
    )
    assert total == pytest.approx(1.0, abs=1e-8)

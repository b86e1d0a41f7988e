"""Circular statistics, written once and used by every analysis.

Conventions (docs/model.md, section Error statistics):

* angles are radians on the full circle; errors are wrapped to [-pi, pi);
* ``circular_variance`` is the reference model's "variance", -2 ln R (the squared circular SD),
  not the conventional 1 - R; ``one_minus_r`` gives the latter, under its own name;
* ``circular_kurtosis`` is (|m2| cos(arg m2 - 2 arg m1) - |m1|^4) / (1 - |m1|)^2 with
  m_p = mean(exp(i p x)).
"""

from __future__ import annotations

import numpy as np
from scipy.special import i0e, i1e, ive

from vwm_tasks.encoding import wrap_angle

__all__ = [
    "wrap_angle",
    "angular_difference",
    "trig_moment",
    "resultant_length",
    "mean_absolute_error",
    "circular_variance",
    "circular_sd",
    "one_minus_r",
    "circular_kurtosis",
    "vonmises_a1",
    "vonmises_sd",
    "vonmises_kurtosis",
    "a1_inverse",
    "a1_inverse_exact",
    "excess_circular_kurtosis",
    "vonmises_logpdf",
]


def angular_difference(a, b) -> np.ndarray:
    """wrap(a - b) in [-pi, pi)."""
    return wrap_angle(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))


def trig_moment(x, p: int = 1, axis=None) -> np.ndarray:
    """The p-th trigonometric moment mean(exp(i p x)) (complex)."""
    x = np.asarray(x, dtype=float)
    return np.mean(np.exp(1j * p * x), axis=axis)


def resultant_length(x, axis=None) -> np.ndarray:
    """Mean resultant length R = |m1|."""
    return np.abs(trig_moment(x, 1, axis=axis))


def mean_absolute_error(errors, axis=None) -> np.ndarray:
    """Mean |wrap(error)| in radians (chance level for uniform errors: pi/2)."""
    return np.mean(np.abs(wrap_angle(np.asarray(errors, dtype=float))), axis=axis)


def circular_variance(x, axis=None) -> np.ndarray:
    """-2 ln R: the original model's "circular variance" (= circular SD squared)."""
    r = resultant_length(x, axis=axis)
    return -2.0 * np.log(np.maximum(r, np.finfo(float).tiny))


def circular_sd(x, axis=None) -> np.ndarray:
    """Circular standard deviation sqrt(-2 ln R) in radians."""
    return np.sqrt(circular_variance(x, axis=axis))


def one_minus_r(x, axis=None) -> np.ndarray:
    """The conventional circular variance 1 - R (a different quantity from -2 ln R)."""
    return 1.0 - resultant_length(x, axis=axis)


def circular_kurtosis(x, axis=None) -> np.ndarray:
    """Circular kurtosis (|m2| cos(arg m2 - 2 arg m1) - |m1|^4) / (1 - |m1|)^2; nan where all
    angles are equal (|m1| = 1: no spread, no shape)."""
    m1 = trig_moment(x, 1, axis=axis)
    m2 = trig_moment(x, 2, axis=axis)
    r1 = np.abs(m1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.abs(m2) * np.cos(np.angle(m2) - 2.0 * np.angle(m1)) - r1**4) / (1.0 - r1) ** 2


def vonmises_a1(kappa) -> np.ndarray:
    """A1(kappa) = I1(kappa) / I0(kappa), the mean resultant length of VM(kappa)."""
    kappa = np.asarray(kappa, dtype=float)
    return i1e(kappa) / i0e(kappa)


def vonmises_sd(kappa) -> np.ndarray:
    """Circular SD of a von Mises: sqrt(-2 ln A1(kappa)) (k2sd in MemToolbox/Bays); infinite
    at kappa = 0 (the uniform distribution)."""
    with np.errstate(divide="ignore"):  # ln A1(0) = ln 0: the limit, not an accident
        return np.sqrt(-2.0 * np.log(vonmises_a1(kappa)))


def vonmises_kurtosis(kappa) -> np.ndarray:
    """Circular kurtosis of a von Mises: (A2 - A1^4) / (1 - A1)^2, A2 = I2/I0."""
    kappa = np.asarray(kappa, dtype=float)
    a1 = vonmises_a1(kappa)
    a2 = ive(2, kappa) / i0e(kappa)
    return (a2 - a1**4) / (1.0 - a1) ** 2


def a1_inverse(r) -> np.ndarray:
    """Fisher's approximation to the inverse of A1: kappa from a mean resultant length R."""
    r = np.asarray(r, dtype=float)
    small = 2 * r + r**3 + 5 * r**5 / 6
    mid = -0.4 + 1.39 * r + 0.43 / (1 - np.minimum(r, 1 - 1e-12))
    large = 1.0 / np.maximum(r**3 - 4 * r**2 + 3 * r, 1e-12)
    return np.where(r < 0.53, small, np.where(r < 0.85, mid, large))


def a1_inverse_exact(r, kappa_max: float = 1e6) -> np.ndarray:
    """The exact inverse of A1 (the von Mises ML estimate of kappa from R), capped at kappa_max.

    Fisher's approximation (:func:`a1_inverse`) is off by up to a few percent, which would make
    an EM fixed point miss the maximum-likelihood estimate; the mixture fits use this instead.
    Newton's method in log kappa from Fisher's value converges quadratically (A1 is smooth and
    increasing, A1' = 1 - A1/kappa - A1^2), so a few steps reach machine precision.
    """
    r = np.asarray(r, dtype=float)
    r_max = vonmises_a1(kappa_max)
    r_inner = np.clip(r, 1e-300, r_max)
    log_kappa = np.log(np.clip(a1_inverse(np.minimum(r_inner, 1 - 1e-12)), 1e-300, kappa_max))
    for _ in range(8):
        kappa = np.exp(log_kappa)
        a1 = vonmises_a1(kappa)
        slope = kappa * (1.0 - a1 / kappa - a1**2)  # d A1 / d log kappa
        step = (a1 - r_inner) / np.maximum(slope, np.finfo(float).tiny)
        log_kappa = np.clip(log_kappa - step, np.log(1e-300), np.log(kappa_max))
    return np.where(r <= 0.0, 0.0, np.where(r >= r_max, kappa_max, np.exp(log_kappa)))


def excess_circular_kurtosis(x, axis=None) -> np.ndarray:
    """Circular kurtosis of ``x`` minus that of a von Mises with the same R (positive: peakier
    and heavier-tailed than a von Mises, the human signature; van den Berg et al. 2012)."""
    kappa = a1_inverse_exact(resultant_length(x, axis=axis))
    return circular_kurtosis(x, axis=axis) - vonmises_kurtosis(kappa)


def vonmises_logpdf(x, kappa, mu=0.0) -> np.ndarray:
    """log VM(x; mu, kappa), stable for large kappa: kappa (cos(x-mu) - 1) - log(2 pi i0e(kappa))."""
    x = np.asarray(x, dtype=float)
    kappa = np.asarray(kappa, dtype=float)
    return kappa * (np.cos(x - mu) - 1.0) - np.log(2 * np.pi * i0e(kappa))

"""Maximum-likelihood mixture models of recall errors (docs/model.md, section Mixture models):
the models, their likelihoods and their fits to one set of errors.

Three models, each fitted per set size to errors ``e = wrap(response - target)`` in radians on
the full circle (the sign convention is ours; every model here is symmetric in e, so it changes no
fitted value):

* :func:`fit_vm_uniform`: von Mises + uniform (Zhang & Luck 2008),
  ``p(e) = (1 - g) VM(e; kappa) + g / 2pi``;
* :func:`fit_gauss_uniform`: Gaussian + uniform (the reference model's second fit),
  ``p(e) = (1 - g) TN(e; sigma) + g / 2pi`` where TN is a normal N(0, sigma^2) *truncated* to
  [-pi, pi) and renormalised on it. The truncation is our choice (docs/model.md, section What
  is ours): the reference used the unnormalised normal on that interval, which is a density only
  when sigma << pi, where the two agree;
* :func:`fit_swap`: the three-component model of Bays, Catalao & Husain (2009),
  ``p(e) = p_T VM(e; kappa) + p_N / M sum_j VM(e~_j; kappa) + p_U / 2pi`` with the M non-target
  errors ``e~_j = wrap(response - nontarget_j)``.

The von Mises models are fitted by EM (Bays' JV10 scheme) run from the multi-start grid kappa {1,
10, 100} x p_N {.01, .1, .4} x p_U {.01, .1, .4} with all starts iterated together as arrays
(starts whose parameters come within 1e-3 of each other are merged, since EM is a deterministic map
from then on). The kappa M-step uses the exact inverse of A1 (Fisher's approximation would move the
fixed point off the maximum), and the best start is finally polished by a local quasi-Newton step,
kept only if it raises the likelihood, so that EM's slow crawl near a boundary does not leave
likelihood on the table. The Gaussian model has no closed-form M-step, so it is fitted by profile
likelihood: for each sigma on a log grid the mixing weight is solved exactly (the likelihood is
concave in it), then the best grid point is refined by a bounded scalar search.

Fitting them per set size with bootstrap SEs, and the ``mixture`` analysis of a run, is
:mod:`analysis.behaviour.mixture` (which re-exports the names here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_ndtr, ndtr

from analysis.behaviour.em import em_swap, polish_swap, swap_log_components
from analysis.core.circstats import (
    angular_difference,
    vonmises_logpdf,
    vonmises_sd,
)

__all__ = [
    "VonMisesUniformFit",
    "GaussianUniformFit",
    "SwapFit",
    "vm_uniform_loglik",
    "gauss_uniform_loglik",
    "swap_loglik",
    "truncated_normal_logpdf",
    "fit_vm_uniform",
    "fit_gauss_uniform",
    "fit_swap",
]

_LOG_2PI = np.log(2.0 * np.pi)
_SIGMA_BOUNDS = (1e-3, 2.0 * np.pi)


class _InformationCriteria:
    """AIC and BIC from ``loglik``, ``n_params`` and ``n_trials`` (mixed into the fit classes)."""

    loglik: float
    n_trials: int
    n_params: int

    @property
    def aic(self) -> float:
        return float(2.0 * self.n_params - 2.0 * self.loglik)

    @property
    def bic(self) -> float:
        return float(self.n_params * np.log(max(self.n_trials, 1)) - 2.0 * self.loglik)


@dataclass(frozen=True)
class VonMisesUniformFit(_InformationCriteria):
    """Von Mises + uniform fit. ``sd`` is the von Mises component's circular SD (k2sd)."""

    kappa: float
    p_guess: float
    loglik: float
    n_trials: int
    n_params: ClassVar[int] = 2

    @property
    def sd(self) -> float:
        return float(vonmises_sd(self.kappa))

    def pdf(self, x) -> np.ndarray:
        """Fitted density of the error at ``x`` (radians)."""
        return np.exp(_vm_uniform_logpdf(np.asarray(x, dtype=float), self.kappa, self.p_guess))

    def to_dict(self) -> dict[str, float]:
        return {
            "kappa": self.kappa,
            "sd": self.sd,
            "p_guess": self.p_guess,
            "loglik": self.loglik,
            "aic": self.aic,
            "bic": self.bic,
        }


@dataclass(frozen=True)
class GaussianUniformFit(_InformationCriteria):
    """Truncated-Gaussian + uniform fit; ``sigma`` is the SD of the untruncated normal."""

    sigma: float
    p_guess: float
    loglik: float
    n_trials: int
    n_params: ClassVar[int] = 2

    def pdf(self, x) -> np.ndarray:
        """Fitted density of the error at ``x`` (radians)."""
        x = np.asarray(x, dtype=float)
        return (1.0 - self.p_guess) * np.exp(truncated_normal_logpdf(x, self.sigma)) + (
            self.p_guess / (2.0 * np.pi)
        )

    def to_dict(self) -> dict[str, float]:
        return {
            "sigma": self.sigma,
            "p_guess": self.p_guess,
            "loglik": self.loglik,
            "aic": self.aic,
            "bic": self.bic,
        }


@dataclass(frozen=True)
class SwapFit(_InformationCriteria):
    """Three-component (target, non-target, uniform) fit of Bays et al. (2009).

    With no non-targets (set size 1) p_nontarget is fixed at 0 and the model has 2 parameters.
    """

    kappa: float
    p_target: float
    p_nontarget: float
    p_guess: float
    loglik: float
    n_trials: int
    n_params: int = 3

    @property
    def sd(self) -> float:
        return float(vonmises_sd(self.kappa))

    def to_dict(self) -> dict[str, float]:
        return {
            "kappa": self.kappa,
            "sd": self.sd,
            "p_target": self.p_target,
            "p_nontarget": self.p_nontarget,
            "p_guess": self.p_guess,
            "loglik": self.loglik,
            "aic": self.aic,
            "bic": self.bic,
        }


# --------------------------------------------------------------------------------------------
# Likelihoods


def _check_errors(errors) -> np.ndarray:
    errors = np.asarray(errors, dtype=float).ravel()
    if errors.size == 0:
        raise ValueError("errors: need at least one trial, got an empty array")
    if not np.all(np.isfinite(errors)):
        raise ValueError("errors: must be finite (radians); found NaN or inf")
    return angular_difference(errors, 0.0)


def _check_nontargets(nontarget_errors, n_trials: int) -> np.ndarray:
    if nontarget_errors is None:
        return np.zeros((n_trials, 0))
    nt = np.asarray(nontarget_errors, dtype=float)
    if nt.ndim == 1:
        nt = nt[:, None]
    if nt.ndim != 2 or nt.shape[0] != n_trials:
        raise ValueError(
            f"nontarget_errors: expected shape (n_trials={n_trials}, M), got {nt.shape}"
        )
    if not np.all(np.isfinite(nt)):
        raise ValueError("nontarget_errors: must be finite; fit each set size separately")
    return angular_difference(nt, 0.0)


def _vm_uniform_logpdf(x: np.ndarray, kappa: float, p_guess: float) -> np.ndarray:
    with np.errstate(divide="ignore"):  # log 0 = -inf for a weight of exactly 0 is intended
        return np.logaddexp(
            np.log1p(-p_guess) + vonmises_logpdf(x, kappa),
            np.full(np.shape(x), np.log(p_guess) - _LOG_2PI),
        )


def truncated_normal_logpdf(x, sigma: float) -> np.ndarray:
    """log density of N(0, sigma^2) truncated to [-pi, pi) and renormalised there."""
    x = np.asarray(x, dtype=float)
    log_mass = np.log(ndtr(np.pi / sigma) - ndtr(-np.pi / sigma))
    if not np.isfinite(log_mass):  # tiny sigma: mass is 1 - 2 Phi(-pi/sigma)
        log_mass = np.log1p(-2.0 * np.exp(log_ndtr(-np.pi / sigma)))
    return -0.5 * (x / sigma) ** 2 - np.log(sigma) - 0.5 * _LOG_2PI - log_mass


def vm_uniform_loglik(errors, kappa: float, p_guess: float) -> float:
    """Log-likelihood of the von Mises + uniform model."""
    return float(np.sum(_vm_uniform_logpdf(_check_errors(errors), kappa, p_guess)))


def gauss_uniform_loglik(errors, sigma: float, p_guess: float) -> float:
    """Log-likelihood of the truncated-Gaussian + uniform model."""
    x = _check_errors(errors)
    parts = [np.log(p_guess) - _LOG_2PI] if p_guess > 0 else []
    if p_guess < 1:
        parts.append(np.log1p(-p_guess) + truncated_normal_logpdf(x, sigma))
    return float(np.sum(np.logaddexp.reduce(np.broadcast_arrays(*parts), axis=0)))


def swap_loglik(
    errors, nontarget_errors, kappa: float, p_target: float, p_nontarget: float, p_guess: float
) -> float:
    """Log-likelihood of the three-component swap model (weights need not be renormalised)."""
    x = _check_errors(errors)
    nt = _check_nontargets(nontarget_errors, x.size)
    return float(
        np.sum(
            swap_log_components(
                x,
                nt,
                np.atleast_1d(kappa),
                np.atleast_1d(p_target),
                np.atleast_1d(p_nontarget),
                np.atleast_1d(p_guess),
            )[1]
        )
    )


def fit_swap(errors, nontarget_errors=None, *, max_iter: int = 300, tol: float = 1e-6) -> SwapFit:
    """Fit the three-component swap model by multi-start EM.

    Args:
        errors: (n,) response - target, radians.
        nontarget_errors: (n, M) response - each non-target, radians (M = set size - 1), or
            None / an (n, 0) array for set size 1 (the fit is then the von Mises + uniform one).
        max_iter: EM iterations per start at most.
        tol: stop a start when an iteration raises its log-likelihood by less than this.
    """
    x = _check_errors(errors)
    nt = _check_nontargets(nontarget_errors, x.size)
    params = polish_swap(x, nt, *em_swap(x, nt, max_iter=max_iter, tol=tol))
    kappa, p_t, p_n, p_u, loglik = (float(v) for v in params)
    return SwapFit(
        kappa=kappa,
        p_target=p_t,
        p_nontarget=p_n,
        p_guess=p_u,
        loglik=loglik,
        n_trials=x.size,
        n_params=3 if nt.shape[1] else 2,
    )


def fit_vm_uniform(errors, *, max_iter: int = 300, tol: float = 1e-6) -> VonMisesUniformFit:
    """Fit von Mises + uniform by EM (the swap model's EM without the non-target term)."""
    fit = fit_swap(errors, None, max_iter=max_iter, tol=tol)
    return VonMisesUniformFit(
        kappa=fit.kappa, p_guess=fit.p_guess, loglik=fit.loglik, n_trials=fit.n_trials
    )


# --------------------------------------------------------------------------------------------
# Profile likelihood for the Gaussian model


def _profile_gauss(x: np.ndarray, log_sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each sigma, the guess rate maximising the likelihood and that maximum."""
    sigma = np.exp(np.atleast_1d(log_sigma))
    f = np.exp(np.stack([truncated_normal_logpdf(x, s) for s in sigma]))  # (G, n)
    u = 1.0 / (2.0 * np.pi)

    def score(g):  # d loglik / d g, decreasing in g (the likelihood is concave in g)
        with np.errstate(divide="ignore", over="ignore"):  # +inf at g = 0 where f underflows
            return np.sum((u - f) / ((1.0 - g)[:, None] * f + g[:, None] * u), axis=1)

    lo, hi = np.zeros(sigma.size), np.ones(sigma.size)
    g = np.where(score(lo) <= 0, 0.0, np.where(score(hi) >= 0, 1.0, np.nan))
    interior = np.isnan(g)
    for _ in range(60):  # bisection: 2^-60 is below float resolution on [0, 1]
        mid = 0.5 * (lo + hi)
        up = score(mid) > 0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    g = np.where(interior, 0.5 * (lo + hi), g)
    with np.errstate(divide="ignore"):
        loglik = np.sum(
            np.logaddexp(np.log1p(-g)[:, None] + np.log(f), (np.log(g) - _LOG_2PI)[:, None]), axis=1
        )
    return g, loglik


def fit_gauss_uniform(errors, *, n_grid: int = 60) -> GaussianUniformFit:
    """Fit truncated-Gaussian + uniform by profile likelihood over sigma (see module doc)."""
    x = _check_errors(errors)
    grid = np.linspace(*np.log(_SIGMA_BOUNDS), n_grid)
    _, loglik = _profile_gauss(x, grid)
    best = int(np.argmax(loglik))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, n_grid - 1)]
    refined = minimize_scalar(
        lambda s: -_profile_gauss(x, s)[1][0],
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-10},
    )
    log_sigma = refined.x if -refined.fun > loglik[best] else grid[best]
    g, ll = _profile_gauss(x, log_sigma)
    return GaussianUniformFit(
        sigma=float(np.exp(log_sigma)), p_guess=float(g[0]), loglik=float(ll[0]), n_trials=x.size
    )

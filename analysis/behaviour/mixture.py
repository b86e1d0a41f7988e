"""Maximum-likelihood mixture models of recall errors (docs/model.md, section Mixture models).

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

The von Mises models are fitted by EM (Bays' JV10 scheme) run from the multi-start grid
kappa {1, 10, 100} x p_N {.01, .1, .4} x p_U {.01, .1, .4} with all starts iterated together as
arrays (starts whose parameters come within 1e-3 of each other are merged, since EM is a
deterministic map from then on). The kappa M-step uses the exact inverse of A1 (Fisher's approximation would move the
fixed point off the maximum), and the best start is finally polished by a local quasi-Newton
step, kept only if it raises the likelihood, so that EM's slow crawl near a boundary does not
leave likelihood on the table. The Gaussian model has no closed-form M-step, so it is fitted by
profile likelihood: for each sigma on a log grid the mixing weight is solved exactly (the
likelihood is concave in it), then the best grid point is refined by a bounded scalar search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import i0e, log_ndtr, logsumexp, ndtr

from analysis.core.circstats import a1_inverse_exact, angular_difference, vonmises_logpdf, vonmises_sd
from analysis.core.trials import ModelErrors, model_errors, needs_vwm_recall

__all__ = [
    "KAPPA_MAX",
    "EM_START_GRID",
    "VonMisesUniformFit",
    "GaussianUniformFit",
    "SwapFit",
    "MixtureFits",
    "MixtureResult",
    "vm_uniform_loglik",
    "gauss_uniform_loglik",
    "swap_loglik",
    "truncated_normal_logpdf",
    "fit_vm_uniform",
    "fit_gauss_uniform",
    "fit_swap",
    "fit_mixture_models",
    "fit_by_set_size",
    "run",
    "unavailable",
]

KAPPA_MAX = 1e4
"""Upper bound on fitted von Mises concentrations (circular SD 0.01 rad = 0.6 degrees)."""

EM_START_GRID: dict[str, tuple[float, ...]] = {
    "kappa": (1.0, 10.0, 100.0),
    "p_nontarget": (0.01, 0.1, 0.4),
    "p_guess": (0.01, 0.1, 0.4),
}
"""Bays (2009) multi-start grid; p_target = 1 - p_nontarget - p_guess at each start."""

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
        return {"kappa": self.kappa, "sd": self.sd, "p_guess": self.p_guess,
                "loglik": self.loglik, "aic": self.aic, "bic": self.bic}


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
        return {"sigma": self.sigma, "p_guess": self.p_guess, "loglik": self.loglik,
                "aic": self.aic, "bic": self.bic}


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
        return {"kappa": self.kappa, "sd": self.sd, "p_target": self.p_target,
                "p_nontarget": self.p_nontarget, "p_guess": self.p_guess,
                "loglik": self.loglik, "aic": self.aic, "bic": self.bic}


@dataclass(frozen=True)
class MixtureFits:
    """The three fits for one set size (one entry of ``mixture.json``)."""

    n_trials: int
    vm_uniform: VonMisesUniformFit
    gauss_uniform: GaussianUniformFit
    swap: SwapFit

    def to_dict(self) -> dict:
        return {"n_trials": self.n_trials, "vm_uniform": self.vm_uniform.to_dict(),
                "gauss_uniform": self.gauss_uniform.to_dict(), "swap": self.swap.to_dict()}


@dataclass
class MixtureResult:
    """Fits per set size; ``to_dict()`` is the documented ``mixture.json`` schema.

    ``errors`` (and ``set_size``) keep the fitted data for the figures; they are not serialised.
    """

    fits: dict[int, MixtureFits]
    errors: np.ndarray | None = field(default=None, repr=False)
    set_size: np.ndarray | None = field(default=None, repr=False)

    @property
    def set_sizes(self) -> list[int]:
        return sorted(self.fits)

    def column(self, model: str, parameter: str) -> np.ndarray:
        """One parameter of one model across set sizes, e.g. ``column("swap", "p_guess")``."""
        return np.array([getattr(getattr(self.fits[n], model), parameter) for n in self.set_sizes])

    def to_dict(self) -> dict[str, dict]:
        return {str(n): self.fits[n].to_dict() for n in self.set_sizes}


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
        return np.logaddexp(np.log1p(-p_guess) + vonmises_logpdf(x, kappa),
                            np.full(np.shape(x), np.log(p_guess) - _LOG_2PI))


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


def swap_loglik(errors, nontarget_errors, kappa: float, p_target: float, p_nontarget: float,
                p_guess: float) -> float:
    """Log-likelihood of the three-component swap model (weights need not be renormalised)."""
    x = _check_errors(errors)
    nt = _check_nontargets(nontarget_errors, x.size)
    return float(np.sum(_swap_log_components(x, nt, np.atleast_1d(kappa),
                                             np.atleast_1d(p_target),
                                             np.atleast_1d(p_nontarget),
                                             np.atleast_1d(p_guess))[1]))


def _swap_log_components(x, nt, kappa, p_t, p_n, p_u):
    """Per start s and trial i: log joint of each component and the log mixture density.

    Shapes: kappa, p_* (S,); returns (log_target (S,n), log_nontarget (S,n,M), log_guess (S,1),
    log_density (S,n)).
    """
    with np.errstate(divide="ignore"):
        log_t = np.log(p_t)[:, None] + vonmises_logpdf(x[None, :], kappa[:, None])
        m = nt.shape[1]
        log_n = (np.log(p_n) - np.log(max(m, 1)))[:, None, None] + vonmises_logpdf(
            nt[None], kappa[:, None, None]
        )
        log_u = (np.log(p_u) - _LOG_2PI)[:, None]
    parts = [log_t, np.broadcast_to(log_u, log_t.shape)]
    if m:
        parts.append(logsumexp(log_n, axis=2))
    return (log_t, log_n, log_u), np.logaddexp.reduce(np.stack(parts), axis=0)


# --------------------------------------------------------------------------------------------
# EM for the von Mises models


def _em(x: np.ndarray, nt: np.ndarray, *, max_iter: int, tol: float):
    """Vectorised EM over the start grid; returns (kappa, p_t, p_n, p_u, loglik) of the best.

    Works with densities rather than logs (as JV10 does): with kappa <= KAPPA_MAX the von Mises
    density is bounded, and underflow only zeroes components that carry no responsibility.
    """
    m = nt.shape[1]
    grid = np.array(np.meshgrid(*EM_START_GRID.values(), indexing="ij")).reshape(3, -1)
    kappa, p_n, p_u = grid
    if m == 0:  # no non-targets: the non-target weight is fixed at 0
        p_n = np.zeros_like(p_n)
    p_t = 1.0 - p_n - p_u
    angles = np.concatenate([x[:, None], nt], axis=1)  # column 0: target, then non-targets
    cos_a, sin_a = np.cos(angles), np.sin(angles)
    loglik = np.full(kappa.shape, -np.inf)
    active = np.ones(kappa.shape, dtype=bool)
    tiny = np.finfo(float).tiny
    for _ in range(max_iter):
        # Starts that have met follow the same deterministic EM path from then on: keep one.
        idx = np.flatnonzero(active)
        keys = np.round(np.stack([np.log(kappa[idx] + tiny), p_n[idx], p_u[idx]], 1), 3)
        _, first = np.unique(keys, axis=0, return_index=True)
        active[np.setdiff1d(idx, idx[first])] = False
        idx = np.flatnonzero(active)
        k = kappa[idx, None, None]
        density = np.exp(k * (cos_a - 1.0)) / (2.0 * np.pi * i0e(k))  # (S, n, 1 + M)
        # Mixing weight of each column: the target, then each non-target with p_N / M.
        column_weight = np.concatenate(
            [p_t[idx, None], np.repeat(p_n[idx, None] / max(m, 1), m, axis=1)], axis=1
        )
        guess = p_u[idx, None] / (2.0 * np.pi)
        total = np.maximum(np.einsum("sic,sc->si", density, column_weight) + guess, tiny)
        new_loglik = np.log(total).sum(1)
        still = new_loglik - loglik[idx] > tol
        loglik[idx] = new_loglik
        active[idx[~still]] = False
        if not active.any():
            break
        idx, density, total = idx[still], density[still], total[still]
        column_weight, guess = column_weight[still], guess[still]
        # Responsibilities are column_weight * density / total; sum them over trials per column.
        scaled = density / total[:, :, None]
        resp_sum = column_weight * scaled.sum(1)  # (S, 1 + M)
        cos_sum = (column_weight * np.einsum("sic,ic->sc", scaled, cos_a)).sum(1)
        sin_sum = (column_weight * np.einsum("sic,ic->sc", scaled, sin_a)).sum(1)
        p_t[idx] = resp_sum[:, 0] / x.size
        p_n[idx] = resp_sum[:, 1:].sum(1) / x.size
        p_u[idx] = (guess / total).mean(1)
        r = np.hypot(cos_sum, sin_sum) / np.maximum(resp_sum.sum(1), tiny)
        kappa[idx] = a1_inverse_exact(np.clip(r, 0.0, 1.0), kappa_max=KAPPA_MAX)
    # Parameters of stopped starts are those their log-likelihood was computed with.
    best = int(np.argmax(loglik))
    _, log_density = _swap_log_components(x, nt, kappa[best:best + 1], p_t[best:best + 1],
                                          p_n[best:best + 1], p_u[best:best + 1])
    return kappa[best], p_t[best], p_n[best], p_u[best], float(log_density.sum())


def _polish_swap(x, nt, kappa, p_t, p_n, p_u, loglik):
    """Local quasi-Newton refinement in unconstrained coordinates; kept only if it helps."""
    m = nt.shape[1]
    eps = 1e-12

    def unpack(z):
        # Clipping keeps every evaluation finite, so finite-difference gradients stay defined.
        z = np.clip(z, -40.0, [np.log(KAPPA_MAX)] + [40.0] * (len(z) - 1))
        logits = np.array([0.0, z[1], z[2]]) if m else np.array([0.0, -np.inf, z[1]])
        w = np.exp(logits - logsumexp(logits))
        return np.exp(z[0]), w

    def negloglik(z):
        k, w = unpack(z)
        _, log_density = _swap_log_components(x, nt, np.array([k]), w[:1], w[1:2], w[2:])
        return -float(np.sum(log_density))

    safe = np.maximum([p_t, p_n, p_u], eps)
    z0 = [np.log(max(kappa, eps)), np.log(safe[1] / safe[0]), np.log(safe[2] / safe[0])]
    if not m:
        z0 = [z0[0], z0[2]]
    result = minimize(negloglik, np.array(z0), method="BFGS", options={"gtol": 1e-9})
    if np.isfinite(result.fun) and -result.fun > loglik:
        k, w = unpack(result.x)
        return k, w[0], w[1], w[2], -float(result.fun)
    return kappa, p_t, p_n, p_u, loglik


def fit_swap(errors, nontarget_errors=None, *, max_iter: int = 300, tol: float = 1e-6
             ) -> SwapFit:
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
    params = _polish_swap(x, nt, *_em(x, nt, max_iter=max_iter, tol=tol))
    kappa, p_t, p_n, p_u, loglik = (float(v) for v in params)
    return SwapFit(kappa=kappa, p_target=p_t, p_nontarget=p_n, p_guess=p_u, loglik=loglik,
                   n_trials=x.size, n_params=3 if nt.shape[1] else 2)


def fit_vm_uniform(errors, *, max_iter: int = 300, tol: float = 1e-6) -> VonMisesUniformFit:
    """Fit von Mises + uniform by EM (the swap model's EM without the non-target term)."""
    fit = fit_swap(errors, None, max_iter=max_iter, tol=tol)
    return VonMisesUniformFit(kappa=fit.kappa, p_guess=fit.p_guess, loglik=fit.loglik,
                              n_trials=fit.n_trials)


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
        loglik = np.sum(np.logaddexp(np.log1p(-g)[:, None] + np.log(f),
                                     (np.log(g) - _LOG_2PI)[:, None]), axis=1)
    return g, loglik


def fit_gauss_uniform(errors, *, n_grid: int = 60) -> GaussianUniformFit:
    """Fit truncated-Gaussian + uniform by profile likelihood over sigma (see module doc)."""
    x = _check_errors(errors)
    grid = np.linspace(*np.log(_SIGMA_BOUNDS), n_grid)
    _, loglik = _profile_gauss(x, grid)
    best = int(np.argmax(loglik))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, n_grid - 1)]
    refined = minimize_scalar(lambda s: -_profile_gauss(x, s)[1][0], bounds=(lo, hi),
                              method="bounded", options={"xatol": 1e-10})
    log_sigma = refined.x if -refined.fun > loglik[best] else grid[best]
    g, ll = _profile_gauss(x, log_sigma)
    return GaussianUniformFit(sigma=float(np.exp(log_sigma)), p_guess=float(g[0]),
                              loglik=float(ll[0]), n_trials=x.size)


# --------------------------------------------------------------------------------------------
# Per set size


def fit_mixture_models(errors, nontarget_errors=None) -> MixtureFits:
    """All three models on one set size's errors."""
    x = _check_errors(errors)
    return MixtureFits(n_trials=x.size, vm_uniform=fit_vm_uniform(x),
                       gauss_uniform=fit_gauss_uniform(x), swap=fit_swap(x, nontarget_errors))


def fit_by_set_size(errors, set_size, nontarget_errors=None) -> MixtureResult:
    """Fit the three models separately at each set size.

    Args:
        errors: (n,) response - target, radians.
        set_size: (n,) int set size of each trial.
        nontarget_errors: optional (n, M_max) response - non-target, NaN-padded; the trials of
            set size N must have finite values in their first N - 1 columns (extra columns are
            ignored). Without it the swap model sees no non-targets (p_nontarget = 0).
    """
    errors = _check_errors(errors)
    set_size = np.asarray(set_size).ravel()
    if set_size.shape != errors.shape:
        raise ValueError(f"set_size: expected shape {errors.shape}, got {set_size.shape}")
    fits = {}
    for n in np.unique(set_size):
        rows = set_size == n
        nt = None
        if nontarget_errors is not None and n > 1:
            nt_all = np.asarray(nontarget_errors, dtype=float)
            if nt_all.ndim != 2 or nt_all.shape[1] < n - 1:
                raise ValueError(f"nontarget_errors: set size {n} needs {n - 1} columns, "
                                 f"got shape {nt_all.shape}")
            nt = nt_all[rows, : n - 1]
        fits[int(n)] = fit_mixture_models(errors[rows], nt)
    return MixtureResult(fits=fits, errors=errors, set_size=set_size)


# --------------------------------------------------------------------------------------------
# The run-directory analysis contract


unavailable = needs_vwm_recall
"""The ``mixture`` analysis needs a VWM recall task (items, set sizes, reported angles)."""


def run(model, env, *, n_trials: int, seed: int, data: ModelErrors | None = None
        ) -> MixtureResult:
    """The ``mixture`` analysis: the three models fitted per set size to a model's errors
    (``data`` when given, e.g. shared by the CLI; else simulated here)."""
    if data is None:
        data = model_errors(model, env, n_trials=n_trials, seed=seed)
    return fit_by_set_size(data.errors, data.set_size, data.nontarget_errors)

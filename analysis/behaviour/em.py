"""Fitting the von Mises mixture models by EM (docs/model.md, section Mixture models): the
multi-start grid iterated as arrays, then a local quasi-Newton polish of the best start.
:mod:`analysis.behaviour.mixture` defines the models and their results."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import i0e, logsumexp

from analysis.core.circstats import a1_inverse_exact, vonmises_logpdf

__all__ = ["KAPPA_MAX", "EM_START_GRID", "swap_log_components", "em_swap", "polish_swap"]

KAPPA_MAX = 1e4
"""Upper bound on fitted von Mises concentrations (circular SD 0.01 rad = 0.6 degrees)."""

EM_START_GRID: dict[str, tuple[float, ...]] = {
    "kappa": (1.0, 10.0, 100.0),
    "p_nontarget": (0.01, 0.1, 0.4),
    "p_guess": (0.01, 0.1, 0.4),
}
"""Bays (2009) multi-start grid; p_target = 1 - p_nontarget - p_guess at each start."""

_LOG_2PI = np.log(2.0 * np.pi)


def swap_log_components(x, nt, kappa, p_t, p_n, p_u):
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


def em_swap(
    x: np.ndarray,
    nt: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    start: tuple[float, float, float] | None = None,
):
    """Vectorised EM over the start grid; returns (kappa, p_t, p_n, p_u, loglik) of the best.

    ``start``: one (kappa, p_nontarget, p_guess) to start from instead of the grid (a refit of
    resampled data near a known optimum, as the bootstrap does).

    Works with densities rather than logs (as JV10 does): with kappa <= KAPPA_MAX the von Mises
    density is bounded, and underflow only zeroes components that carry no responsibility.
    """
    m = nt.shape[1]
    if start is None:
        grid = np.array(np.meshgrid(*EM_START_GRID.values(), indexing="ij")).reshape(3, -1)
    else:
        grid = np.array(start, dtype=float).reshape(3, 1)
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
    _, log_density = swap_log_components(
        x,
        nt,
        kappa[best : best + 1],
        p_t[best : best + 1],
        p_n[best : best + 1],
        p_u[best : best + 1],
    )
    return kappa[best], p_t[best], p_n[best], p_u[best], float(log_density.sum())


def polish_swap(x, nt, kappa, p_t, p_n, p_u, loglik):
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
        _, log_density = swap_log_components(x, nt, np.array([k]), w[:1], w[1:2], w[2:])
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

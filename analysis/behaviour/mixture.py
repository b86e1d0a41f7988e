"""Mixture models of recall errors per set size, with their uncertainty: the ``mixture`` analysis.

The three models (von Mises + uniform, truncated Gaussian + uniform, the swap model of Bays et al.
2009) and their maximum-likelihood fits are :mod:`analysis.behaviour.mixture_models` (its names
are re-exported here, so ``from analysis.behaviour.mixture import fit_vm_uniform`` works). Here:
all three fitted to one set size's errors (:func:`fit_mixture_models`), separately at each set
size with bootstrap SEs over whole trials (:func:`fit_by_set_size`, :func:`bootstrap_se`), what
the fits leave uncertain (:meth:`MixtureResult.uncertainty`), and the analysis of a run
(:func:`run`, ``mixture.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.behaviour.em import em_swap
from analysis.behaviour.mixture_models import (
    GaussianUniformFit,
    SwapFit,
    VonMisesUniformFit,
    _check_errors,
    _check_nontargets,
    fit_gauss_uniform,
    fit_swap,
    fit_vm_uniform,
    gauss_uniform_loglik,
    swap_loglik,
    truncated_normal_logpdf,
    vm_uniform_loglik,
)
from analysis.core.bootstrap import resample_indices, standard_error
from analysis.core.tasks import needs_vwm_recall
from analysis.core.trials import ModelErrors, model_errors

__all__ = [
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
    "bootstrap_se",
    "N_BOOTSTRAP",
    "run",
    "unavailable",
]

N_BOOTSTRAP = 20
"""Bootstrap resamples (whole trials) of a model's mixture fits: each refits the three models,
warm-started at the full data's estimate, so it is the costly part of the ``mixture`` analysis;
20 resamples give each SE to about +-16 %."""

BOOTSTRAPPED: dict[str, tuple[str, ...]] = {
    "vm_uniform": ("kappa", "sd", "p_guess"),
    "gauss_uniform": ("sigma", "p_guess"),
    "swap": ("kappa", "sd", "p_target", "p_nontarget", "p_guess"),
}
"""The parameters with a bootstrap SE, per model."""

_START_FLOOR = 0.02
"""Bootstrap starts keep weights about this far off 0 (EM cannot leave a weight of 0)."""


@dataclass(frozen=True)
class MixtureFits:
    """The three fits for one set size (one entry of ``mixture.json``); ``se[model][param]``:
    bootstrap SEs over trials (empty when not bootstrapped)."""

    n_trials: int
    vm_uniform: VonMisesUniformFit
    gauss_uniform: GaussianUniformFit
    swap: SwapFit
    se: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {
            "n_trials": self.n_trials,
            "vm_uniform": self.vm_uniform.to_dict(),
            "gauss_uniform": self.gauss_uniform.to_dict(),
            "swap": self.swap.to_dict(),
        }
        if self.se:
            out["se"] = self.se
        return out


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

    def se_column(self, model: str, parameter: str) -> np.ndarray | None:
        """The bootstrap SE of one parameter across set sizes; None when not bootstrapped."""
        if not all(self.fits[n].se for n in self.set_sizes):
            return None
        return np.array([self.fits[n].se[model][parameter] for n in self.set_sizes])

    def uncertainty(self, set_size: int) -> dict[str, float | int | None]:
        """What the fits leave uncertain at one set size: how far the two guess-rate models
        disagree (Gauss+U minus VM+U, and their ratio where the VM+U rate is at least 0.01)
        and, where the VM+U guess rate falls from the previous set size (losing items predicts
        it cannot), the fall and the fall in units of its SE."""
        fits = self.fits[set_size]
        g_vm, g_gauss = fits.vm_uniform.p_guess, fits.gauss_uniform.p_guess
        out: dict[str, float | int | None] = {
            "guess_rate_gauss_minus_vm": g_gauss - g_vm,
            "guess_rate_gauss_over_vm": g_gauss / g_vm if g_vm >= 0.01 else None,
        }
        i = self.set_sizes.index(set_size)
        if i > 0:
            previous = self.fits[self.set_sizes[i - 1]]
            fall = previous.vm_uniform.p_guess - g_vm
            if fall > 0:
                se = np.hypot(
                    previous.se.get("vm_uniform", {}).get("p_guess", np.nan),
                    fits.se.get("vm_uniform", {}).get("p_guess", np.nan),
                )
                out.update(
                    guess_rate_falls_from=self.set_sizes[i - 1],
                    guess_rate_fall=fall,
                    guess_rate_fall_z=float(fall / se) if se > 0 else None,
                )
        return out

    def to_dict(self) -> dict[str, dict]:
        return {
            str(n): {**self.fits[n].to_dict(), "uncertainty": self.uncertainty(n)}
            for n in self.set_sizes
        }


# --------------------------------------------------------------------------------------------
# Per set size


def fit_mixture_models(errors, nontarget_errors=None) -> MixtureFits:
    """All three models on one set size's errors."""
    x = _check_errors(errors)
    return MixtureFits(
        n_trials=x.size,
        vm_uniform=fit_vm_uniform(x),
        gauss_uniform=fit_gauss_uniform(x),
        swap=fit_swap(x, nontarget_errors),
    )


def _parameters(fits: MixtureFits) -> dict[str, dict[str, float]]:
    return {
        model: {p: float(getattr(getattr(fits, model), p)) for p in params}
        for model, params in BOOTSTRAPPED.items()
    }


def _start_weights(p_nontarget: float, p_guess: float, *, nontargets: bool) -> tuple[float, float]:
    """(p_nontarget, p_guess) of an EM start: every weight in play (the target's, 1 - both,
    included) floored at :data:`_START_FLOOR` and the three renormalised to sum to 1, since EM
    cannot leave a weight of 0 and a target weight below 0 is no mixture."""
    weights = np.array([1.0 - p_nontarget - p_guess, p_nontarget, p_guess])
    weights = np.maximum(weights, _START_FLOOR)
    if not nontargets:
        weights[1] = 0.0
    weights /= weights.sum()
    return float(weights[1]), float(weights[2])


def bootstrap_se(
    fits: MixtureFits,
    errors: np.ndarray,
    nontarget_errors: np.ndarray | None,
    trial: np.ndarray,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> dict[str, dict[str, float]]:
    """Bootstrap SEs of :data:`BOOTSTRAPPED` at one set size, resampling whole trials
    (:func:`analysis.core.bootstrap.resample_indices`); each resample's von Mises fits start at
    ``fits`` (one EM start instead of the grid: the full data's search already chose the
    optimum's basin)."""
    x = _check_errors(errors)
    nt = _check_nontargets(nontarget_errors, x.size)
    no_nt = np.zeros((x.size, 0))
    vm, swap = fits.vm_uniform, fits.swap
    vm_start = (vm.kappa, *_start_weights(0.0, vm.p_guess, nontargets=False))
    swap_start = (
        swap.kappa,
        *_start_weights(swap.p_nontarget, swap.p_guess, nontargets=bool(nt.shape[1])),
    )
    draws: dict[str, dict[str, list[float]]] = {
        m: {p: [] for p in params} for m, params in BOOTSTRAPPED.items()
    }
    for rows in resample_indices(trial, n_bootstrap, rng, "trials"):
        k, _, _, g, ll = em_swap(x[rows], no_nt[rows], max_iter=300, tol=1e-6, start=vm_start)
        k_s, p_t, p_n, p_u, ll_s = em_swap(
            x[rows], nt[rows], max_iter=300, tol=1e-6, start=swap_start
        )
        resample = MixtureFits(
            n_trials=x.size,
            vm_uniform=VonMisesUniformFit(kappa=k, p_guess=g, loglik=ll, n_trials=x.size),
            gauss_uniform=fit_gauss_uniform(x[rows]),
            swap=SwapFit(
                kappa=k_s, p_target=p_t, p_nontarget=p_n, p_guess=p_u, loglik=ll_s, n_trials=x.size
            ),
        )
        for model, params in _parameters(resample).items():
            for p, value in params.items():
                draws[model][p].append(value)
    return {m: {p: standard_error(v) for p, v in params.items()} for m, params in draws.items()}


def fit_by_set_size(
    errors,
    set_size,
    nontarget_errors=None,
    *,
    trial=None,
    n_bootstrap: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> MixtureResult:
    """Fit the three models separately at each set size (with ``n_bootstrap``, seeded by
    ``seed``: their bootstrap SEs over ``trial``, each error its own trial when None).
    ``progress``: a bar (tqdm, stderr) over the set sizes, each one fit and its resamples, so
    its estimate of the time left holds.

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
    trial = np.arange(errors.size) if trial is None else np.asarray(trial).ravel()
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    fits = {}
    sizes = np.unique(set_size)
    bar = tqdm(sizes, desc="mixture fits", unit="set size", disable=not progress, leave=False)
    for n in bar:
        rows = set_size == n
        nt = None
        if nontarget_errors is not None and n > 1:
            nt_all = np.asarray(nontarget_errors, dtype=float)
            if nt_all.ndim != 2 or nt_all.shape[1] < n - 1:
                raise ValueError(
                    f"nontarget_errors: set size {n} needs {n - 1} columns, "
                    f"got shape {nt_all.shape}"
                )
            nt = nt_all[rows, : n - 1]
        fits[int(n)] = fit_mixture_models(errors[rows], nt)
        if n_bootstrap > 1 and rows.sum() > 1:
            fits[int(n)].se.update(
                bootstrap_se(fits[int(n)], errors[rows], nt, trial[rows], n_bootstrap, rng)
            )
    bar.close()
    return MixtureResult(fits=fits, errors=errors, set_size=set_size)


# --------------------------------------------------------------------------------------------
# The run-directory analysis contract


unavailable = needs_vwm_recall
"""The ``mixture`` analysis needs a VWM recall task (items, set sizes, reported angles)."""


def run(
    model,
    env,
    *,
    n_trials: int,
    seed: int,
    data: ModelErrors | None = None,
    progress: bool = False,
) -> MixtureResult:
    """The ``mixture`` analysis: the three models fitted per set size to a model's errors
    (``data`` when given, e.g. shared by the CLI; else simulated here), with :data:`N_BOOTSTRAP`
    bootstrap SEs over trials (seeded by the data's seed); ``progress``: its own bar."""
    if data is None:
        data = model_errors(model, env, n_trials=n_trials, seed=seed)
    return fit_by_set_size(
        data.errors,
        data.set_size,
        data.nontarget_errors,
        trial=data.trial,
        n_bootstrap=N_BOOTSTRAP,
        seed=data.seed,
        progress=progress,
    )

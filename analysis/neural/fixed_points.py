"""Fixed and slow points of a recurrent network (Sussillo & Barak 2013; Golub & Sussillo 2018).

A fixed point of the one-step map ``F`` (the model's Euler step at a constant input) is a state
``x`` with ``F(x) = x``; a slow point is a local minimum of ``q(x) = 1/2 ||F(x) - x||^2`` with a
small but non-zero value. Many initial states sampled from the network's own trajectories are
optimised jointly (one batch):

1. Adam on ``sum_i q(x_i)`` with an adaptive learning rate (grown while the total q falls, cut
   when it rises), which brings every state into the basin of a nearby minimum cheaply;
2. a batched damped Newton (Levenberg-Marquardt) refinement of the residual ``g = F(x) - x``:
   ``(A^T A + mu I) dx = -A^T g`` with ``A = J - I`` and batched Jacobians from ``jacrev``.
   With ``mu -> 0`` this is the Newton step ``(J - I) dx = -(F(x) - x)``, so it converges
   quadratically to true fixed points; the damping keeps it well defined at slow points, where
   ``J - I`` is (nearly) singular. Adam alone needs thousands of iterations to reach q < 1e-12.

Then the points are deduplicated (distance ``tol_unique``), distance outliers are dropped
(further from the initial states' centroid than ``outlier_distance_scale`` times the initial
states' mean distance from it), and each point gets its Jacobian eigenvalues: for the discrete
map a point is stable iff every ``|lambda| < 1``.

The agent's noise is off: with noise on, ``F`` is random and q cannot converge (the reference
code left it on; see docs/model.md, section Fixed points). Computation runs in float64 on a copy
of the model, because q < 1e-12 is below float32 resolution for rates of tens of Hz. Any agent
with a one-step map ``step(states, inputs)`` (see :mod:`analysis.core.agent_protocol`) and any task
will do: the Dale RNN's rates, a GRU's hidden state.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from analysis.core.agent_protocol import (
    is_rate_network,
    needs_states,
    needs_step,
    readout_map,
    step_map,
)
from analysis.core.neural_trials import ForcedTrials, forced_trials, simulate, task_trials
from analysis.core.pca import PCA, fit_pca
from analysis.core.tasks import is_vwm_task
from analysis.neural.fixed_point_finder import (
    StepFunction,
    batched_eigvals,
    batched_jacobian,
    find_fixed_points,
    residual_q,
)
from vwm_tasks.encoding import targets_to_angles

__all__ = [
    "FixedPointResult",
    "unique_indices",
    "outlier_mask",
    "analyse_fixed_points",
    "sample_initial_states",
    "FixedPointViews",
    "unavailable",
    "run",
]


def unique_indices(points: np.ndarray, q: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Indices of the points that differ (Euclidean distance > tol) from every lower-q point."""
    order = np.argsort(q, kind="stable")
    kept: list[int] = []
    for i in order:
        if not kept or np.min(np.linalg.norm(points[kept] - points[i], axis=1)) > tol:
            kept.append(int(i))
    return np.array(kept, dtype=int)


def outlier_mask(points: np.ndarray, initial_states: np.ndarray, scale: float = 10.0) -> np.ndarray:
    """True for points further from the initial states' centroid than ``scale`` times the
    initial states' mean distance from that centroid."""
    centroid = initial_states.mean(0)
    typical = np.linalg.norm(initial_states - centroid, axis=1).mean()
    return np.linalg.norm(points - centroid, axis=1) > scale * max(typical, np.finfo(float).eps)


@dataclass
class FixedPointViews:
    """The PCA views of a fixed-point analysis (fitted on the trajectories' states)."""

    pca: PCA
    trajectories: np.ndarray
    """(B, T, k) trajectories in PC coordinates."""
    valid: np.ndarray
    """(B, T) bool."""
    epochs: dict[str, np.ndarray]
    """epoch name -> (B, 2) [start, end) of each trial, from the env."""
    points: np.ndarray
    """(P, k) the kept fixed points."""
    search_start: np.ndarray
    """(M, k) every initial state of the search."""
    search_end: np.ndarray
    """(M, k) where each search ended (before deduplication and outlier removal)."""
    points_decoded: np.ndarray | None
    """(P,) decoded angle (VWM tasks: the item slot's readout) or class (argmax readout)."""
    trial_ends: np.ndarray
    """(B, k) the last state of each trial."""
    trial_ends_decoded: np.ndarray | None
    """(B,) decoded angle or class at the last step of each trial."""
    trial_label: np.ndarray | None
    """(B,) the item's true angle (VWM tasks), for colouring."""
    decoded_kind: str
    """"angle" (rad) or "class"."""

    def to_dict(self) -> dict:
        def listed(x):
            return None if x is None else np.asarray(x).tolist()

        return {
            "explained_variance_ratio": self.pca.explained_variance_ratio.tolist(),
            "points": self.points.tolist(),
            "points_decoded": listed(self.points_decoded),
            "decoded_kind": self.decoded_kind,
            "search": {"start": self.search_start.tolist(), "end": self.search_end.tolist()},
            "trial_ends": self.trial_ends.tolist(),
            "trial_ends_decoded": listed(self.trial_ends_decoded),
            "trial_label": listed(self.trial_label),
            "epochs": {name: bounds.tolist() for name, bounds in self.epochs.items()},
        }


@dataclass
class FixedPointResult:
    """Fixed/slow points of one model at one input, with their linearisation.

    Array attributes are kept for plotting; :meth:`to_dict` holds everything the JSON needs.
    """

    points: np.ndarray
    """(P, N) unique, non-outlier points, sorted by q."""
    q: np.ndarray
    """(P,) q of each point."""
    eigenvalues: np.ndarray
    """(P, N) complex Jacobian eigenvalues, sorted by decreasing modulus."""
    stable: np.ndarray
    """(P,) bool, every |eigenvalue| < 1."""
    n_init: int
    n_converged: int
    n_unique: int
    n_outliers: int
    tol_q: float
    tol_unique: float
    adam_iterations: int
    newton_iterations: int
    seconds: float
    epoch: str = "all"
    q_initial: np.ndarray | None = None
    initial_states: np.ndarray | None = None
    """(M, N) the initial states of the search."""
    final_states: np.ndarray | None = None
    """(M, N) where each search ended."""
    q_final: np.ndarray | None = None
    """(M,) q where each search ended."""
    kept: np.ndarray | None = None
    """(P,) index of each kept point among the searches."""
    settings: dict = field(default_factory=dict)
    views: FixedPointViews | None = None
    """PCA views (None when ``pca`` is off)."""
    dt_ms: float = 1.0
    """Duration of one step of the map (the eigenvalues' time constants are in ms)."""

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    def time_constants_ms(self) -> list[np.ndarray]:
        """Per point, the decay time constant -dt / ln|lambda| of each Jacobian mode (ms; inf
        for |lambda| >= 1, a mode that does not decay)."""
        out = []
        for eig in self.eigenvalues:
            modulus = np.abs(eig)
            with np.errstate(divide="ignore"):
                tau = np.where(
                    modulus < 1.0, -self.dt_ms / np.log(np.maximum(modulus, 1e-300)), np.inf
                )
            out.append(tau)
        return out

    def verdict(self) -> str:
        """One sentence: how many points, how stable, their mean state, their slowest mode."""
        stable = int(self.stable.sum())
        text = (
            f"{self.n_points} fixed point{'s' if self.n_points != 1 else ''} kept "
            f"({stable} stable) from {self.n_init} searches ({self.n_converged} converged)"
        )
        if self.n_points:
            means = self.points.mean(1)
            slowest = max(float(np.max(t)) if t.size else 0.0 for t in self.time_constants_ms())
            text += f"; mean state {', '.join(f'{m:.3g}' for m in means[:5])}" + (
                " ..." if means.size > 5 else ""
            )
            text += (
                f"; slowest mode {slowest:.0f} ms"
                if np.isfinite(slowest)
                else "; a mode that does not decay"
            )
        return text + "."

    def to_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "settings": self.settings,
            "counts": {
                "initial": self.n_init,
                "converged": self.n_converged,
                "unique": self.n_unique,
                "outliers": self.n_outliers,
                "kept": self.n_points,
                "stable": int(self.stable.sum()),
            },
            "tol_q": self.tol_q,
            "tol_unique": self.tol_unique,
            "iterations": {"adam": self.adam_iterations, "newton": self.newton_iterations},
            "seconds": self.seconds,
            "q": [float(v) for v in self.q],
            "q_max": float(self.q.max()) if self.q.size else None,
            "stable": [bool(s) for s in self.stable],
            "max_abs_eigenvalue": [float(np.abs(e).max()) for e in self.eigenvalues],
            "eigenvalues": [
                {"real": e.real.tolist(), "imag": e.imag.tolist()} for e in self.eigenvalues
            ],
            "dt_ms": self.dt_ms,
            "slowest_time_constant_ms": [
                float(np.max(t)) if t.size else None for t in self.time_constants_ms()
            ],
            "mean_state": [float(v) for v in self.points.mean(1)] if self.n_points else [],
            "verdict": self.verdict(),
            "pca": None if self.views is None else self.views.to_dict(),
        }


def analyse_fixed_points(
    step_fn: StepFunction,
    initial_states: Tensor,
    *,
    tol_q: float = 1e-12,
    tol_unique: float = 1e-3,
    outlier_distance_scale: float = 10.0,
    **search_options,
) -> FixedPointResult:
    """Find, deduplicate and linearise the fixed points reached from ``initial_states``."""
    start = time.perf_counter()
    search = find_fixed_points(step_fn, initial_states, tol_q=tol_q, **search_options)
    points = search.points.cpu().numpy()
    q = search.q.cpu().numpy()
    init = initial_states.detach().cpu().numpy()
    keep = unique_indices(points, q, tol_unique)
    outliers = outlier_mask(points[keep], init, outlier_distance_scale)
    kept = keep[~outliers]
    with torch.no_grad():
        jac = batched_jacobian(step_fn, search.points[torch.as_tensor(kept, dtype=torch.long)])
    eig = (
        batched_eigvals(jac).cpu().numpy() if len(kept) else np.zeros((0, points.shape[1]), complex)
    )
    eig = np.take_along_axis(eig, np.argsort(-np.abs(eig), axis=1, kind="stable"), axis=1)
    stable = np.all(np.abs(eig) < 1.0, axis=1) if len(kept) else np.zeros(0, bool)
    return FixedPointResult(
        points=points[kept],
        q=q[kept],
        eigenvalues=eig,
        stable=stable,
        n_init=int(points.shape[0]),
        n_converged=int((q < tol_q).sum()),
        n_unique=len(keep),
        n_outliers=int(outliers.sum()),
        tol_q=tol_q,
        tol_unique=tol_unique,
        adam_iterations=search.adam_iterations,
        newton_iterations=search.newton_iterations,
        seconds=time.perf_counter() - start,
        q_initial=residual_q(step_fn, initial_states).detach().cpu().numpy(),
        initial_states=init,
        final_states=points,
        q_final=q,
        kept=kept,
    )


def sample_initial_states(
    trajectories: np.ndarray,
    epochs: dict[str, tuple[int, int]],
    epoch: str,
    n_init: int,
    rng: np.random.Generator,
    noise_scale: float = 0.0,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``n_init`` states at random (trial, step) positions inside ``epoch``.

    ``epochs``: epoch name -> (B, 2) [start, end) per trial (the env's boundaries); ``epoch`` is
    one of them, or "all" for every step of every trial (``valid`` steps only when given).
    """
    n_trials, n_steps, _ = trajectories.shape
    if epoch == "all":
        mask = np.ones((n_trials, n_steps), bool) if valid is None else np.asarray(valid, bool)
    elif epoch in epochs:
        bounds = np.broadcast_to(np.asarray(epochs[epoch]), (n_trials, 2))
        steps = np.arange(n_steps)
        mask = (steps >= bounds[:, :1]) & (steps < bounds[:, 1:])
    else:
        raise ValueError(f"epoch must be one of {(*epochs, 'all')}, got {epoch!r}")
    trials, steps = np.nonzero(mask)
    if trials.size == 0:
        raise ValueError(f"epoch {epoch!r} has no steps in these trials")
    pick = rng.integers(0, trials.size, n_init)
    states = trajectories[trials[pick], steps[pick]]
    if noise_scale > 0:
        states = states + noise_scale * rng.standard_normal(states.shape)
    return states


def unavailable(model: torch.nn.Module, env) -> str | None:
    """Why the analysis cannot run on this agent, or None (any task will do)."""
    n_inputs = int(np.prod(env.observation_space.shape))
    return needs_states("fixed_points", model, env) or needs_step("fixed_points", model, n_inputs)


def _seed_trials(env, n_trials: int, input_slot: int, rng: np.random.Generator) -> ForcedTrials:
    """VWM tasks: one item in ``input_slot`` at angles evenly spaced on the circle, no input
    noise (as the reference); other tasks: their own trials."""
    if not is_vwm_task(env):
        return task_trials(env, n_trials, rng)
    k = int(env.unwrapped.max_items)
    if not 0 <= input_slot < k:
        raise ValueError(f"input_slot must be in [0, {k - 1}], got {input_slot!r}")
    theta = np.zeros((n_trials, k))
    theta[:, input_slot] = np.linspace(-np.pi, np.pi, n_trials, endpoint=False)
    presence = np.zeros((n_trials, k), bool)
    presence[:, input_slot] = True
    return forced_trials(env, theta, presence, ilc_noise=0.0, rng=rng)


def _decode(readout, states: Tensor, env, input_slot: int) -> tuple[np.ndarray | None, str]:
    """Decoded angle of ``input_slot`` (VWM tasks) or class (discrete actions) of each state."""
    if readout is None or states.shape[0] == 0:
        return None, "none"
    with torch.no_grad():
        outputs = readout(states).double().cpu().numpy()
    if is_vwm_task(env):
        return targets_to_angles(outputs)[:, input_slot], "angle"
    if getattr(env.action_space, "n", None) is not None:
        return outputs.argmax(-1), "class"
    return None, "none"


def _views(
    result: FixedPointResult,
    rates: np.ndarray,
    trials: ForcedTrials,
    readout,
    env,
    input_slot: int,
    n_components: int,
) -> FixedPointViews:
    pca = fit_pca(rates[trials.valid], n_components)
    last = trials.valid.sum(1) - 1
    ends = rates[np.arange(rates.shape[0]), last]
    points_decoded, kind = _decode(readout, torch.as_tensor(result.points), env, input_slot)
    ends_decoded, _ = _decode(readout, torch.as_tensor(ends), env, input_slot)
    return FixedPointViews(
        pca=pca,
        trajectories=pca.transform(rates),
        valid=trials.valid,
        epochs=trials.epochs,
        points=pca.transform(result.points)
        if result.n_points
        else np.zeros((0, len(pca.components))),
        search_start=pca.transform(result.initial_states),
        search_end=pca.transform(result.final_states),
        points_decoded=points_decoded,
        trial_ends=pca.transform(ends),
        trial_ends_decoded=ends_decoded,
        trial_label=None if trials.theta is None else trials.theta[:, input_slot],
        decoded_kind=kind,
    )


def run(
    model: torch.nn.Module,
    env,
    *,
    n_trials: int,
    seed: int = 42,
    n_init: int,
    max_iters: int,
    lr_init: float,
    noise_scale: float,
    outlier_distance_scale: float,
    pca: bool,
    epoch: str | None,
    newton_iterations: int,
    input_slot: int = 0,
    tol_q: float = 1e-12,
    tol_unique: float = 1e-3,
    n_components: int = 3,
    progress: bool = True,
) -> FixedPointResult:
    """Fixed points of ``model`` at zero input, started from its own trajectories (noise off).

    The settings' defaults (the reference's ``fpf_params``) are the ``fixed_points`` row's in
    :mod:`analysis.registry` (``run(model, env, **run_defaults("fixed_points"))``).

    Trajectories: ``n_trials`` trials; on a VWM task one item in ``input_slot`` at angles evenly
    spaced on the circle with no input noise, on any other task the task's own trials. Initial
    states: ``n_init`` states drawn from ``epoch`` of those trajectories (default: "decode" where
    the task has it, else "all"), plus Gaussian noise of SD ``noise_scale``. The search: at most
    ``max_iters`` Adam iterations from learning rate ``lr_init``, then at most
    ``newton_iterations`` damped Newton steps. Points further than ``outlier_distance_scale``
    times the initial states' spread are dropped. ``pca``: add the PCA views (trajectories with
    the fixed points, each point's decoded angle, start -> end of the searches).
    """
    for name, value, low in (
        ("n_trials", n_trials, 1),
        ("n_init", n_init, 1),
        ("max_iters", max_iters, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    rng = np.random.default_rng(seed)
    trials = _seed_trials(env, n_trials, input_slot, rng)
    rates = simulate(model, trials, noise=False, seed=seed).rates.double().numpy()
    if epoch is None:
        epoch = "decode" if "decode" in trials.epochs else "all"
    init = sample_initial_states(
        rates, trials.epochs, epoch, n_init, rng, noise_scale, trials.valid
    )
    rate_network = is_rate_network(model)
    if rate_network:
        init = np.maximum(init, 0.0)

    # A float64 copy, so that q < 1e-12 is representable; the caller's model is untouched.
    model64 = copy.deepcopy(model).double().eval()
    for p in model64.parameters():
        p.requires_grad_(False)
    result = analyse_fixed_points(
        step_map(model64),
        torch.as_tensor(init, dtype=torch.float64),
        tol_q=tol_q,
        tol_unique=tol_unique,
        outlier_distance_scale=outlier_distance_scale,
        adam_iterations=max_iters,
        lr_init=lr_init,
        newton_iterations=newton_iterations,
        nonnegative=rate_network,
        progress=progress,
    )
    result.epoch = epoch
    result.dt_ms = float(getattr(getattr(env, "unwrapped", env), "dt", 1.0))
    result.settings = {
        "n_trials": n_trials,
        "n_init": n_init,
        "max_iters": max_iters,
        "lr_init": lr_init,
        "noise_scale": noise_scale,
        "outlier_distance_scale": outlier_distance_scale,
        "pca": pca,
        "newton_iterations": newton_iterations,
        "input_slot": input_slot,
        "seed": seed,
    }
    if pca:
        result.views = _views(
            result, rates, trials, readout_map(model64), env, input_slot, n_components
        )
    return result

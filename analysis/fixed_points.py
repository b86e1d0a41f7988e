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
with a one-step map ``step(states, inputs)`` (see :mod:`analysis.agent_protocol`) and any task
will do: the Dale RNN's rates, a GRU's hidden state.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from analysis.agent_protocol import (
    is_rate_network,
    is_vwm_task,
    needs_states,
    needs_step,
    readout_map,
    step_map,
)
from analysis.neural_trials import ForcedTrials, forced_trials, simulate, task_trials
from analysis.trajectories import PCA, fit_pca
from vwm_tasks.encoding import targets_to_angles

__all__ = [
    "StepFunction",
    "FixedPointSearch",
    "FixedPointResult",
    "batched_solve",
    "batched_eigvals",
    "single_threaded_lapack",
    "batched_jacobian",
    "residual_q",
    "find_fixed_points",
    "unique_indices",
    "outlier_mask",
    "analyse_fixed_points",
    "sample_initial_states",
    "FixedPointViews",
    "unavailable",
    "run",
]

StepFunction = Callable[[Tensor], Tensor]
"""One step of the dynamics at fixed input: states (M, N) -> next states (M, N), row-wise."""

# Batched LU (torch.linalg.solve / lu_factor) on CPU raises ("Pivots given to lu_solve must all
# be greater or equal to 1", after MKL "Parameter 6 was incorrect on entry to DLASWP") with more
# than one intra-op thread for batches of 256 x 256 (or larger) matrices in this torch 2.13 CPU
# build; single-threaded it is correct. Multithreaded LAPACK calls (solve, eigvals) were also
# 10-40x slower than single-threaded ones on an oversubscribed 2-core machine. So batched LAPACK
# work on CPU runs with one thread (tests/analysis/test_fixed_points.py checks both thread counts).


@contextlib.contextmanager
def single_threaded_lapack(device: torch.device):
    """Run the enclosed CPU linear algebra with one intra-op thread, then restore the count."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def batched_solve(a: Tensor, b: Tensor) -> Tensor:
    """Solve ``a[i] x[i] = b[i]`` for a batch: ``a`` (M, N, N), ``b`` (M, N) -> (M, N).

    Safe against the multithreaded batched-LU defect of some CPU torch builds (see above).
    """
    if a.ndim != 3 or b.ndim != 2 or a.shape[:2] != b.shape or a.shape[1] != a.shape[2]:
        raise ValueError(f"batched_solve needs a (M, N, N) and b (M, N), got {tuple(a.shape)} and {tuple(b.shape)}")
    with single_threaded_lapack(a.device):
        return torch.linalg.solve(a, b)


def batched_eigvals(a: Tensor) -> Tensor:
    """Complex eigenvalues of a batch of matrices (M, N, N) -> (M, N), single-threaded on CPU."""
    with single_threaded_lapack(a.device):
        return torch.linalg.eigvals(a)


def residual_q(step_fn: StepFunction, x: Tensor) -> Tensor:
    """q(x) = 1/2 ||F(x) - x||^2 per state: (M, N) -> (M,)."""
    return 0.5 * (step_fn(x) - x).pow(2).sum(-1)


def batched_jacobian(step_fn: StepFunction, x: Tensor) -> Tensor:
    """dF/dx at each state: (M, N) -> (M, N, N), ``J[m, i, j] = dF_i / dx_j``.

    Because F acts row by row, ``d(sum_m F(x)_m)_i / dx_mj = J[m, i, j]``: one ``jacrev`` of the
    batch-summed map gives every Jacobian (3x faster than ``vmap`` over per-state ``jacrev``).
    Steps that functorch cannot transform fall back to N reverse passes through the batch.
    """
    try:
        return torch.func.jacrev(lambda states: step_fn(states).sum(0))(x).permute(1, 0, 2)
    except Exception:  # noqa: BLE001 - any functorch incompatibility: use the generic path
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            fx = step_fn(xg)
            rows = [
                torch.autograd.grad(fx[:, i].sum(), xg, retain_graph=True)[0]
                for i in range(fx.shape[1])
            ]
        return torch.stack(rows, 1)


@dataclass
class FixedPointSearch:
    """The raw outcome of :func:`find_fixed_points` for M initial states."""

    points: Tensor
    """(M, N) final states."""
    q: Tensor
    """(M,) q at the final states."""
    adam_iterations: int
    newton_iterations: int
    q_history: list[float] = field(default_factory=list)
    """Max q over the batch after each Adam / Newton iteration (for benchmarks and plots)."""

    @property
    def converged(self) -> Tensor:
        return self.q < self.tol_q

    tol_q: float = 1e-12


def find_fixed_points(
    step_fn: StepFunction,
    initial_states: Tensor,
    *,
    tol_q: float = 1e-12,
    adam_iterations: int = 50,
    lr_init: float = 1.0,
    lr_grow: float = 1.05,
    lr_cut: float = 0.5,
    newton_iterations: int = 30,
    damping_init: float = 1e-4,
    nonnegative: bool = False,
    progress: bool = False,
) -> FixedPointSearch:
    """Minimise q jointly from every initial state: Adam, then batched damped Newton.

    Args:
        step_fn: the map F, applied row-wise to a batch of states.
        initial_states: (M, N) starting states; their dtype is used throughout (use float64 to
            reach q < 1e-12).
        tol_q: a point has converged when q < tol_q; both stages stop when all have.
        adam_iterations: maximum Adam iterations (0 skips the stage).
        lr_init, lr_grow, lr_cut: adaptive learning rate: multiplied by ``lr_grow`` after an
            iteration that lowers the summed q, by ``lr_cut`` after one that raises it.
        newton_iterations: maximum Newton iterations (0: Adam only).
        damping_init: initial Levenberg-Marquardt damping, relative to the mean diagonal of
            A^T A; divided by 10 after an accepted step, multiplied by 10 after a rejected one.
        nonnegative: keep states >= 0 (firing rates) by projection after every Adam step.
        progress: show a progress bar (tqdm, on stderr) over both stages with the current max q.
    """
    if initial_states.ndim != 2:
        raise ValueError(f"initial_states must be (M, N), got shape {tuple(initial_states.shape)}")
    x = initial_states.detach().clone()
    history: list[float] = []
    bar = tqdm(total=adam_iterations + newton_iterations, desc="fixed points", unit="it",
               disable=not progress, leave=False, file=sys.stderr)
    try:
        adam_done = 0
        if adam_iterations > 0:
            x, adam_done = _adam_stage(
                step_fn, x, tol_q, adam_iterations, lr_init, lr_grow, lr_cut, nonnegative, history, bar
            )
        newton_done = 0
        if newton_iterations > 0:
            x, newton_done = _newton_stage(step_fn, x, tol_q, newton_iterations, damping_init, history, bar)
    finally:
        bar.close()
    with torch.no_grad():
        q = residual_q(step_fn, x)
    return FixedPointSearch(x, q, adam_done, newton_done, history, tol_q)


def _tick(bar, q_max: float) -> None:
    bar.update(1)
    bar.set_postfix_str(f"max q {q_max:.1e}", refresh=False)


def _adam_stage(step_fn, x, tol_q, iterations, lr, lr_grow, lr_cut, nonnegative, history, bar):
    # Adam written out (torch's defaults: betas 0.9 / 0.999, eps 1e-8): torch.optim.Adam's first
    # step imports the compiler stack, seconds per analysis for a few microseconds of arithmetic.
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    x = x.clone()
    first, second = torch.zeros_like(x), torch.zeros_like(x)
    previous = math.inf
    done = 0
    for iteration in range(1, iterations + 1):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            q = residual_q(step_fn, xg)
            q_max = float(q.detach().max())
            history.append(q_max)
            _tick(bar, q_max)
            # Checked before stepping: a step taken from converged states could leave them.
            if q_max < tol_q:
                break
            total = q.sum()
            (grad,) = torch.autograd.grad(total, xg)
        done = iteration
        with torch.no_grad():
            first.lerp_(grad, 1 - beta1)
            second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step_size = lr / (1 - beta1**iteration)
            denominator = (second / (1 - beta2**iteration)).sqrt_().add_(eps)
            x = x - step_size * first / denominator
            if nonnegative:
                x.clamp_(min=0.0)
        lr = lr * (lr_grow if float(total.detach()) < previous else lr_cut)
        previous = float(total.detach())
    return x.detach(), done


@torch.no_grad()
def _newton_stage(step_fn, x, tol_q, iterations, damping_init, history, bar):
    n = x.shape[1]
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    damping = torch.full((x.shape[0],), damping_init, dtype=x.dtype, device=x.device)
    residual = step_fn(x) - x
    q = 0.5 * residual.pow(2).sum(-1)
    done = 0
    for done in range(1, iterations + 1):
        active = q >= tol_q
        if not bool(active.any()):
            done -= 1
            break
        xa, ga, mu = x[active], residual[active], damping[active]
        a = batched_jacobian(step_fn, xa) - eye
        normal = a.mT @ a
        scale = normal.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(torch.finfo(x.dtype).tiny)
        lhs = normal + (mu * scale)[:, None, None] * eye
        rhs = -(a.mT @ ga[..., None])[..., 0]
        step = batched_solve(lhs, rhs)
        candidate = xa + step
        cand_residual = step_fn(candidate) - candidate
        cand_q = 0.5 * cand_residual.pow(2).sum(-1)
        accept = torch.isfinite(cand_q) & (cand_q < q[active])
        idx = active.nonzero()[:, 0]
        x[idx[accept]] = candidate[accept]
        residual[idx[accept]] = cand_residual[accept]
        q[idx[accept]] = cand_q[accept]
        damping[idx] = torch.where(accept, mu / 10.0, mu * 10.0).clamp(1e-15, 1e15)
        history.append(float(q.max()))
        _tick(bar, history[-1])
    return x, done


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

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

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
    eig = batched_eigvals(jac).cpu().numpy() if len(kept) else np.zeros((0, points.shape[1]), complex)
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
    return needs_states("fixed_points", model) or needs_step("fixed_points", model, n_inputs)


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


def _views(result: FixedPointResult, rates: np.ndarray, trials: ForcedTrials, readout, env,
           input_slot: int, n_components: int) -> FixedPointViews:
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
        points=pca.transform(result.points) if result.n_points else np.zeros((0, len(pca.components))),
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
    n_trials: int = 20,
    seed: int = 42,
    n_init: int = 20,
    max_iters: int = 50,
    lr_init: float = 0.01,
    noise_scale: float = 0.0,
    outlier_distance_scale: float = 10.0,
    pca: bool = True,
    epoch: str | None = None,
    newton_iterations: int = 30,
    input_slot: int = 0,
    tol_q: float = 1e-12,
    tol_unique: float = 1e-3,
    n_components: int = 3,
    progress: bool = True,
) -> FixedPointResult:
    """Fixed points of ``model`` at zero input, started from its own trajectories (noise off).

    Trajectories: ``n_trials`` trials; on a VWM task one item in ``input_slot`` at angles evenly
    spaced on the circle with no input noise, on any other task the task's own trials. Initial
    states: ``n_init`` states drawn from ``epoch`` of those trajectories (default: "decode" where
    the task has it, else "all"), plus Gaussian noise of SD ``noise_scale``. The search: at most
    ``max_iters`` Adam iterations from learning rate ``lr_init``, then at most
    ``newton_iterations`` damped Newton steps. Points further than ``outlier_distance_scale``
    times the initial states' spread are dropped. ``pca``: add the PCA views (trajectories with
    the fixed points, each point's decoded angle, start -> end of the searches).
    """
    for name, value, low in (("n_trials", n_trials, 1), ("n_init", n_init, 1), ("max_iters", max_iters, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    rng = np.random.default_rng(seed)
    trials = _seed_trials(env, n_trials, input_slot, rng)
    rates = simulate(model, trials, noise=False, seed=seed).rates.double().numpy()
    if epoch is None:
        epoch = "decode" if "decode" in trials.epochs else "all"
    init = sample_initial_states(rates, trials.epochs, epoch, n_init, rng, noise_scale, trials.valid)
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
    result.settings = {
        "n_trials": n_trials, "n_init": n_init, "max_iters": max_iters, "lr_init": lr_init,
        "noise_scale": noise_scale, "outlier_distance_scale": outlier_distance_scale, "pca": pca,
        "newton_iterations": newton_iterations, "input_slot": input_slot, "seed": seed,
    }
    if pca:
        result.views = _views(result, rates, trials, readout_map(model64), env, input_slot, n_components)
    return result

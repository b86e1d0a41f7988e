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

Spiking noise is off by default: with noise on, ``F`` is random and q cannot converge (the
original code left it on, original_model.md section 6.1). Computation runs in float64 on a copy
of the model, because q < 1e-12 is below float32 resolution for rates of tens of Hz.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from analysis.neural_trials import EPOCH_CHOICES, forced_trials, simulate

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
    "run",
    "plot",
]

StepFunction = Callable[[Tensor], Tensor]
"""One step of the dynamics at fixed input: states (M, N) -> next states (M, N), row-wise."""

# Batched LU (torch.linalg.solve / lu_factor) on CPU raises ("Pivots given to lu_solve must all
# be greater or equal to 1", after MKL "Parameter 6 was incorrect on entry to DLASWP") with more
# than one intra-op thread for batches of 256 x 256 (or larger) matrices in this torch 2.13 CPU
# build; single-threaded it is correct. Multithreaded LAPACK calls (solve, eigvals) were also
# 10-40x slower than single-threaded ones on an oversubscribed 2-core machine. So batched LAPACK
# work on CPU runs with one thread (tests/test_fixed_points.py checks both thread counts).


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
    """
    if initial_states.ndim != 2:
        raise ValueError(f"initial_states must be (M, N), got shape {tuple(initial_states.shape)}")
    x = initial_states.detach().clone()
    history: list[float] = []
    adam_done = 0
    if adam_iterations > 0:
        x, adam_done = _adam_stage(
            step_fn, x, tol_q, adam_iterations, lr_init, lr_grow, lr_cut, nonnegative, history
        )
    newton_done = 0
    if newton_iterations > 0:
        x, newton_done = _newton_stage(step_fn, x, tol_q, newton_iterations, damping_init, history)
    with torch.no_grad():
        q = residual_q(step_fn, x)
    return FixedPointSearch(x, q, adam_done, newton_done, history, tol_q)


def _adam_stage(step_fn, x, tol_q, iterations, lr, lr_grow, lr_cut, nonnegative, history):
    x = x.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=lr)
    previous = math.inf
    done = 0
    with torch.enable_grad():
        for iteration in range(1, iterations + 1):
            done = iteration
            optimiser.zero_grad()
            q = residual_q(step_fn, x)
            total = q.sum()
            total.backward()
            optimiser.step()
            if nonnegative:
                with torch.no_grad():
                    x.clamp_(min=0.0)
            q_max = float(q.detach().max())
            history.append(q_max)
            if q_max < tol_q:
                break
            lr = lr * (lr_grow if float(total.detach()) < previous else lr_cut)
            previous = float(total.detach())
            for group in optimiser.param_groups:
                group["lr"] = lr
    return x.detach(), done


@torch.no_grad()
def _newton_stage(step_fn, x, tol_q, iterations, damping_init, history):
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
    n_initial: int
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
    trajectories: np.ndarray | None = None
    """(trials, T, N) clean trajectories the initial states came from (plots only)."""
    epochs: dict[str, tuple[int, int]] | None = None
    initial_states: np.ndarray | None = None

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    def to_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "counts": {
                "initial": self.n_initial,
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
        n_initial=int(points.shape[0]),
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
    )


def sample_initial_states(
    trajectories: np.ndarray,
    epochs: dict[str, tuple[int, int]],
    epoch: str,
    n_initial: int,
    rng: np.random.Generator,
    noise_scale: float = 0.0,
) -> np.ndarray:
    """Draw ``n_initial`` states at random (trial, step) positions inside ``epoch``.

    ``epoch`` is one of :data:`EPOCH_CHOICES`; "all" uses every step.
    """
    if epoch not in EPOCH_CHOICES:
        raise ValueError(f"epoch must be one of {EPOCH_CHOICES}, got {epoch!r}")
    n_trials, n_steps, _ = trajectories.shape
    start, end = (0, n_steps) if epoch == "all" else epochs[epoch]
    trials = rng.integers(0, n_trials, n_initial)
    steps = rng.integers(start, end, n_initial)
    states = trajectories[trials, steps]
    if noise_scale > 0:
        states = states + noise_scale * rng.standard_normal(states.shape)
    return states


def run(
    model: torch.nn.Module,
    env,
    *,
    n_trials: int = 20,
    seed: int = 42,
    epoch: str = "decode",
    n_initial: int = 256,
    noise: bool = False,
    input_slot: int = 0,
    tol_q: float = 1e-12,
    tol_unique: float = 1e-3,
    outlier_distance_scale: float = 10.0,
    **search_options,
) -> FixedPointResult:
    """Fixed points of ``model`` at zero input, started from its own trajectories.

    Trajectories: ``n_trials`` set-size-1 trials with the item in ``input_slot`` at angles
    evenly spaced on the circle, no input noise (original_model.md section 6.1). Initial states:
    ``n_initial`` states drawn from ``epoch`` of those trajectories.

    Args:
        noise: keep the model's spiking noise on inside F (q then cannot converge).
    """
    if epoch not in EPOCH_CHOICES:
        raise ValueError(f"epoch must be one of {EPOCH_CHOICES}, got {epoch!r}")
    rng = np.random.default_rng(seed)
    k = env.unwrapped.max_items
    theta = np.zeros((n_trials, k))
    theta[:, input_slot] = np.linspace(-np.pi, np.pi, n_trials, endpoint=False)
    presence = np.zeros((n_trials, k), bool)
    presence[:, input_slot] = True
    trials = forced_trials(env, theta, presence, ilc_noise=0.0, rng=rng)
    sim = simulate(model, trials, noise=False, seed=seed)
    rates = sim.rates.double().numpy()
    epochs = trials.fixed_epochs()
    init = sample_initial_states(rates, epochs, epoch, n_initial, rng)

    # A float64 copy, so that q < 1e-12 is representable; the caller's model is untouched.
    model64 = copy.deepcopy(model).double().eval()
    for p in model64.parameters():
        p.requires_grad_(False)
    n_in = model64.input_weights.shape[1]

    def step_fn(x: Tensor) -> Tensor:
        return model64.step(x, torch.zeros(x.shape[0], n_in, dtype=x.dtype), noise=noise)

    result = analyse_fixed_points(
        step_fn,
        torch.as_tensor(init, dtype=torch.float64),
        tol_q=tol_q,
        tol_unique=tol_unique,
        outlier_distance_scale=outlier_distance_scale,
        nonnegative=True,
        **search_options,
    )
    result.epoch = epoch
    result.trajectories = rates
    result.epochs = epochs
    return result


def plot(result: FixedPointResult, out_dir: Path) -> list[Path]:
    """PCA views of the trajectories (coloured by epoch) with the fixed points, and the
    eigenvalue spectra on the unit circle."""
    from analysis.plotting_neural import plot_fixed_points

    return plot_fixed_points(result, Path(out_dir))

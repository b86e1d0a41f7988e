"""The fixed-point search itself: minimise q(x) = 1/2 ||F(x) - x||^2 from many states at once.

Adam with an adaptive learning rate, then a batched damped Newton (Levenberg-Marquardt) refinement
with batched Jacobians; see :mod:`analysis.neural.fixed_points` for the method and the analysis built on
it. Nothing here knows about agents or tasks: F is any row-wise map of a batch of states.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

__all__ = [
    "StepFunction",
    "FixedPointSearch",
    "batched_solve",
    "batched_eigvals",
    "single_threaded_lapack",
    "batched_jacobian",
    "residual_q",
    "find_fixed_points",
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
        raise ValueError(
            f"batched_solve needs a (M, N, N) and b (M, N), got {tuple(a.shape)} and {tuple(b.shape)}"
        )
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
    bar = tqdm(
        total=adam_iterations + newton_iterations,
        desc="fixed points",
        unit="it",
        disable=not progress,
        leave=False,
        file=sys.stderr,
    )
    try:
        adam_done = 0
        if adam_iterations > 0:
            x, adam_done = _adam_stage(
                step_fn,
                x,
                tol_q,
                adam_iterations,
                lr_init,
                lr_grow,
                lr_cut,
                nonnegative,
                history,
                bar,
            )
        newton_done = 0
        if newton_iterations > 0:
            x, newton_done = _newton_stage(
                step_fn, x, tol_q, newton_iterations, damping_init, history, bar
            )
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

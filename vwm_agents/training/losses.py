"""Training losses and evaluation metrics on masked outputs (see docs/model.md, section Losses).

Mask semantics for VWM recall: ``mask (B, T, 2K)`` is 1 on decode steps x present slots (both the
cos and the sin column of the slot); a slot is present in a trial iff its columns have any mask.
The target of a slot is its (cos, sin) pair ``gt``, constant over the decode steps. Outputs outside
the mask never enter a loss or a metric.

Per item k, with u0_k the target pair and u_t,k the readout pair at decode step t:

=========  ==================================================================================
``l2``     ||u0_k - mean_t u_t,k||^2 (time-mean of the un-normalised readout)
``sqrtl2`` 10 sqrt(||u0_k - mean_t u_t,k||)
``rad``    arccos(u0_k . mean_t normalize(u_t,k)): not re-normalised, so jitter over time costs
``exp``    -10 exp(-3 delta_k / pi), delta_k as for ``rad``
``norml2`` ||normalize(u0_k) - mean_t normalize(u_t,k)||
=========  ==================================================================================

The trial error is the mean over present items. The arccos argument is clamped to
[-1 + 1e-6, 1 - 1e-6] and the roots get a 1e-12 floor: both keep gradients finite (absent items
and perfect outputs would otherwise give 0 * inf = NaN) and change values by < 2e-3 rad / 1e-6.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)
from torch import Tensor

from vwm_agents.config import ERROR_DEFS  # the schema owns the names
from vwm_tasks.encoding import targets_to_angles, wrap_angle

_COS_LIMIT = 1.0 - 1e-6
_ROOT_FLOOR = 1e-12


def check_error_def(error_def: str) -> str:
    if error_def not in ERROR_DEFS:
        raise ValueError(f"error_def must be one of {ERROR_DEFS}, got {error_def!r}")
    return error_def


def masked_time_mean(outputs: Tensor, mask: Tensor) -> Tensor:
    """Mean over the masked steps, per trial and column: ``(B, T, n) -> (B, n)`` (0 if no step)."""
    total = (outputs * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp_min(1.0)


def _pairs(x: Tensor) -> Tensor:
    """``(..., 2K) -> (..., K, 2)`` (cos, sin) pairs."""
    return x.reshape(*x.shape[:-1], -1, 2)


def present_items(mask: Tensor) -> Tensor:
    """``(B, K)`` bool: slots whose columns are masked on at least one step."""
    return _pairs(mask).amax(dim=(1, 3)) > 0


def _mean_over_present(per_item: Tensor, present: Tensor) -> Tensor:
    per_item = torch.where(present, per_item, torch.zeros_like(per_item))
    return per_item.sum(dim=-1) / present.sum(dim=-1).clamp_min(1)


def _angular_distance(outputs: Tensor, target_pairs: Tensor, mask: Tensor) -> Tensor:
    """delta_k = arccos(u0_k . mean_t normalize(u_t,k)), ``(B, K)``."""
    unit_steps = F.normalize(_pairs(outputs), dim=-1).flatten(-2)
    mean_unit = _pairs(masked_time_mean(unit_steps, mask))
    cosine = (mean_unit * target_pairs).sum(dim=-1)
    return torch.acos(cosine.clamp(-_COS_LIMIT, _COS_LIMIT))


def _masked_window(outputs: Tensor, gt: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The steps from the first to the last with any mask (CPU; elsewhere all steps).

    Steps outside never enter a loss (mask 0), so cutting them changes no value or gradient
    and saves the per-step work on them (3/4 of the steps at the default timing). Finding the
    window reads the mask back to the host: free on the CPU, a sync on a GPU (skipped there,
    and while compiling).
    """
    if mask.device.type != "cpu" or mask.dim() != 3 or torch.compiler.is_compiling():
        return outputs, gt, mask
    steps = (mask != 0).any(dim=2).any(dim=0).nonzero()
    if len(steps) == 0:
        return outputs, gt, mask
    window = slice(int(steps[0]), int(steps[-1]) + 1)
    return outputs[:, window], gt[:, window], mask[:, window]


def vwm_trial_error(outputs: Tensor, gt: Tensor, mask: Tensor, error_def: str) -> Tensor:
    """Per-trial training error ``(B,)``: the mean over present items of ``error_def``."""
    check_error_def(error_def)
    outputs, gt, mask = _masked_window(outputs, gt, mask)
    target = _pairs(masked_time_mean(gt, mask))
    present = present_items(mask)
    if error_def in ("l2", "sqrtl2"):
        squared = (target - _pairs(masked_time_mean(outputs, mask))).square().sum(dim=-1)
        per_item = squared if error_def == "l2" else 10.0 * (squared + _ROOT_FLOOR).pow(0.25)
    elif error_def == "norml2":
        unit_steps = F.normalize(_pairs(outputs), dim=-1).flatten(-2)
        mean_unit = _pairs(masked_time_mean(unit_steps, mask))
        squared = (F.normalize(target, dim=-1) - mean_unit).square().sum(dim=-1)
        per_item = (squared + _ROOT_FLOOR).sqrt()
    else:
        delta = _angular_distance(outputs, target, mask)
        per_item = delta if error_def == "rad" else -10.0 * torch.exp(-3.0 * delta / torch.pi)
    return _mean_over_present(per_item, present)


def report_cost(outputs: Tensor, mask: Tensor) -> Tensor:
    """Per-trial cost of reporting ``(B,)``: the mean over present items of ||mean_t u_t,k||.

    The training option ``training.report_cost`` (weight c, 0: off) adds ``c`` times its batch
    mean to the loss: a price on every item the network commits to, in proportion to how
    strongly it reports it (a group-lasso penalty on each item's readout vector, the rate term of
    a rate-distortion trade-off; Sims et al., 2012). With the ``l2`` error and an internal
    estimate whose expected (cos, sin) is m, the expected loss ``||u - m||^2 + c ||u||`` is least
    at ``u = m max(0, 1 - c / (2 ||m||))``: an item held with ``||m|| <= c / 2`` is best not
    reported at all (u = 0, its decoded angle set by the readout's noise alone), the others are
    reported in their own direction, shortened by ``c / 2``. A poorly held item is dropped
    outright instead of kept as a shorter vector: the objective rewards committing to some items.
    """
    outputs, _, mask = _masked_window(outputs, mask, mask)
    length = (_pairs(masked_time_mean(outputs, mask)).square().sum(dim=-1) + _ROOT_FLOOR).sqrt()
    return _mean_over_present(length, present_items(mask))


class _NonnegativeMean(torch.autograd.Function):
    """mean(r) = mean |r| for r >= 0 over all but the ``leading`` dimensions; the gradient is
    the incoming one expanded to r's shape (stride 0: no copy)."""

    @staticmethod
    def forward(ctx, rates: Tensor, leading: int) -> Tensor:
        ctx.shape = rates.shape
        ctx.leading = leading
        return rates.flatten(leading).mean(dim=-1) if leading else rates.mean()

    @staticmethod
    def backward(ctx, grad: Tensor):
        count = 1
        for size in ctx.shape[ctx.leading :]:
            count *= size
        trailing = (1,) * (len(ctx.shape) - ctx.leading)
        return (grad / count).view(*grad.shape, *trailing).expand(ctx.shape), None


def activity_penalty(rates: Tensor, *, leading: int = 0, nonnegative: bool = False) -> Tensor:
    """mean |r| over all trials, steps and neurons (Hz): the L1 metabolic cost.

    ``leading``: keep that many leading dimensions (e.g. 1 for stacked models ``(S, B, T, N)``:
    one penalty per model, shape ``(S,)``). ``nonnegative``: the caller knows the rates are >= 0
    by construction (an agent's ``nonnegative_rates``, e.g. DaleRNN's: phi >= 0 and a convex
    Euler update); then |r| = r and the gradient is the constant 1/count everywhere (at r = 0 a
    valid subgradient of |r|, where autograd's sign gives 0), passed on without a pass over the
    rates.

    >>> import torch
    >>> from vwm_agents.training.losses import activity_penalty
    >>> activity_penalty(torch.tensor([[1.0, -2.0]]))
    tensor(1.5000)
    """
    if nonnegative:
        return _NonnegativeMean.apply(rates, leading)
    magnitude = rates.abs()
    return magnitude.flatten(leading).mean(dim=-1) if leading else magnitude.mean()


def decoded_angles(outputs: Tensor, mask: Tensor) -> Tensor:
    """Reported angle per slot ``(B, K)``: atan2 of the masked time-mean readout."""
    return targets_to_angles(masked_time_mean(outputs, mask))


def angular_errors(outputs: Tensor, gt: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Signed errors wrap(theta - theta_hat) ``(B, K)`` in [-pi, pi), and presence ``(B, K)``."""
    true_angles = targets_to_angles(masked_time_mean(gt, mask))
    return wrap_angle(true_angles - decoded_angles(outputs, mask)), present_items(mask)


def _summary(trial_error: Tensor, rates: Tensor | None) -> list[Tensor]:
    rate = rates.mean() if rates is not None else trial_error.new_tensor(float("nan"))
    return [trial_error.mean(), trial_error.std(correction=0), rate]


@torch.no_grad()
def vwm_metrics(
    outputs: Tensor,
    gt: Tensor,
    mask: Tensor,
    rates: Tensor | None = None,
    set_size: Tensor | np.ndarray | None = None,
) -> dict:
    """Mean absolute angular error (rad), its SD over trials and the mean rate (Hz).

    The per-trial error is the mean |wrap(theta - theta_hat)| over present items; ``error`` and
    ``error_std`` are its mean and SD (population, ddof 0) over trials. ``per_set_size`` maps
    ``str(n)`` to the same three numbers over the trials with ``set_size == n``. All values are
    Python floats, read back from the device in one transfer.
    """
    errors, present = angular_errors(outputs, gt, mask)
    trial_error = _mean_over_present(errors.abs(), present)
    trial_rate = rates.flatten(1).mean(dim=1) if rates is not None else None
    values = _summary(trial_error, trial_rate)
    sizes: list[int] = []
    if set_size is not None:
        set_size_np = np.asarray(set_size.cpu() if isinstance(set_size, Tensor) else set_size)
        sizes = [int(n) for n in np.unique(set_size_np)]
        groups = torch.as_tensor(set_size_np, device=outputs.device)
        for n in sizes:
            rows = groups == n
            group_rate = trial_rate[rows] if trial_rate is not None else None
            values += _summary(trial_error[rows], group_rate)
    numbers = torch.stack(values).tolist()
    keys = ("error", "error_std", "rate")
    result = dict(zip(keys, numbers[:3], strict=True))
    result["per_set_size"] = {
        str(n): dict(zip(keys, numbers[3 + 3 * i : 6 + 3 * i], strict=True))
        for i, n in enumerate(sizes)
    }
    return result


def classification_loss(logits: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """Cross-entropy of ``logits (B, T, C)`` against ``gt (B, T)`` int, averaged over mask == 1."""
    per_step = F.cross_entropy(logits.flatten(0, 1), gt.flatten(), reduction="none")
    weights = mask.flatten().to(per_step.dtype)
    return (per_step * weights).sum() / weights.sum().clamp_min(1.0)


@torch.no_grad()
def classification_metrics(logits: Tensor, gt: Tensor, mask: Tensor) -> dict:
    """Accuracy of argmax(logits) on the mask == 1 steps, and ``error`` = 1 - accuracy."""
    weights = mask.to(logits.dtype)
    correct = (logits.argmax(dim=-1) == gt).to(logits.dtype)
    accuracy = ((correct * weights).sum() / weights.sum().clamp_min(1.0)).item()
    return {"accuracy": accuracy, "error": 1.0 - accuracy}


def ensemble_vwm_loss(
    outputs: Tensor,
    rates: Tensor | None,
    gt: Tensor,
    mask: Tensor,
    *,
    error_def: str,
    lambda_err: float = 1.0,
    lambda_reg: float = 0.0,
    nonnegative: bool = False,
) -> Tensor:
    """Per-member VWM training loss ``(S,)``: lambda_err mean trial error + lambda_reg mean |r|.

    ``outputs (S, B, T, n_out)``, ``rates (S, B, T, N)`` or None, ``gt``/``mask`` shared
    ``(B, T, n_out)`` or per member ``(S, B, T, n_out)``; ``nonnegative`` as for
    :func:`activity_penalty`. Member s's entry equals the single-run loss of its outputs; sum
    the entries to backpropagate every member's own gradient at once.
    """
    n_members, batch_size = outputs.shape[:2]
    gt = gt.expand_as(outputs)
    mask = mask.expand_as(outputs)
    trial_error = vwm_trial_error(
        outputs.flatten(0, 1), gt.flatten(0, 1), mask.flatten(0, 1), error_def
    ).view(n_members, batch_size)
    loss = lambda_err * trial_error.mean(dim=1)
    if rates is not None and lambda_reg > 0:
        loss = loss + lambda_reg * activity_penalty(rates, leading=1, nonnegative=nonnegative)
    return loss

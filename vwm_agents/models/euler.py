"""The DaleRNN's Euler loop as one autograd node with a hand-written backward through time.

Same maths as :func:`simulate` (the plain autograd loop below, kept as the reference), same
noise draws in the same order, but:

* the forward runs without autograd, writing each step's results into preallocated
  time-major ``(T, *batch, N)`` buffers (one contiguous block per step), and keeps only
  what the backward needs: the noisy rates each GEMM read, d noisy / d rates, and
  dt/tau phi'(pre) per step;
* the backward is a loop of one recurrent GEMM, the readout's small product and four elementwise
  ops per step; the gradients of the recurrent, input and readout weights are each one large
  GEMM after the loop (over all steps and trials at once), instead of one small GEMM per step;
  the activity penalty's gradient may arrive as a constant (expanded from a scalar, see
  :func:`vwm_agents.training.losses.activity_penalty`) and is then added per step, never
  materialised;
* the readout is one GEMM over all steps after the loop.

Plain autograd needs ~20 small kernels per step forward and about as many backward, each with its
own allocation and autograd bookkeeping; at the default size (N = 128, B = 128) those cost more
than the matrix products. On float32 CPU tensors the per-step elementwise work (the noise draws
with their slopes, sigmoid + Euler update + phi's slope) runs in fused C loops
(:mod:`vwm_agents.models.native`), the noise's random numbers included
(:mod:`vwm_agents.models.philox`). The big saved buffers are reused across iterations only if the
allocator keeps freed memory (:func:`vwm_agents.training.accel.retain_freed_memory`). Timings:
docs/performance.md (``benchmarks/bench_train.py``).
``tests/agents/test_fast_paths.py`` checks outputs and gradients against the plain loop (float32
tolerance, and 1e-10 in float64) for every noise type, both nonlinearities, Dale's law on and
off, stacked models and ``readout_from``; ``tests/agents/test_native.py`` the fused loops against
the eager ops.

Gradients flow to the input drive, the recurrent and readout weights and the initial rates; the
leak (dt / tau) and the noise factor are constants (buffers). :func:`euler_loop` falls back to
the plain loop when one of them requires a gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from vwm_agents.models import native as native_kernels
from vwm_agents.models.noise import SlopeSampler

__all__ = ["Activation", "euler_loop", "simulate"]


@dataclass(frozen=True)
class Activation:
    """phi after its affine map: ``r_sat sigmoid(x)`` (r_sat > 0), else ``scale max(x, floor)^p``."""

    saturation: float
    power_floor: float = 1e-10
    power_scale: float = 0.18
    power_exponent: float = 1.7

    def __call__(self, pre: Tensor) -> Tensor:
        if self.saturation > 0:
            return self.saturation * torch.sigmoid(pre)
        return self.power_scale * pre.clamp_min(self.power_floor).pow(self.power_exponent)

    def rates_and_slope(
        self,
        pre: Tensor,
        rates: Tensor,
        leak: Tensor,
        out: Tensor,
        slope_out: Tensor | None,
        fused: native_kernels.NativeKernels | None = None,
    ) -> None:
        """``out = lerp(rates, phi(pre), leak)``; ``slope_out = leak phi'(pre)``; ``pre`` is
        overwritten. ``fused``: the native kernels (saturating phi only), which need ``leak``
        at the full size of ``pre``."""
        if fused is not None:
            fused.sigmoid_step(pre, rates, leak, self.saturation, out, slope_out)
            return
        if self.saturation > 0:
            target = pre.sigmoid_().mul_(self.saturation)
            if slope_out is not None:  # phi' = phi (1 - phi / r_sat)
                torch.addcmul(
                    target, target, target, value=-1.0 / self.saturation, out=slope_out
                ).mul_(leak)
        else:
            active = pre > self.power_floor  # clamp_min passes the gradient where x >= floor
            base = pre.clamp_min_(self.power_floor)
            target = base.pow(self.power_exponent).mul_(self.power_scale)
            if slope_out is not None:  # phi' = p phi / x
                torch.div(target, base, out=slope_out).mul_(leak).mul_(active.to(pre.dtype)).mul_(
                    self.power_exponent
                )
        torch.lerp(rates, target, leak, out=out)


def euler_loop(
    drive: Tensor,
    recurrent_weights: Tensor,
    leak: Tensor,
    activation: Activation,
    sample: SlopeSampler | None,
    initial_rates: Tensor,
    readout_weights: Tensor,
    readout_from: int = 0,
    *,
    native: bool = True,
) -> tuple[Tensor, Tensor]:
    """Run the Euler dynamics; return (noisy readout ``(*batch, T, n_out)``, rates ``(*batch, T, N)``).

    Args:
        drive: input pre-activations ``(T, *batch, N)`` (time-major), through phi's affine map.
        recurrent_weights: ``(N, N)`` or ``(S, N, N)`` (with ``*batch = (S, B)``), scaled by
            phi's gain: the pre-activation is ``drive_t + r_obs @ recurrent_weights.mT``.
        leak: dt / tau, broadcastable to ``(*batch, N)``; no gradient.
        activation: phi after its affine map.
        sample: the noise with its slope (:func:`vwm_agents.models.noise.slope_sampler`); None: none.
        initial_rates: ``(*batch, N)``.
        readout_weights: ``(n_out, N)`` or ``(S, n_out, N)``.
        readout_from: steps before it read out the clean rates and draw no readout noise.
        native: run the saturating update through the fused kernels of
            :mod:`vwm_agents.models.native` where they apply (float32 on the CPU); False: eager ops
            only. (The noise's kernels are chosen when its sampler is built.)

    Noise draws per step, as in ``simulate``: the recurrent observation of r_{t-1}, then (from
    ``readout_from`` on) the readout observation of r_t.
    """
    tensors = (drive, recurrent_weights, initial_rates, readout_weights)
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors):
        with torch.no_grad():
            outputs, rates, _ = _forward(
                drive,
                recurrent_weights,
                leak,
                activation,
                sample,
                initial_rates,
                readout_weights,
                readout_from,
                False,
                native,
            )
        outputs, rates = _batch_first(outputs), _batch_first(rates)
    elif leak.requires_grad:

        def observe(rates: Tensor) -> Tensor:
            return rates if sample is None else sample(rates, None, None)

        return simulate(
            drive,
            recurrent_weights,
            leak,
            activation,
            observe,
            initial_rates,
            readout_weights,
            readout_from,
        )
    else:
        outputs, rates = _EulerLoop.apply(
            drive,
            recurrent_weights,
            initial_rates,
            readout_weights,
            leak,
            activation,
            sample,
            readout_from,
            native,
        )
    return outputs, rates


def _matmul_add(weights: Tensor):
    # addmm/baddbmm fuse the add into the GEMM; chosen by static shape, not by data.
    return torch.addmm if weights.dim() == 2 else torch.baddbmm


def _readout(x: Tensor, readout_weights: Tensor) -> Tensor:
    """``x (T, *batch, N) @ F^T`` for F ``(n_out, N)`` or per model ``(S, n_out, N)``."""
    return torch.matmul(x, readout_weights.mT)


def _forward(
    drive,
    recurrent_weights,
    leak,
    activation,
    sample,
    initial_rates,
    readout_weights,
    readout_from,
    save,
    native=True,
):
    """The loop on time-major buffers; with ``save``, also the tensors the backward needs.

    Returns (outputs, rates) time-major ``(T, *batch, .)`` and the saved tensors.
    """
    n_steps = drive.shape[0]
    readout_from = max(0, min(int(readout_from), n_steps))
    weights_t = recurrent_weights.mT
    matmul_add = _matmul_add(weights_t)

    def buffer(steps: int) -> Tensor:
        # Time-major: each step's slice is one contiguous block (a strided (B, T, N) slice
        # touches B pages per step: measured ~30% slower forward).
        return drive.new_empty(steps, *drive.shape[1:])

    def steps_of(x: Tensor | None, steps: int) -> list:
        return [None] * steps if x is None else list(x.unbind(0))

    rates = buffer(n_steps)
    # Inputs of the recurrent GEMMs (needed for its weight gradient), their slopes, and
    # dt/tau phi'(pre); the readout's noisy samples (from readout_from on) and their slopes.
    observed = buffer(n_steps) if save else None
    slopes = buffer(n_steps) if save and sample is not None else None
    phi_slopes = buffer(n_steps) if save else None
    n_read = n_steps - readout_from
    read_observed = buffer(n_read) if sample is not None else None
    read_slopes = buffer(n_read) if save and sample is not None else None
    # unbind once: one view per step, instead of an indexing op per step and buffer.
    drive_t, rates_t = drive.unbind(0), rates.unbind(0)
    observed_t, slopes_t = steps_of(observed, n_steps), steps_of(slopes, n_steps)
    phi_slopes_t = steps_of(phi_slopes, n_steps)
    read_t = [None] * readout_from + steps_of(read_observed, n_read)
    read_slopes_t = [None] * readout_from + steps_of(read_slopes, n_read)
    pre = drive.new_empty(drive.shape[1:])
    fused = (
        native_kernels.use_kernels(pre, initial_rates)
        if native and activation.saturation > 0
        else None
    )
    # The kernels read dt/tau per element: broadcast once here, not per step.
    leak_step = leak if fused is None else leak.expand(pre.shape).contiguous()
    previous = initial_rates
    for step in range(n_steps):
        if sample is not None:
            obs = sample(previous, observed_t[step], slopes_t[step])
        else:
            obs = previous
            if observed is not None:
                observed_t[step].copy_(previous)
        matmul_add(drive_t[step], obs, weights_t, out=pre)
        current = rates_t[step]
        activation.rates_and_slope(pre, previous, leak_step, current, phi_slopes_t[step], fused)
        if read_t[step] is not None:
            sample(current, read_t[step], read_slopes_t[step])
        previous = current
    noisy = rates[readout_from:] if read_observed is None else read_observed
    outputs = torch.cat(
        [_readout(rates[:readout_from], readout_weights), _readout(noisy, readout_weights)]
    )
    saved = (observed, slopes, phi_slopes, read_observed, read_slopes, readout_from)
    return outputs, rates, saved


def _batch_first(x: Tensor) -> Tensor:
    """``(T, *batch, n) -> (*batch, T, n)``, contiguous."""
    return x.movedim(0, -2).contiguous()


def _read_span(grad_outputs: Tensor | None, n_steps: int) -> tuple[int, int]:
    """The steps ``[first, last + 1)`` whose readout gets a nonzero gradient.

    A loss reads the decode steps only (1/4 at the default timing): outside them the readout's
    backward products would add zeros. Finding the span reads back to the host, so only on the
    CPU (where it is free); elsewhere every step.
    """
    if grad_outputs is None:
        return 0, 0
    if grad_outputs.device.type != "cpu":
        return 0, n_steps
    steps = (grad_outputs != 0).movedim(-2, 0).flatten(1).any(dim=1).nonzero()
    if len(steps) == 0:
        return 0, 0
    return int(steps[0]), int(steps[-1]) + 1


def _sum_outer(left: Tensor, right: Tensor, per_model: bool) -> Tensor:
    """sum over steps and trials of left^T right for time-major ``(T, *batch, a)`` and
    ``(T, *batch, b)``: ``(a, b)``, or per model ``(S, a, b)`` for ``*batch = (S, B)``."""
    if per_model:
        return torch.einsum("tsba,tsbc->sac", left, right)
    return left.flatten(0, -2).mT @ right.flatten(0, -2)


class _EulerLoop(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        drive,
        recurrent_weights,
        initial_rates,
        readout_weights,
        leak,
        activation,
        sample,
        readout_from,
        native,
    ):
        outputs, rates, saved = _forward(
            drive,
            recurrent_weights,
            leak,
            activation,
            sample,
            initial_rates,
            readout_weights,
            readout_from,
            True,
            native,
        )
        observed, slopes, phi_slopes, read_observed, read_slopes, readout_from = saved
        ctx.readout_from = readout_from
        ctx.has_noise = sample is not None
        to_save = [recurrent_weights, readout_weights, leak, rates, observed, phi_slopes]
        if sample is not None:
            to_save += [slopes, read_observed, read_slopes]
        ctx.save_for_backward(*to_save)
        return _batch_first(outputs), _batch_first(rates)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_outputs, grad_rates):
        recurrent_weights, readout_weights, leak, rates, observed, phi_slopes, *noise = (
            ctx.saved_tensors
        )
        slopes, read_observed, read_slopes = noise if ctx.has_noise else (None, None, None)
        readout_from = ctx.readout_from
        per_model = recurrent_weights.dim() == 3
        n_steps = rates.shape[0]
        needs = ctx.needs_input_grad

        def steps_of(x: Tensor | None, dim: int = 0) -> list:
            return [None] * n_steps if x is None else list(x.unbind(dim))

        # The direct gradients on r_t (from the rates output and through the readout) are added
        # step by step: summing them over (T, B, N) first would cost extra passes over memory.
        # The activity penalty's gradient may arrive expanded from a scalar (stride 0).
        grad_rates_t = steps_of(grad_rates, -2)
        grad_outputs_t = steps_of(grad_outputs, -2)
        read_slopes_t = [None] * readout_from + (
            [None] * (n_steps - readout_from) if read_slopes is None else list(read_slopes)
        )
        keep = 1.0 - leak
        grad_pre = torch.empty_like(rates)  # = the gradient of the drive (time-major)
        grad_pre_t, phi_slopes_t, slopes_t = (
            grad_pre.unbind(0),
            phi_slopes.unbind(0),
            steps_of(slopes),
        )
        carry = rates.new_zeros(rates.shape[1:])  # dL/dr_t
        back = torch.empty_like(carry)
        readout_add = carry.baddbmm_ if per_model else carry.addmm_
        read_from, read_to = _read_span(grad_outputs, n_steps)
        if grad_rates is not None:
            carry.add_(grad_rates_t[-1])
        for step in range(n_steps - 1, -1, -1):
            if read_from <= step < read_to:
                if read_slopes_t[step] is None:
                    readout_add(grad_outputs_t[step], readout_weights)
                else:
                    torch.matmul(grad_outputs_t[step], readout_weights, out=back)
                    carry.addcmul_(back, read_slopes_t[step])
            dpre = torch.mul(carry, phi_slopes_t[step], out=grad_pre_t[step])
            if step == 0 and not needs[2]:
                break
            torch.matmul(dpre, recurrent_weights, out=back)
            # dL/dr_{t-1} = direct gradient on r_{t-1} + (1 - leak) dL/dr_t + slope * back
            if grad_rates is not None and step > 0:
                torch.addcmul(grad_rates_t[step - 1], carry, keep, out=carry)
            else:
                carry.mul_(keep)
            if slopes is None:
                carry.add_(back)
            else:
                carry.addcmul_(back, slopes_t[step])
        grad_readout = None
        if needs[3] and grad_outputs is not None:
            grad_outputs_tm = grad_outputs.movedim(-2, 0)
            read = rates[readout_from:] if read_observed is None else read_observed
            noisy_from, clean_to = max(read_from, readout_from), min(read_to, readout_from)
            noisy_to = max(read_to, noisy_from)
            grad_readout = _sum_outer(
                grad_outputs_tm[noisy_from:noisy_to],
                read[noisy_from - readout_from : noisy_to - readout_from],
                per_model,
            )
            if read_from < clean_to:
                grad_readout += _sum_outer(
                    grad_outputs_tm[read_from:clean_to], rates[read_from:clean_to], per_model
                )
        grad_weights = _sum_outer(grad_pre, observed, per_model) if needs[1] else None
        return (
            grad_pre if needs[0] else None,
            grad_weights,
            carry if needs[2] else None,
            grad_readout,
            None,
            None,
            None,
            None,
            None,
        )


def simulate(
    drive: Tensor,
    recurrent_weights: Tensor,
    leak: Tensor,
    nonlinearity: Callable[[Tensor], Tensor],
    observe: Callable[[Tensor], Tensor],
    initial_rates: Tensor,
    readout_weights: Tensor,
    readout_from: int = 0,
) -> tuple[Tensor, Tensor]:
    """Run the Euler dynamics through plain autograd; return (noisy readout ``(*batch, T, n_out)``,
    rates ``(*batch, T, N)``). The reference for :func:`euler_loop`.

    Args:
        drive: input pre-activations ``(T, *batch, N)``, already through phi's affine map.
        recurrent_weights: ``(N, N)`` or ``(S, N, N)``, already scaled by phi's gain;
            ``drive_t + r_obs @ recurrent_weights.mT`` is the pre-activation.
        leak: dt / tau, broadcastable to the state ``(*batch, N)``.
        nonlinearity: phi after its affine map.
        observe: noisy observation of the rates (identity for no noise).
        initial_rates: ``(*batch, N)``.
        readout_weights: F, ``(n_out, N)`` or ``(S, n_out, N)``.
        readout_from: steps before it are read out from the clean rates, without a noise draw
            (for training: no loss sees them, and the draws are 3/4 of the readout's noise cost
            at the default timing). 0: every step reads a noisy sample.

    The readout of step t reads its own noisy sample of r_t inside the loop: drawing it there
    keeps each draw cache-sized (one draw over the whole (B, T, N) tensor afterwards costs ~2x).
    """
    weights_t = recurrent_weights.mT
    readout_t = readout_weights.mT
    # addmm/baddbmm fuse the add into the GEMM; chosen by static shape, not by data.
    matmul_add = torch.addmm if weights_t.dim() == 2 else torch.baddbmm
    rates = initial_rates
    states, outputs = [], []
    for step, drive_t in enumerate(drive.unbind(0)):
        target = nonlinearity(matmul_add(drive_t, observe(rates), weights_t))
        rates = torch.lerp(rates, target, leak)
        states.append(rates)
        outputs.append(torch.matmul(observe(rates) if step >= readout_from else rates, readout_t))
    return torch.stack(outputs, dim=-2), torch.stack(states, dim=-2)

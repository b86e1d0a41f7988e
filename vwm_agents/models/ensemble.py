"""Several independently initialised models trained side by side in one stacked forward pass.

Each member keeps its own parameters (and, in the trainer, its own optimiser, scheduler, early
stopping, gradient clipping and run directory). Only the forward and backward passes are shared:
every iteration the members' weights are stacked with ``torch.stack`` into ``(S, ...)`` tensors,
so the S Euler loops become one loop of batched GEMMs (``baddbmm``) and one set of elementwise
kernels per step. Gradients flow back through the stack to each member's own parameters, and the
loss of the ensemble is the *sum* of the members' losses, so each member receives exactly the
gradient of its own loss.

Why a member does not train *bit for bit* like a single run of the same seed: the data, the noise
draws (one ``torch.Generator`` per member, see :func:`vwm_agents.models.noise.noise_fn`) and every
elementwise operation are the same, but the GEMMs are not the same kernels (``baddbmm`` over S
matrices vs ``addmm``; the input projection as one broadcast ``matmul``), and BLAS may block and
order the sums of a batched GEMM differently, so results agree to float32 rounding (relative
~1e-6 per iteration), which Adam then carries along. ``tests/agents/test_ensemble.py`` checks a member
against a single run after several iterations within float32 tolerance.

The per-member generators cost one random fill per member and draw (S small kernels on a GPU,
which a CUDA graph launches at once). With ``readout_from`` the stack uses one value for all
members (the trainer takes the earliest decode start; equal for every member under the task's
fixed timing, so member equivalence holds there).

Only :class:`~vwm_agents.models.DaleRNN` members are stacked; any other agent falls back to a loop
over the members (same results, no speed-up).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vwm_agents.models.dale_rnn import DaleRNN
from vwm_agents.models.euler import euler_loop
from vwm_agents.models.noise import slope_sampler

__all__ = ["stackable", "ensemble_forward", "check_members"]

# Constructor settings that must agree between stacked DaleRNN members (the rest is per member).
_SHARED_SETTINGS = (
    "n_inputs",
    "n_outputs",
    "n_neurons",
    "dt",
    "saturation_firing_rate",
    "spike_noise_type",
    "random_numbers",
)


def stackable(models: Sequence[nn.Module]) -> bool:
    """Whether the members can share one stacked Euler loop (all DaleRNN with equal settings)."""
    if not models or not all(type(model) is DaleRNN for model in models):
        return False
    if any(
        model.readout_spikes is not None or model.item_synapse_noise is not None for model in models
    ):  # drawn outside the stacked loop
        return False
    first = models[0]
    return all(
        getattr(model, name) == getattr(first, name)
        for model in models[1:]
        for name in _SHARED_SETTINGS
    )


def check_members(models: Sequence[nn.Module]) -> None:
    """Raise ValueError unless ``models`` is a non-empty sequence of same-class modules."""
    if not models:
        raise ValueError("models: need at least one member, got none")
    kinds = {type(model).__name__ for model in models}
    if len(kinds) != 1:
        raise ValueError(f"models: all members must be the same class, got {sorted(kinds)}")


def _member_inputs(ob: Tensor, n_members: int) -> Tensor:
    """``(B, T, n_in)`` shared by all members or ``(S, B, T, n_in)`` one batch per member."""
    if ob.dim() == 3:
        return ob.expand(n_members, *ob.shape)
    if ob.dim() != 4 or ob.shape[0] != n_members:
        raise ValueError(
            f"ob: expected (B, T, n_in) or ({n_members}, B, T, n_in), got {tuple(ob.shape)}"
        )
    return ob


def ensemble_forward(
    models: Sequence[nn.Module],
    ob: Tensor,
    *,
    noise: bool = True,
    generators: Sequence[torch.Generator] | None = None,
    readout_from: int = 0,
) -> tuple[Tensor, Tensor | None]:
    """Forward S members; return (outputs ``(S, B, T, n_out)``, rates ``(S, B, T, N)`` or None).

    Args:
        models: the members (their parameters are stacked, not copied: gradients reach them).
        ob: ``(B, T, n_in)`` shared by all members, or ``(S, B, T, n_in)`` one batch per member.
        noise: spiking noise on (DaleRNN members).
        generators: one ``torch.Generator`` per member for its noise draws (None: the global
            generator). With the same generator state, member s draws exactly the noise that
            ``models[s](ob[s], generator=generators[s])`` draws.
        readout_from: as for :meth:`DaleRNN.forward` (DaleRNN members only).
    """
    check_members(models)
    n_members = len(models)
    if generators is not None and len(generators) != n_members:
        raise ValueError(f"generators: need one per member ({n_members}), got {len(generators)}")
    ob = _member_inputs(ob, n_members)
    if stackable(models):
        return _stacked_dale_forward(
            models, ob, noise=noise, generators=generators, readout_from=readout_from
        )
    return _looped_forward(
        models, ob, noise=noise, generators=generators, readout_from=readout_from
    )


def _stacked_dale_forward(
    models: Sequence[DaleRNN],
    ob: Tensor,
    *,
    noise: bool,
    generators: Sequence[torch.Generator] | None,
    readout_from: int,
) -> tuple[Tensor, Tensor]:
    first = models[0]
    n_members, batch_size = ob.shape[:2]
    gain, offset = first.activation_affine()
    recurrent = torch.stack([model.W_eff for model in models]) * gain  # (S, N, N)
    input_weights = torch.stack([model.input_weights for model in models])  # (S, N, n_in)
    readout_weights = torch.stack([model.readout_weights for model in models])  # (S, n_out, N)
    leak = torch.stack([model.leak for model in models]).unsqueeze(1)  # (S, 1, N)
    factor = torch.stack([model.spike_noise_factor for model in models]).view(n_members, 1, 1)
    sample = slope_sampler(
        first.spike_noise_type if noise else "none",
        factor,
        first.dt,
        generators,
        first.random_numbers,
    )
    # Time-major (T, S, B, N): the loop reads one contiguous (S, B, N) block per step.
    drive = torch.matmul(ob.permute(2, 0, 1, 3), input_weights.mT * gain).add_(offset)
    initial_rates = ob.new_zeros(n_members, batch_size, first.n_neurons)
    return euler_loop(
        drive,
        recurrent,
        leak,
        first.activation,
        sample,
        initial_rates,
        readout_weights,
        readout_from,
    )


def _looped_forward(
    models: Sequence[nn.Module],
    ob: Tensor,
    *,
    noise: bool,
    generators: Sequence[torch.Generator] | None,
    readout_from: int,
) -> tuple[Tensor, Tensor | None]:
    outputs, rates = [], []
    for index, model in enumerate(models):
        kwargs = {}
        if isinstance(model, DaleRNN):
            kwargs = {
                "noise": noise,
                "readout_from": readout_from,
                "generator": None if generators is None else generators[index],
            }
        out = model(ob[index], **kwargs)
        out, state = out if isinstance(out, tuple) else (out, None)
        outputs.append(out)
        rates.append(state)
    stacked_rates = None if any(r is None for r in rates) else torch.stack(rates)
    return torch.stack(outputs), stacked_rates

"""Random numbers of the spiking noise on the CPU: Philox-4x32-10, keyed from a torch.Generator.

On the CPU, PyTorch draws every number from a Mersenne twister one element at a time, and the
random numbers of the gamma noise (a normal and a uniform per neuron, trial and step) are a
large share of a training iteration (docs/performance.md). Philox-4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as easy as
1, 2, 3"; the generator of cuRAND, JAX and NumPy's ``Philox``) is counter-based: block j of a
draw is a fixed function of (j, key), so a whole draw is one vectorisable loop.

A draw takes one 64-bit key from the torch.Generator (so seeding, ``get_state``/``set_state``,
exact resume and one generator per stacked model work as with PyTorch's own draws: each draw
advances the generator by one number), then:

* block j = philox(counter = (j, 0, 0, 0), key) = four 32-bit words w_0..w_3;
* element ``j + m q`` (m = 0..3, q = ceil(n / 4)) of n uniforms is ``(w_m >> 8) 2^-24``
  (24 bits: exactly representable, in [0, 1));
* normals by Box-Muller: words (w_0, w_1) give elements j and j + q, (w_2, w_3) give j + 2q and
  j + 3q, with u1 = ((w_a >> 8) + 1) 2^-24 in (0, 1], u2 = (w_b >> 8) 2^-24 and
  z = sqrt(-2 log u1) (cos 2 pi u2, sin 2 pi u2). |z| <= 5.77 (PyTorch's CPU normals, also
  Box-Muller on 24-bit uniforms, have the same bound).

The fused kernels (:mod:`vwm_agents.models.native`) compute this in C; the functions here compute the
same words with PyTorch integer ops (bit-identical: ``tests/agents/test_philox.py`` checks them
against each other and against the published test vectors) and the same transforms with eager
float ops (equal to float32 rounding). The noise samplers (:mod:`vwm_agents.models.noise`) use
Philox where their ``random_numbers`` say so (``auto``: on the CPU where the kernels exist):
float32 draws in C, float64 draws (tests), draws on other devices and draws on a machine without
the kernels through the integer ops, which give the same numbers more slowly (docs/performance.md;
one warning says so).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from vwm_agents.models import native

__all__ = ["draw_key", "normal", "philox4x32", "philox_words", "uniform"]

_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_KEY_STEPS = (0x9E3779B9, 0xBB67AE85)
_ROUNDS = 10
_LOW32 = 0xFFFFFFFF
PORTABLE_WARNING = (
    "Philox random numbers without the C kernels: computed with PyTorch integer ops, the same "
    "numbers as the kernels' but slower (docs/performance.md); training.random_numbers: torch "
    "draws PyTorch's own (other numbers) at full speed"
)


def draw_key(generator: torch.Generator | None) -> int:
    """One 64-bit key (an int in [0, 2^63)) from ``generator`` (None: the global one)."""
    return int(torch.empty(1, dtype=torch.int64).random_(generator=generator))


def philox_words(n_blocks: int, key: int, device: torch.device | str = "cpu") -> Tensor:
    """The four 32-bit words of blocks 0..n_blocks-1 of a draw, ``(n_blocks, 4)`` int64."""
    counter = torch.arange(n_blocks, dtype=torch.int64, device=device)
    zeros = torch.zeros_like(counter)
    return philox4x32((counter & _LOW32, counter >> 32, zeros, zeros), key)


def philox4x32(counter: tuple[Tensor, Tensor, Tensor, Tensor], key: int) -> Tensor:
    """Philox-4x32-10 of 32-bit counter words (int64 tensors) and a 64-bit key: ``(..., 4)``."""
    c0, c1, c2, c3 = counter
    k0, k1 = key & _LOW32, key >> 32
    for _ in range(_ROUNDS):
        # 32 x 32 -> 64-bit products; int64 wraps past 2^63, which keeps the low 64 bits.
        p0, p1 = c0 * _MULTIPLIERS[0], c2 * _MULTIPLIERS[1]
        c0, c1, c2, c3 = (
            ((p1 >> 32) & _LOW32) ^ c1 ^ k0,
            p1 & _LOW32,
            ((p0 >> 32) & _LOW32) ^ c3 ^ k1,
            p0 & _LOW32,
        )
        k0, k1 = (k0 + _KEY_STEPS[0]) & _LOW32, (k1 + _KEY_STEPS[1]) & _LOW32
    return torch.stack((c0, c1, c2, c3), dim=-1)


def _unit(words: Tensor, dtype: torch.dtype) -> Tensor:
    return (words >> 8).to(dtype) * 2.0**-24


def _spread(columns: Tensor, n: int) -> Tensor:
    """``(q, 4)`` values -> element ``j + m q`` is row j, column m; the first n."""
    return columns.mT.reshape(-1)[:n]


def _eager_uniform(
    n: int, key: int, dtype: torch.dtype, device: torch.device | str = "cpu"
) -> Tensor:
    return _spread(_unit(philox_words((n + 3) // 4, key, device), dtype), n)


def _eager_normal(
    n: int, key: int, dtype: torch.dtype, device: torch.device | str = "cpu"
) -> Tensor:
    words = philox_words((n + 3) // 4, key, device)
    u1 = _unit(words[:, 0::2], dtype).add_(2.0**-24)  # (w >> 8) + 1, times 2^-24
    radius = u1.log_().mul_(-2.0).sqrt_()
    angle = _unit(words[:, 1::2], dtype).mul_(2.0 * math.pi)
    pairs = torch.stack((radius * angle.cos(), radius * angle.sin()), dim=-1)  # (q, 2, 2)
    return _spread(pairs.flatten(1), n)


def _fill(
    like: Tensor,
    generator: torch.Generator | None,
    eager: Callable[[int, int, torch.dtype, torch.device], Tensor],
    fused: Callable[[native.NativeKernels, int, Tensor], None],
    use_kernels: bool,
) -> Tensor:
    out = torch.empty(like.shape, dtype=like.dtype, device=like.device)
    key = draw_key(generator)
    # Serial, but at any size and thread count far faster than the eager integer ops.
    fits_kernels = use_kernels and like.dtype == torch.float32 and like.device.type == "cpu"
    kernels = native.kernels() if fits_kernels else None
    if kernels is not None:
        fused(kernels, key, out)
        return out
    if fits_kernels:  # shown once per process (the default warnings filter)
        warnings.warn(PORTABLE_WARNING, RuntimeWarning, stacklevel=2)
    out.view(-1).copy_(eager(out.numel(), key, like.dtype, like.device))
    return out


def normal(
    like: Tensor, generator: torch.Generator | None = None, *, native_kernels: bool = True
) -> Tensor:
    """Standard normals shaped like ``like`` (a CPU tensor), one Philox draw from ``generator``."""
    return _fill(like, generator, _eager_normal, native.NativeKernels.philox_normal, native_kernels)


def uniform(
    like: Tensor, generator: torch.Generator | None = None, *, native_kernels: bool = True
) -> Tensor:
    """Uniforms in [0, 1) shaped like ``like`` (a CPU tensor), one Philox draw."""
    return _fill(
        like, generator, _eager_uniform, native.NativeKernels.philox_uniform, native_kernels
    )

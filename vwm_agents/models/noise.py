"""Spiking noise on firing rates: the noisy "observed" rates that synapses and the readout see.

A rate r (Hz) observed over one time step dt stands for the spike count of a small population;
the noise types (see docs/model.md, section Noise) are, with k the noise factor and
dt_s = dt / 1000:

==============  ===========================================  =================================
type            observed rate                                mean / variance
==============  ===========================================  =================================
``gamma``       Gamma(shape r dt_s / k^2, rate dt_s / k^2)    r / r k^2 / dt_s
``gauss``       ReLU(r + k sqrt(r 1000 / dt + 1e-10) xi)      variance as gamma before the ReLU
``puregauss``   ReLU(r + 15 k xi)                             SD 15 k Hz, whatever the rate
``csnr``        r Gamma(kappa, 1) / kappa, kappa = 5 dt_s/k^2  r / r^2 k^2 / (5 Hz dt_s)
``none``        r                                             r / 0
==============  ===========================================  =================================

k = 0 gives the rates back unchanged for every type. All draws come from the optional
``torch.Generator``, through one of two sources of random numbers (``random_numbers``):

* ``"philox"``: each draw takes one 64-bit key from the generator and computes its numbers with
  the counter-based Philox generator (:mod:`vwm_agents.models.philox`): in C where the fused
  kernels of :mod:`vwm_agents.models.native` exist, else with PyTorch integer ops (the same bits,
  slower; one warning says so);
* ``"torch"``: PyTorch's generator draws them (the same distributions, other numbers);
* ``"auto"``: Philox on the CPU where the kernels exist, PyTorch's generator elsewhere (no C
  compiler, ``VWM_RNN_NATIVE=0``, GPUs). A training resolves ``auto`` once
  (:func:`resolve_random_numbers`) and records the result in its config, so a run draws one
  stream whatever the machine it is resumed on.

Nothing reads values back to the host, so a sampler can run inside a CUDA graph. Everything is
differentiable with respect to the rates.

The gamma sampler
-----------------
``torch.distributions.Gamma(...).rsample()`` costs about 7-12 Gaussian draws on the CPU, forward
and backward. We use a pathwise transform of one Gaussian and one uniform draw instead, as a
single autograd node (:class:`_GammaNoise`) that computes dX/dr during the forward:

* Boosting (exact): Gamma(a) = Gamma(a + 1) U^(1/a) for U ~ U(0, 1) independent; U^(1/a) is
  computed as exp(log(U) / a). Applied at every shape, so the approximation below only
  ever sees shapes a + 1 >= 1, and the quiet neurons (small shapes: r < 9 Hz at k = 0.3, dt = 10
  ms) keep their exact point mass near 0 and long tail.
* Wilson-Hilferty for Gamma(a + 1): (a + 1) (1 - 1/(9(a+1)) + z / (3 sqrt(a+1)))^3, z ~ N(0, 1),
  with the cube's base clamped at 0. Before the clamp its mean is (a + 1)(1 - 1/(729 (a+1)^3)).
  Computed exactly (quadrature, clamp included), the relative errors of Gamma(a + 1) are
  -0.14 % (mean) and -0.40 % (variance) at a + 1 = 1, -0.02 % and -0.10 % at 2, and below
  0.002 % and 0.02 % from 5 on; the boosted Gamma(a) inherits them (at most 0.16 % and 0.4 %).
  ``tests/agents/test_noise.py`` checks mean and variance against the exact Gamma over r = 0.01 ... 60 Hz
  and k = 0.05 ... 0.3.

On float32 CPU tensors the draw with its slope runs as one fused loop
(:mod:`vwm_agents.models.native`), as does the Gaussian noise (timings: docs/performance.md;
``benchmarks/bench_noise.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vwm_agents.models import native, philox
from vwm_agents.models.native import NativeKernels

NOISE_TYPES: tuple[str, ...] = ("gamma", "gauss", "puregauss", "csnr", "none")
# The sources of the noise's random numbers (see the module docstring).
RANDOM_NUMBERS: tuple[str, ...] = ("auto", "philox", "torch")

Factor = float | Tensor
NoiseFn = Callable[[Tensor], Tensor]
# One generator, or one per stacked model (leading dimension of the rates), or the global one.
Generators = torch.Generator | Sequence[torch.Generator] | None

# Rate of the constant-SNR noise (Hz): its coefficient of variation is that of gamma noise at 5 Hz.
CSNR_REFERENCE_RATE = 5.0
# SD of the rate-independent Gaussian noise per unit of k (Hz).
PUREGAUSS_SD = 15.0
# The gamma draw's boost U^(1/a) = exp(log(U) / a) is floored at exp(-60) ~ 1e-26: for quiet
# neurons log(U) / a reaches -1e5, and exp of such arguments and products with the subnormal
# floats it returns cost ~10x the normal speed on x86 CPUs (measured: a gamma draw at realistic
# rates 450 vs 200 us). Draws below ~1e-26 Hz are lifted to about there: no statistic changes.
_MIN_LOG_BOOST = -60.0
# Rates (Hz) are floored here before 1/r, which keeps values and gradients finite at r = 0 (the
# reference floors the shape at 1e-10); below it the gamma draw is 0 in float32 anyway.
_MIN_RATE = 1e-10


def check_noise_type(noise_type: str) -> str:
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"spike_noise_type must be one of {NOISE_TYPES}, got {noise_type!r}")
    return noise_type


def check_random_numbers(random_numbers: str) -> str:
    if random_numbers not in RANDOM_NUMBERS:
        raise ValueError(f"random_numbers must be one of {RANDOM_NUMBERS}, got {random_numbers!r}")
    return random_numbers


def resolve_random_numbers(random_numbers: str, device: torch.device | str) -> str:
    """The source (``"philox"`` or ``"torch"``) that ``random_numbers`` means on ``device``:
    ``auto`` is Philox on the CPU where the C kernels exist, PyTorch's generator elsewhere."""
    if check_random_numbers(random_numbers) != "auto":
        return random_numbers
    on_cpu = torch.device(device).type == "cpu"
    return "philox" if on_cpu and native.kernels() is not None else "torch"


@dataclass(frozen=True)
class RandomStream:
    """Where a sampler's random numbers come from: the generator(s) and the source."""

    generator: Generators
    source: str = "auto"

    def normal(self, like: Tensor) -> Tensor:
        return self._draw(like, philox.normal, torch.randn, Tensor.normal_)

    def uniform(self, like: Tensor) -> Tensor:
        return self._draw(like, philox.uniform, torch.rand, Tensor.uniform_)

    def _draw(self, like: Tensor, philox_draw, device_draw, device_fill) -> Tensor:
        """Numbers shaped like ``like``: one Philox draw per generator
        (:mod:`vwm_agents.models.philox`), or PyTorch's generator (see the module docstring)."""
        source = self.source
        if source == "auto":
            source = resolve_random_numbers(source, like.device)
        generator = self.generator
        if generator is None or isinstance(generator, torch.Generator):
            if source == "philox":
                return philox_draw(like, generator)
            return device_draw(
                like.shape, generator=generator, dtype=like.dtype, device=like.device
            )
        if source == "philox":

            def fill(part: Tensor, generator: torch.Generator) -> None:
                part.copy_(philox_draw(part, generator))
        else:
            fill = device_fill
        return _per_member(like, generator, fill)


def _stream(generator: Generators | RandomStream) -> RandomStream:
    return generator if isinstance(generator, RandomStream) else RandomStream(generator)


def _randn(like: Tensor, stream: RandomStream) -> Tensor:
    return stream.normal(like)


def _rand(like: Tensor, stream: RandomStream) -> Tensor:
    return stream.uniform(like)


def _per_member(like: Tensor, generators: Sequence[torch.Generator], fill) -> Tensor:
    """Draws for stacked models: slice s along the leading dimension comes from generators[s].

    Slice s holds exactly the numbers a draw of that slice's shape from generators[s] gives,
    so member s of a stacked ensemble sees the noise of a single run with its generator.
    """
    if like.dim() == 0 or like.shape[0] != len(generators):
        raise ValueError(
            f"generator: a sequence of {len(generators)} generators needs rates with that many "
            f"members along dim 0, got shape {tuple(like.shape)}"
        )
    out = torch.empty(like.shape, dtype=like.dtype, device=like.device)
    for part, generator in zip(out.unbind(0), generators, strict=True):
        fill(part, generator=generator)
    return out


def unit_gamma(
    inv_sqrt_shape: Factor, like: Tensor, generator: Generators | RandomStream = None
) -> Tensor:
    """Gamma(a, rate=a) draws (mean 1, variance 1/a) shaped like ``like``, for c = 1/sqrt(a) >= 0.

    ``inv_sqrt_shape`` is a float or a tensor broadcastable to ``like``; c = 0 gives exactly 1.
    The draws carry no gradient (they are constants for ``rates * unit_gamma(...)``).
    ``generator``: as in :func:`noise_fn`, or a :class:`RandomStream`.
    """
    generator = _stream(generator)
    with torch.no_grad():
        inv_shape = inv_sqrt_shape * inv_sqrt_shape
        inv_shape_next = inv_shape / (1.0 + inv_shape)  # 1 / (a + 1)
        wilson_hilferty = _randn(like, generator).mul_(inv_shape_next**0.5 / 3.0)
        wilson_hilferty.add_(1.0 - inv_shape_next / 9.0).clamp_min_(0.0).pow_(3)
        boost = _log_uniform(like, generator).mul_(inv_shape).exp_()  # U^(1/a)
        return wilson_hilferty.mul_(boost).mul_(1.0 + inv_shape)


def _log_uniform(like: Tensor, generator: Generators) -> Tensor:
    """log U, U ~ U(0, 1) floored at 1e-30 so that log(U) U^(1/a) never becomes -inf * 0."""
    # (Tensor.exponential_ would give -log U directly but costs ~15 Gaussian draws on the CPU.)
    return _rand(like, generator).clamp_min_(1e-30).log_()


def _gamma_sample(
    rates: Tensor,
    factor: Factor,
    dt_s: float,
    generator: Generators,
    out: Tensor | None = None,
    slope_out: Tensor | None = None,
    variance_per_rate: Factor | None = None,
) -> Tensor:
    """Gamma noise X of ``rates`` (into ``out``) and, if ``slope_out`` is given, dX/dr into it.

    With K = k^2 / dt_s, s = r + K = r (1 + 1/a), c1^2 = 1/(a + 1) = K / s, z ~ N(0, 1),
    U ~ U(0, 1):
        base = 1 - c1^2 / 9 + c1 z / 3 (clamped at 0),
        boost = U^(1/a) = exp(max(K log(U) / r, -60)),
        X = s base^3 boost,
        dX/dr = boost base^2 (base + c1^2 / 3 - c1 z / 2) - X (K log(U) / r) / r.
    """
    if variance_per_rate is None:
        variance_per_rate = factor * factor / dt_s  # K (Hz)
    inv_rate = rates.clamp_min(_MIN_RATE).reciprocal_()  # 1 / r, multiplied twice below
    total = rates + variance_per_rate  # s = r + K
    inv_shape_next = torch.div(variance_per_rate, total.clamp_min(_MIN_RATE))  # c1^2 = K / s
    noise_term = _randn(rates, generator).mul_(inv_shape_next.sqrt())  # c1 z
    base = torch.add(rates.new_ones(()), inv_shape_next, alpha=-1.0 / 9.0)
    base.add_(noise_term, alpha=1.0 / 3.0).clamp_min_(0.0)
    exponent = _log_uniform(rates, generator).mul_(variance_per_rate).mul_(inv_rate)
    exponent.clamp_min_(_MIN_LOG_BOOST)
    boosted_sq = exponent.exp().mul_(base.square())  # boost base^2
    noisy = torch.mul(boosted_sq, base, out=out) if out is not None else boosted_sq * base
    noisy.mul_(total)
    if slope_out is not None:
        slope = torch.add(base, inv_shape_next, alpha=1.0 / 3.0).sub_(noise_term, alpha=0.5)
        torch.mul(slope, boosted_sq, out=slope_out)
        slope_out.addcmul_(noisy, exponent.mul_(inv_rate), value=-1.0)
    return noisy


class _GammaNoise(torch.autograd.Function):
    """Gamma noise (:func:`_gamma_sample`) as one autograd node with its pathwise dX/dr.

    The forward works in place and stores only dX/dr, which cuts the cost of a draw with its
    backward to about a third of the same maths through autograd. No gradient flows to k.
    """

    @staticmethod
    def forward(ctx, rates: Tensor, factor: Factor, dt_s: float, generator) -> Tensor:
        slope = torch.empty_like(rates) if ctx.needs_input_grad[0] else None
        noisy = _gamma_sample(rates, factor, dt_s, generator, slope_out=slope)
        if slope is not None:
            ctx.save_for_backward(slope)
        return noisy

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (slope,) = ctx.saved_tensors
        return grad_output * slope, None, None, None


def _gamma(rates: Tensor, factor: Factor, dt_s: float, generator: Generators) -> Tensor:
    return _GammaNoise.apply(rates, factor, dt_s, generator)


def _gauss(rates: Tensor, factor: Factor, dt_s: float, generator: Generators) -> Tensor:
    sd = factor * torch.sqrt(rates / dt_s + 1e-10)
    return torch.relu(rates + sd * _randn(rates, generator))


def _puregauss(rates: Tensor, factor: Factor, dt_s: float, generator: Generators) -> Tensor:
    return torch.relu(rates + (PUREGAUSS_SD * factor) * _randn(rates, generator))


def _csnr(rates: Tensor, factor: Factor, dt_s: float, generator: Generators) -> Tensor:
    inv_sqrt_kappa = factor / (CSNR_REFERENCE_RATE * dt_s) ** 0.5
    return rates * unit_gamma(inv_sqrt_kappa, rates, generator)


_SAMPLERS = {"gamma": _gamma, "gauss": _gauss, "puregauss": _puregauss, "csnr": _csnr}


def noise_fn(
    noise_type: str,
    factor: Factor,
    dt_ms: float,
    generator: Generators = None,
    random_numbers: str = "auto",
) -> NoiseFn:
    """The observation function ``rates -> noisy rates`` for one noise setting.

    ``generator``: one ``torch.Generator``, None (the global one), or a sequence of S generators
    for the rates of S stacked models ``(S, ...)``: member s then draws from generators[s]
    exactly what it would draw alone.

    The type is resolved once here, so a step loop calls a plain function. ``factor`` may be a
    tensor broadcastable against the rates (e.g. a 0-d buffer, or (S, 1, 1) for S stacked models);
    it is then used as is, without reading it back to the host (k = 0 still gives the rates back).
    A Python ``factor == 0`` or type ``"none"`` returns the identity and draws nothing.
    ``random_numbers``: ``auto``, ``philox`` or ``torch`` (see the module docstring).
    """
    check_noise_type(noise_type)
    check_random_numbers(random_numbers)
    if not isinstance(factor, Tensor) and factor < 0:
        raise ValueError(f"spike_noise_factor must be >= 0, got {factor}")
    if dt_ms <= 0:
        raise ValueError(f"dt must be > 0 (ms), got {dt_ms}")
    if noise_type == "none" or (not isinstance(factor, Tensor) and factor == 0):
        return _identity
    sampler = _SAMPLERS[noise_type]
    dt_s = dt_ms / 1000.0
    stream = RandomStream(generator, random_numbers)

    def observe(rates: Tensor) -> Tensor:
        return sampler(rates, factor, dt_s, stream)

    return observe


# A noise draw with its pathwise derivative, for hand-written backward passes:
# ``sample(rates, out, slope_out) -> noisy`` writes the noisy rates into ``out`` (or a new tensor
# if None) and, when ``slope_out`` is given, d noisy / d rates into it (elementwise).
SlopeSampler = Callable[[Tensor, Tensor | None, Tensor | None], Tensor]


def _gauss_slope(rates, factor, dt_s, generator, out, slope_out):
    # sqrt(r / dt_s + 1e-10) in two ops: the 0-d floor broadcasts against the rates
    scale = torch.add(rates.new_full((), 1e-10), rates, alpha=1.0 / dt_s).sqrt_()
    noise = _randn(rates, generator).mul_(factor)  # k xi
    noisy = (
        torch.addcmul(rates, noise, scale, out=out) if out is not None else rates + noise * scale
    )
    noisy.relu_()
    if slope_out is not None:  # (1 + k xi / (2 dt_s scale)) where the ReLU passes
        torch.addcdiv(rates.new_ones(()), noise, scale, value=0.5 / dt_s, out=slope_out)
        slope_out.mul_(noisy.sign())
    return noisy


def _puregauss_slope(rates, factor, dt_s, generator, out, slope_out):
    noise = _randn(rates, generator).mul_(PUREGAUSS_SD * factor)
    noisy = torch.add(rates, noise, out=out) if out is not None else rates + noise
    noisy.relu_()
    if slope_out is not None:
        torch.sign(noisy, out=slope_out)
    return noisy


def _csnr_slope(rates, factor, dt_s, generator, out, slope_out):
    draws = unit_gamma(factor / (CSNR_REFERENCE_RATE * dt_s) ** 0.5, rates, generator)
    if slope_out is not None:
        slope_out.copy_(draws)
    return torch.mul(rates, draws, out=out) if out is not None else rates * draws


_SLOPE_SAMPLERS = {
    "gamma": _gamma_sample,
    "gauss": _gauss_slope,
    "puregauss": _puregauss_slope,
    "csnr": _csnr_slope,
}


def slope_sampler(
    noise_type: str,
    factor: Factor,
    dt_ms: float,
    generator: Generators = None,
    random_numbers: str = "auto",
    *,
    native: bool = True,
) -> SlopeSampler | None:
    """Like :func:`noise_fn`, but the sampler also returns d noisy / d rates (see SlopeSampler).

    None where :func:`noise_fn` gives the identity. The draws, in number and order, are those of
    :func:`noise_fn` with the same arguments: both consume a generator identically.
    ``native``: run gamma and Gaussian noise on float32 CPU tensors through the fused kernels
    of :mod:`vwm_agents.models.native` where they are available (same draws, same maths to float32
    rounding); False: always eager PyTorch.
    """
    if noise_fn(noise_type, factor, dt_ms, generator, random_numbers) is _identity:
        return None
    sampler = _SLOPE_SAMPLERS[noise_type]
    dt_s = dt_ms / 1000.0
    generator = RandomStream(generator, random_numbers)
    if noise_type == "gamma":  # K once per sampler, not once per draw
        variance_per_rate = factor * factor / dt_s

        def sample(
            rates: Tensor, out: Tensor | None = None, slope_out: Tensor | None = None
        ) -> Tensor:
            return _gamma_sample(rates, factor, dt_s, generator, out, slope_out, variance_per_rate)

        if not native:
            return sample
        return _with_kernels(
            sample,
            _member_scalars(variance_per_rate),
            lambda rates: (_randn(rates, generator), _rand(rates, generator)),
            NativeKernels.gamma_noise,
        )

    def sample(rates: Tensor, out: Tensor | None = None, slope_out: Tensor | None = None) -> Tensor:
        return sampler(rates, factor, dt_s, generator, out, slope_out)

    if noise_type != "gauss" or not native:
        return sample

    def gauss_kernel(kernels: NativeKernels, rates, normal, k, out, slope) -> None:
        kernels.gauss_noise(rates, normal, k, dt_s, out, slope)

    return _with_kernels(
        sample, _member_scalars(factor), lambda rates: (_randn(rates, generator),), gauss_kernel
    )


def _with_kernels(
    eager: SlopeSampler,
    scalars: list[float] | None,
    draw: Callable[[Tensor], tuple[Tensor, ...]],
    kernel: Callable,
) -> SlopeSampler:
    """``eager``, but through the fused ``kernel(kernels, rates, *numbers, scalar, out, slope)``
    where the kernels apply: the random numbers (``draw``) come first, for the whole tensor, as
    in ``eager``; then one kernel call for it, or one per stacked model (``scalars``)."""
    if scalars is None:
        return eager

    def sample(rates: Tensor, out: Tensor | None = None, slope_out: Tensor | None = None) -> Tensor:
        kernels = _fused(scalars, rates, out, slope_out)
        if kernels is None:
            return eager(rates, out, slope_out)
        numbers = draw(rates)
        out = torch.empty_like(rates) if out is None else out
        for (part, *part_numbers, part_out, part_slope), scalar in _members(
            scalars, rates, *numbers, out, slope_out
        ):
            kernel(kernels, part, *part_numbers, scalar, part_out, part_slope)
        return out

    return sample


def _member_scalars(value: Factor) -> list[float] | None:
    """A noise parameter as one float, or one per stacked model for an ``(S, 1, 1)`` tensor;
    None where the fused kernels cannot take it (another shape, or not on the CPU)."""
    if not isinstance(value, Tensor):
        return [float(value)]
    if value.device.type != "cpu" or value.requires_grad:
        return None
    if value.numel() == 1:
        return [float(value)]
    if value.dim() == 3 and value.shape[1:] == (1, 1):
        return value.reshape(-1).tolist()
    return None


def _fused(
    scalars: list[float], rates: Tensor, out: Tensor | None, slope_out: Tensor | None
) -> NativeKernels | None:
    if rates.requires_grad:
        return None
    if len(scalars) > 1 and (rates.dim() != 3 or rates.shape[0] != len(scalars)):
        return None
    return native.use_kernels(rates, out, slope_out)


def _members(scalars: list[float], *tensors: Tensor | None):
    """(tensors, scalar) for the whole tensors, or per stacked model (leading dimension)."""
    if len(scalars) == 1:
        yield tensors, scalars[0]
        return
    for member, scalar in enumerate(scalars):
        yield tuple(None if t is None else t[member] for t in tensors), scalar


def _identity(rates: Tensor) -> Tensor:
    return rates


def observe_rates(
    rates: Tensor,
    noise_type: str,
    factor: Factor,
    dt_ms: float,
    generator: torch.Generator | None = None,
    random_numbers: str = "auto",
) -> Tensor:
    """A fresh noisy sample of ``rates`` (Hz, >= 0) under ``noise_type`` with noise factor k.

    See the module docstring for the distributions. For repeated calls with one setting (a
    simulation loop), build the function once with :func:`noise_fn`.
    """
    return noise_fn(noise_type, factor, dt_ms, generator, random_numbers)(rates)

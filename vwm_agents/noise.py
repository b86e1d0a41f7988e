"""Spiking noise on firing rates: the noisy "observed" rates that synapses and the readout see.

A rate r (Hz) observed over one time step dt stands for the spike count of a small population;
the noise types of the reference (original_model.md section 2) are, with k the noise factor and
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
``torch.Generator`` and nothing reads values back to the host, so a sampler can run inside a
CUDA graph. Everything is differentiable with respect to the rates.

The gamma sampler
-----------------
``torch.distributions.Gamma(...).rsample()`` costs about 7 Gaussian draws on the CPU forward and
as much again backward. We use a pathwise transform of one Gaussian and one exponential draw
instead:

* Boosting (exact): Gamma(a) = Gamma(a + 1) U^(1/a) for U ~ U(0, 1) independent; U^(1/a) is
  drawn as exp(-E / a) with E ~ Exp(1). Applied at every shape, so the approximation below only
  ever sees shapes a + 1 >= 1, and the quiet neurons (small shapes: r < 9 Hz at k = 0.3, dt = 10
  ms) keep their exact point mass near 0 and long tail.
* Wilson-Hilferty for Gamma(a + 1): (a + 1) (1 - 1/(9(a+1)) + z / (3 sqrt(a+1)))^3, z ~ N(0, 1),
  with the cube's base clamped at 0. Before the clamp its mean is (a + 1)(1 - 1/(729 (a+1)^3)).
  Computed exactly (quadrature, clamp included), the relative errors of Gamma(a + 1) are
  -0.14 % (mean) and -0.40 % (variance) at a + 1 = 1, -0.02 % and -0.10 % at 2, and below
  0.002 % and 0.02 % from 5 on; the boosted Gamma(a) inherits them (at most 0.16 % and 0.4 %).
  ``tests/test_noise.py`` checks mean and variance against the exact Gamma over r = 0.01 ... 60 Hz
  and k = 0.05 ... 0.3.

The cost, measured by ``benchmarks/bench_noise.py``, is about 2-3 Gaussian draws forward and
backward: see ``benchmarks/results/bench_noise.json``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

NOISE_TYPES: tuple[str, ...] = ("gamma", "gauss", "puregauss", "csnr", "none")

Factor = float | Tensor
NoiseFn = Callable[[Tensor], Tensor]

# Rate of the constant-SNR noise (Hz): its coefficient of variation is that of gamma noise at 5 Hz.
CSNR_REFERENCE_RATE = 5.0
# SD of the rate-independent Gaussian noise per unit of k (Hz).
PUREGAUSS_SD = 15.0
# r * dt_s is floored here before 1/sqrt: keeps gradients finite at r = 0 (reference: shape >= 1e-10).
_MIN_COUNT = 1e-20


def check_noise_type(noise_type: str) -> str:
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"spike_noise_type must be one of {NOISE_TYPES}, got {noise_type!r}")
    return noise_type


def _randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def _boosted_wilson_hilferty(
    inv_sqrt_shape: Tensor, scale: Tensor, generator: torch.Generator | None
) -> Tensor:
    """``scale * Gamma(a + 1) / (a + 1) * U^(1/a)`` for c = 1/sqrt(a): Gamma(a) up to ``scale``.

    With scale = 1 + 1/a this is Gamma(a, rate=a) (mean 1); see the module docstring.
    """
    inv_shape = inv_sqrt_shape.square()
    # 1/sqrt(a+1) written without a division by c, so c = 0 (k = 0) stays finite in backward.
    c1 = inv_sqrt_shape * torch.rsqrt(1.0 + inv_shape)
    z = _randn(c1, generator)
    base = (1.0 - c1.square() / 9.0 + c1 * z / 3.0).clamp_min(0.0)
    exponential = torch.empty_like(c1).exponential_(generator=generator)
    return scale * base.pow(3) * torch.exp(-inv_shape * exponential)


def unit_gamma(inv_sqrt_shape: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Gamma(a, rate=a) draws (mean 1, variance 1/a), given c = 1/sqrt(a) (any shape, >= 0).

    Pathwise in c (reparameterised); c = 0 gives exactly 1.
    """
    return _boosted_wilson_hilferty(inv_sqrt_shape, 1.0 + inv_sqrt_shape.square(), generator)


def _gamma(rates: Tensor, factor: Factor, dt_s: float, generator: torch.Generator | None) -> Tensor:
    # X = (r / a) Gamma(a) with a = r dt_s / k^2; the scale r (1 + 1/a) is written r + k^2 / dt_s
    # so that r -> 0 never multiplies a huge 1/a.
    inv_sqrt_shape = factor * torch.rsqrt((rates * dt_s).clamp_min(_MIN_COUNT))
    return _boosted_wilson_hilferty(inv_sqrt_shape, rates + factor * factor / dt_s, generator)


def _gauss(rates: Tensor, factor: Factor, dt_s: float, generator: torch.Generator | None) -> Tensor:
    sd = factor * torch.sqrt(rates / dt_s + 1e-10)
    return torch.relu(rates + sd * _randn(rates, generator))


def _puregauss(
    rates: Tensor, factor: Factor, dt_s: float, generator: torch.Generator | None
) -> Tensor:
    return torch.relu(rates + (PUREGAUSS_SD * factor) * _randn(rates, generator))


def _csnr(rates: Tensor, factor: Factor, dt_s: float, generator: torch.Generator | None) -> Tensor:
    inv_sqrt_kappa = factor / (CSNR_REFERENCE_RATE * dt_s) ** 0.5
    if not isinstance(inv_sqrt_kappa, Tensor):
        inv_sqrt_kappa = torch.tensor(inv_sqrt_kappa, dtype=rates.dtype, device=rates.device)
    scale = rates * (1.0 + inv_sqrt_kappa.square())
    return _boosted_wilson_hilferty(inv_sqrt_kappa.expand_as(rates), scale, generator)


_SAMPLERS = {"gamma": _gamma, "gauss": _gauss, "puregauss": _puregauss, "csnr": _csnr}


def noise_fn(
    noise_type: str,
    factor: Factor,
    dt_ms: float,
    generator: torch.Generator | None = None,
) -> NoiseFn:
    """The observation function ``rates -> noisy rates`` for one noise setting.

    The type is resolved once here, so a step loop calls a plain function. ``factor`` may be a
    tensor broadcastable against the rates (e.g. a 0-d buffer, or (S, 1, 1) for S stacked models);
    it is then used as is, without reading it back to the host (k = 0 still gives the rates back).
    A Python ``factor == 0`` or type ``"none"`` returns the identity and draws nothing.
    """
    check_noise_type(noise_type)
    if not isinstance(factor, Tensor) and factor < 0:
        raise ValueError(f"spike_noise_factor must be >= 0, got {factor}")
    if dt_ms <= 0:
        raise ValueError(f"dt must be > 0 (ms), got {dt_ms}")
    if noise_type == "none" or (not isinstance(factor, Tensor) and factor == 0):
        return _identity
    sampler = _SAMPLERS[noise_type]
    dt_s = dt_ms / 1000.0

    def observe(rates: Tensor) -> Tensor:
        return sampler(rates, factor, dt_s, generator)

    return observe


def _identity(rates: Tensor) -> Tensor:
    return rates


def observe_rates(
    rates: Tensor,
    noise_type: str,
    factor: Factor,
    dt_ms: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A fresh noisy sample of ``rates`` (Hz, >= 0) under ``noise_type`` with noise factor k.

    See the module docstring for the distributions. For repeated calls with one setting (a
    simulation loop), build the function once with :func:`noise_fn`.
    """
    return noise_fn(noise_type, factor, dt_ms, generator)(rates)

"""The Dale's-law rate RNN with spiking noise (see docs/model.md, section Dynamics).

Dynamics (Euler, time step dt, per-neuron time constants tau):

    r_obs = noise(r)                                  fresh noisy sample of the rates
    r    <- r + dt/tau * (-r + phi(W_eff r_obs + B u_t))
    out_t = F noise(r)                                 readout of another fresh sample

with r0 = 0, W_eff = W * sign(presynaptic) (columns of E neurons >= 0, of I neurons <= 0),
W >= 0 and B >= 0 kept by projection (:meth:`DaleRNN.apply_constraints`), and
phi(x) = (r_sat / 2)(1 + tanh(0.14 x - 4.2)) = r_sat sigmoid(0.28 x - 8.4), or the power law
0.18 max(x - 10, 1e-10)^1.7 when r_sat <= 0. The stored rates are the clean ones.

:meth:`DaleRNN.forward` runs the loop as one autograd node with a hand-written backward through
time (:func:`vwm_agents.models.euler.euler_loop`; its speed: docs/performance.md).
:func:`vwm_agents.models.euler.simulate` is the same loop through plain autograd, kept as the
reference the fast path is tested against. Both are pure functions of tensors: weights may carry
leading model dimensions ((S, N, N) with states (S, B, N)), so stacked ensembles reuse them
unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vwm_agents.models.euler import Activation, euler_loop
from vwm_agents.models.item_synapses import (
    apply_item_efficacies,
    check_item_synapse_noise,
    draw_item_efficacies,
    item_presence,
)
from vwm_agents.models.noise import (
    NoiseFn,
    check_noise_type,
    check_random_numbers,
    noise_fn,
    slope_sampler,
)
from vwm_agents.models.spike_readout import check_readout_spikes, spike_count_readout

# phi's pre-activation affine map (gain, offset) and its nonlinearity, split so that the gain and
# offset are folded into the weights once per forward instead of costing two ops per step.
_SATURATING_GAIN = 0.28  # sigmoid form of 0.5 (1 + tanh(0.14 x - 4.2))
_SATURATING_OFFSET = -8.4
_POWER_THRESHOLD = 10.0
_POWER_SCALE = 0.18
_POWER_EXPONENT = 1.7
_POWER_FLOOR = 1e-10


def _sample_log_uniform_tau(n: int, tau_min: float, tau_max: float) -> Tensor:
    return tau_min * torch.exp(torch.rand(n) * math.log(tau_max / tau_min))


class DaleRNN(nn.Module):
    """Noisy rate RNN with Dale's law, log-uniform time constants and a linear readout.

    Args:
        n_inputs: input channels (3K for the positive VWM encoding).
        n_outputs: readout size (2K for VWM recall: a (cos, sin) pair per slot).
        n_neurons: N.
        dt: Euler time step (ms).
        tau_min, tau_max: range of the log-uniform per-neuron time constants (ms).
        dales_law: split neurons into E (first floor(N * excitatory_fraction)) and I, with
            sign-constrained outgoing weights; off: unconstrained W.
        excitatory_fraction: fraction of E neurons.
        positive_input: input weights B kept >= 0 (for non-negative input encodings).
        saturation_firing_rate: r_sat of the saturating phi (Hz); <= 0 selects the power law.
        spike_noise_type: one of :data:`vwm_agents.models.noise.NOISE_TYPES`.
        spike_noise_factor: k >= 0 (a buffer, changeable with :meth:`set_noise_factor`).
        random_numbers: the source of the noise's random numbers, ``auto``, ``philox`` or
            ``torch`` (:mod:`vwm_agents.models.noise`; a training sets it from
            ``training.random_numbers``, resolved and recorded).
        readout_spikes: None (off: the readout reads noisy rates), or the population's spike
            rate xi (Hz, all neurons together) of a finite-spike-count readout
            (:mod:`vwm_agents.models.spike_readout`; Poisson in eval mode, its reparameterised
            Gaussian in train mode).
        item_synapse_noise: None (off), or s >= 0: each item's input synapses share one
            efficacy per trial, normalised over the items present (mean 1 / n, variance s / n),
            drawn from the forward's generator (:mod:`vwm_agents.models.item_synapses`; VWM
            recall inputs: item k on channels ``[3k, 3k + 3)``, ``n_outputs / 2`` items).

    Shapes: ``forward(ob (B, T, n_in)) -> (outputs (B, T, n_out), rates (B, T, N))``.
    """

    batch_first = True
    nonnegative_rates = True
    """Rates of :meth:`forward` from its default initial rates (0) are >= 0 by construction
    (phi >= 0 and a convex Euler update, the noise only read): the trainer's activity penalty
    may use its constant-gradient form (:func:`vwm_agents.training.losses.activity_penalty`)."""

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        n_neurons: int = 256,
        dt: float = 10.0,
        tau_min: float = 50.0,
        tau_max: float = 300.0,
        dales_law: bool = True,
        excitatory_fraction: float = 0.5,
        positive_input: bool = True,
        saturation_firing_rate: float = 60.0,
        spike_noise_type: str = "gamma",
        spike_noise_factor: float = 0.05,
        random_numbers: str = "auto",
        readout_spikes: float | None = None,
        item_synapse_noise: float | None = None,
    ) -> None:
        super().__init__()
        _check_args(
            n_inputs,
            n_outputs,
            n_neurons,
            dt,
            tau_min,
            tau_max,
            excitatory_fraction,
            spike_noise_type,
            spike_noise_factor,
        )
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.n_neurons = n_neurons
        self.dt = float(dt)
        self.dales_law = dales_law
        self.positive_input = positive_input
        self.saturation_firing_rate = float(saturation_firing_rate)
        self.spike_noise_type = spike_noise_type
        self.random_numbers = check_random_numbers(random_numbers)
        self.readout_spikes = check_readout_spikes(readout_spikes)
        self.item_synapse_noise = check_item_synapse_noise(item_synapse_noise)
        if self.item_synapse_noise is not None and n_inputs < 3 * (n_outputs // 2):
            raise ValueError(
                f"item_synapse_noise needs 3 input channels per item (VWM recall, "
                f"positive encoding): n_inputs {n_inputs} < 3 x {n_outputs // 2}"
            )

        n_exc = math.floor(n_neurons * excitatory_fraction) if dales_law else n_neurons
        self.n_excitatory = n_exc
        sign = torch.ones(n_neurons)
        sign[n_exc:] = -1.0
        tau = _sample_log_uniform_tau(n_neurons, tau_min, tau_max)
        tau = torch.cat([tau[:n_exc].sort().values, tau[n_exc:].sort().values])
        self.register_buffer("tau", tau)
        self.register_buffer("dale_sign", sign)
        self.register_buffer("spike_noise_factor", torch.tensor(float(spike_noise_factor)))

        if dales_law:
            recurrent = torch.randn(n_neurons, n_neurons).abs() / math.sqrt(0.682 * n_neurons)
        else:
            recurrent = torch.randn(n_neurons, n_neurons) / math.sqrt(n_neurons)
        inputs = torch.randn(n_neurons, n_inputs) * 0.418
        if positive_input:
            inputs = inputs.abs()
        out = torch.randn(n_outputs, n_neurons) * math.sqrt(2.0 / (n_neurons + n_outputs))
        self.recurrent_weights = nn.Parameter(recurrent)
        self.input_weights = nn.Parameter(inputs)
        self.readout_weights = nn.Parameter(out)

    @property
    def W_eff(self) -> Tensor:  # noqa: N802 (the name of the matrix in the papers)
        """Effective recurrent weights W * sign(presynaptic): W_eff[i, j] = W[i, j] s_j."""
        return self.recurrent_weights * self.dale_sign

    @property
    def leak(self) -> Tensor:
        """dt / tau per neuron."""
        return self.dt / self.tau

    # --- activation -----------------------------------------------------------------------
    def activation_affine(self) -> tuple[float, float]:
        """(gain, offset) with phi(x) = nonlinearity(gain * x + offset)."""
        if self.saturation_firing_rate > 0:
            return _SATURATING_GAIN, _SATURATING_OFFSET
        return 1.0, -_POWER_THRESHOLD

    @property
    def activation(self) -> Activation:
        """phi after its affine map, as the fused Euler loop takes it."""
        return Activation(self.saturation_firing_rate, _POWER_FLOOR, _POWER_SCALE, _POWER_EXPONENT)

    def nonlinearity(self, pre: Tensor) -> Tensor:
        """phi after its affine map (see :meth:`activation_affine`)."""
        return self.activation(pre)

    def phi(self, x: Tensor) -> Tensor:
        """The activation (Hz) of the total synaptic input x."""
        gain, offset = self.activation_affine()
        return self.nonlinearity(gain * x + offset)

    # --- dynamics -------------------------------------------------------------------------
    def noise(self, *, enabled: bool = True, generator: torch.Generator | None = None) -> NoiseFn:
        """The observation function rates -> noisy rates of this model (identity if disabled)."""
        noise_type = self.spike_noise_type if enabled else "none"
        return noise_fn(
            noise_type, self.spike_noise_factor, self.dt, generator, self.random_numbers
        )

    def input_drive(self, inputs: Tensor) -> Tensor:
        """phi's affine map of B u for ``inputs (..., n_in)`` -> ``(..., N)``."""
        gain, offset = self.activation_affine()
        return torch.addmm(
            torch.full((1,), offset, dtype=inputs.dtype, device=inputs.device),
            inputs.reshape(-1, self.n_inputs),
            self.input_weights.mT * gain,
        ).reshape(*inputs.shape[:-1], self.n_neurons)

    def forward(
        self,
        ob: Tensor,
        initial_rates: Tensor | None = None,
        *,
        noise: bool = True,
        generator: torch.Generator | None = None,
        readout_from: int = 0,
    ) -> tuple[Tensor, Tensor]:
        """Simulate ``ob (B, T, n_in)``; return (noisy readout (B, T, n_out), clean rates (B, T, N)).

        ``initial_rates (B, N)`` defaults to 0. ``noise=False`` switches the spiking noise off;
        ``generator`` supplies every noise draw. ``readout_from``: outputs of earlier steps read
        the clean rates and draw no noise (the trainer passes the first step a loss can see).
        """
        if self.item_synapse_noise is not None:
            items = self.n_outputs // 2
            efficacies = draw_item_efficacies(
                item_presence(ob, items, 3),
                self.item_synapse_noise,
                noise=noise,
                generator=generator,
            )
            ob = apply_item_efficacies(ob, efficacies, 3)
        if initial_rates is None:
            initial_rates = ob.new_zeros(ob.shape[0], self.n_neurons)
        sample = slope_sampler(
            self.spike_noise_type if noise else "none",
            self.spike_noise_factor,
            self.dt,
            generator,
            self.random_numbers,
        )
        gain, _ = self.activation_affine()
        # Time-major drive: the loop reads one contiguous (B, N) block per step.
        outputs, rates = euler_loop(
            self.input_drive(ob.transpose(0, 1)),
            self.W_eff * gain,
            self.leak,
            self.activation,
            sample,
            initial_rates,
            self.readout_weights,
            readout_from if self.readout_spikes is None else ob.shape[1],
        )
        if self.readout_spikes is None:
            return outputs, rates
        return spike_count_readout(
            rates,
            self.readout_weights,
            self.readout_spikes,
            self.dt,
            noise=noise,
            exact=not self.training,
            generator=generator,
            readout_from=readout_from,
        ), rates

    def mean_readout(self, rates: Tensor) -> Tensor:
        """The readout ``(..., T, n_out)`` of ``rates`` without the readout's own noise: F r, or
        F times the normalised rates (the spike counts' mean) with ``readout_spikes``."""
        if self.readout_spikes is None:
            return rates @ self.readout_weights.mT
        return spike_count_readout(
            rates,
            self.readout_weights,
            self.readout_spikes,
            self.dt,
            noise=False,
            exact=False,
            generator=None,
        )

    def step(self, rates: Tensor, inputs: Tensor | None = None, *, noise: bool = False) -> Tensor:
        """One Euler step F(r, u) from ``rates (..., N)`` (inputs (..., n_in), default 0)."""
        if inputs is None:
            inputs = rates.new_zeros(*rates.shape[:-1], self.n_inputs)
        observe = self.noise(enabled=noise)
        pre = self.phi(observe(rates) @ self.W_eff.mT + inputs @ self.input_weights.mT)
        return torch.lerp(rates, pre, self.leak)

    # --- trainer hooks --------------------------------------------------------------------
    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Project W >= 0 (Dale's law) and B >= 0 (positive input) in place."""
        if self.dales_law:
            self.recurrent_weights.clamp_(min=0.0)
        if self.positive_input:
            self.input_weights.clamp_(min=0.0)

    def set_noise_factor(self, factor: float) -> None:
        """Set k in place (noise curriculum); keeps the buffer's storage for CUDA graphs."""
        if factor < 0:
            raise ValueError(f"spike_noise_factor must be >= 0, got {factor}")
        self.spike_noise_factor.fill_(float(factor))

    def extra_repr(self) -> str:
        return (
            f"n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, n_neurons={self.n_neurons}, "
            f"dt={self.dt}, n_excitatory={self.n_excitatory}, dales_law={self.dales_law}, "
            f"positive_input={self.positive_input}, "
            f"saturation_firing_rate={self.saturation_firing_rate}, "
            f"spike_noise_type={self.spike_noise_type!r}"
            + ("" if self.readout_spikes is None else f", readout_spikes={self.readout_spikes}")
            + (
                ""
                if self.item_synapse_noise is None
                else f", item_synapse_noise={self.item_synapse_noise}"
            )
        )


def _check_args(
    n_inputs: int,
    n_outputs: int,
    n_neurons: int,
    dt: float,
    tau_min: float,
    tau_max: float,
    excitatory_fraction: float,
    spike_noise_type: str,
    spike_noise_factor: float,
) -> None:
    for name, value in (("n_inputs", n_inputs), ("n_outputs", n_outputs), ("n_neurons", n_neurons)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0 (ms), got {dt}")
    if not 0 < tau_min <= tau_max:
        raise ValueError(
            f"tau_min and tau_max must satisfy 0 < tau_min <= tau_max, got {tau_min}, {tau_max}"
        )
    if dt / tau_min > 1:
        raise ValueError(
            f"dt / tau_min must be <= 1 for a stable Euler step, got dt={dt}, tau_min={tau_min}"
        )
    if not 0 <= excitatory_fraction <= 1:
        raise ValueError(f"excitatory_fraction must be in [0, 1], got {excitatory_fraction}")
    check_noise_type(spike_noise_type)
    if not spike_noise_factor >= 0:
        raise ValueError(f"spike_noise_factor must be >= 0, got {spike_noise_factor}")

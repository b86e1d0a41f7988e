"""The fast simulation paths compute the plain maths: DaleRNN.forward against a loop written the
straightforward way (per-step Python loop, preallocated ``R[:, t] = r`` writes, ``Bu[:, t]``
indexing, phi as written in the reference, explicit Euler update) with identical noise draws.

The same noise is injected by giving both paths a generator with the same seed: both draw, per
step, the recurrent observation of r_{t-1} and then the readout observation of r_t, through the
same sampler, so the draws are identical and the comparison isolates the fast paths (folded
gain/offset, ``addmm``, ``lerp``, ``unbind``, list + ``stack``). Tolerances are float32
rounding: outputs and gradients agree to ~1e-5 relative, far below any modelling effect.
"""

from __future__ import annotations

import pytest
import torch

from vwm_agents.losses import activity_penalty
from vwm_agents.models import DaleRNN
from vwm_agents.noise import observe_rates

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture
def one_torch_thread():
    """One torch thread during a test (restored afterwards): tiny matmuls on a shared 2-core
    machine are many times slower with two threads spinning. Imported by the other fast-path
    test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def plain_forward(model: DaleRNN, ob: torch.Tensor, generator: torch.Generator | None,
                  noise: bool = True, readout_from: int = 0):
    """The reference's loop, with the model's own noise sampler (so the draws can match);
    steps before ``readout_from`` read out the clean rates."""
    noise_type = model.spike_noise_type if noise else "none"

    def observe(r):
        return observe_rates(r, noise_type, model.spike_noise_factor, model.dt, generator)

    n_trials, n_steps, _ = ob.shape
    bu = ob @ model.input_weights.T
    r = ob.new_zeros(n_trials, model.n_neurons)
    rates = ob.new_zeros(n_trials, n_steps, model.n_neurons)
    outputs = ob.new_zeros(n_trials, n_steps, model.n_outputs)
    for t in range(n_steps):
        r_obs = observe(r)
        r = r + model.dt * (-r + model.phi(r_obs @ model.W_eff.T + bu[:, t])) / model.tau
        rates[:, t] = r
        outputs[:, t] = (observe(r) if t >= readout_from else r) @ model.readout_weights.T
    return outputs, rates


def _loss(outputs, rates):
    # Every output and rate enters, with weights that differ per element.
    weights = torch.linspace(-1.0, 1.0, outputs.numel()).view_as(outputs)
    return (outputs * weights).sum() / outputs.numel() + activity_penalty(rates)


def _grads(model):
    return [p.grad.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize(
    "noise_type, saturation, readout_from",
    [("gamma", 60.0, 0), ("gamma", 60.0, 25), ("gauss", 60.0, 0), ("none", 0.0, 0),
     ("csnr", 60.0, 0)],
)
def test_forward_and_gradients_match_plain_loop(noise_type, saturation, readout_from):
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=32, spike_noise_type=noise_type, spike_noise_factor=0.1,
                    saturation_firing_rate=saturation)
    ob = torch.rand(5, 40, 9) * 12.0
    results = []
    for forward in (lambda g: model(ob, generator=g, readout_from=readout_from),
                    lambda g: plain_forward(model, ob, g, readout_from=readout_from)):
        model.zero_grad(set_to_none=True)
        outputs, rates = forward(torch.Generator().manual_seed(3))
        _loss(outputs, rates).backward()
        results.append((outputs.detach(), rates.detach(), _grads(model)))
    (out_fast, rates_fast, grads_fast), (out_plain, rates_plain, grads_plain) = results
    assert rates_fast.abs().max() > 1.0  # the network is active: the comparison is not vacuous
    torch.testing.assert_close(rates_fast, rates_plain, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(out_fast, out_plain, rtol=RTOL, atol=ATOL)
    for fast, plain in zip(grads_fast, grads_plain, strict=True):
        assert fast.abs().max() > 0
        torch.testing.assert_close(fast, plain, rtol=RTOL, atol=ATOL * fast.abs().max().item())


def test_noise_switch_and_generator_reproducibility():
    torch.manual_seed(1)
    model = DaleRNN(9, 6, n_neurons=16)
    ob = torch.rand(3, 20, 9) * 12.0
    first = model(ob, generator=torch.Generator().manual_seed(5))
    again = model(ob, generator=torch.Generator().manual_seed(5))
    other = model(ob, generator=torch.Generator().manual_seed(6))
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(first[0], other[0])
    quiet = model(ob, noise=False)
    torch.testing.assert_close(quiet[1], plain_forward(model, ob, None, noise=False)[1],
                               rtol=RTOL, atol=ATOL)

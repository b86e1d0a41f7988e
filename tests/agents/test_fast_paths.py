"""The fast simulation path (one autograd node for the whole Euler loop with a hand-written
backward through time, vwm_agents.models.euler) computes the plain maths: DaleRNN.forward
against a loop written the straightforward way (per-step Python loop, preallocated ``R[:, t] = r`` writes, ``Bu[:, t]``
indexing, phi as written in the reference, explicit Euler update) with identical noise draws.

The same noise is injected by giving both paths a generator with the same seed: both draw, per
step, the recurrent observation of r_{t-1} and then the readout observation of r_t, through the
same sampler, so the draws are identical and the comparison isolates the fast path (folded
gain/offset, in-place steps, hand-written backward, closed-form slopes of the noise, of phi and
of the activity penalty). Tolerances are float32 rounding (~1e-5 relative, far below any
modelling effect); in float64 everything agrees to 1e-10.
"""

from __future__ import annotations

import pytest
import torch

from vwm_agents.models import DaleRNN, simulate
from vwm_agents.models.ensemble import ensemble_forward
from vwm_agents.models.euler import euler_loop
from vwm_agents.models.noise import NOISE_TYPES, noise_fn, observe_rates, slope_sampler
from vwm_agents.training import losses
from vwm_agents.training.losses import activity_penalty

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


def plain_forward(
    model: DaleRNN,
    ob: torch.Tensor,
    generator: torch.Generator | None,
    noise: bool = True,
    readout_from: int = 0,
    initial_rates=None,
):
    """The reference's loop, with the model's own noise sampler (so the draws can match);
    steps before ``readout_from`` read out the clean rates."""
    noise_type = model.spike_noise_type if noise else "none"

    def observe(r):
        return observe_rates(r, noise_type, model.spike_noise_factor, model.dt, generator)

    n_trials, n_steps, _ = ob.shape
    bu = ob @ model.input_weights.T
    r = ob.new_zeros(n_trials, model.n_neurons) if initial_rates is None else initial_rates
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
    return (outputs * weights).sum() / outputs.numel() + activity_penalty(rates, nonnegative=True)


def _grads(model):
    return [p.grad.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize(
    "noise_type, saturation, readout_from",
    [
        ("gamma", 60.0, 0),
        ("gamma", 60.0, 25),
        ("gauss", 60.0, 0),
        ("none", 0.0, 0),
        ("csnr", 60.0, 0),
    ],
)
def test_forward_and_gradients_match_plain_loop(noise_type, saturation, readout_from):
    torch.manual_seed(0)
    model = DaleRNN(
        9,
        6,
        n_neurons=32,
        spike_noise_type=noise_type,
        spike_noise_factor=0.1,
        saturation_firing_rate=saturation,
    )
    ob = torch.rand(5, 40, 9) * 12.0
    results = []
    for forward in (
        lambda g: model(ob, generator=g, readout_from=readout_from),
        lambda g: plain_forward(model, ob, g, readout_from=readout_from),
    ):
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
    torch.testing.assert_close(
        quiet[1], plain_forward(model, ob, None, noise=False)[1], rtol=RTOL, atol=ATOL
    )


# --- every noise type, both nonlinearities, Dale's law on and off, float32 and float64 ---------


def _compare(model, ob, readout_from=0, initial_rates=None, loss=_loss, seed=3):
    """(fast, plain) each as (outputs, rates, parameter gradients[, initial-rate gradient])."""
    results = []
    for plain in (False, True):
        model.zero_grad(set_to_none=True)
        start = None if initial_rates is None else initial_rates.clone().requires_grad_(True)
        generator = torch.Generator().manual_seed(seed)
        if plain:
            outputs, rates = plain_forward(
                model, ob, generator, readout_from=readout_from, initial_rates=start
            )
        else:
            outputs, rates = model(ob, start, generator=generator, readout_from=readout_from)
        loss(outputs, rates).backward()
        extra = [] if start is None else [start.grad.detach().clone()]
        results.append((outputs.detach(), rates.detach(), _grads(model) + extra))
    return results


def _assert_equal_paths(fast, plain, rtol, atol):
    (out_fast, rates_fast, grads_fast), (out_plain, rates_plain, grads_plain) = fast, plain
    assert rates_fast.abs().max() > 1.0  # active network: the comparison is not vacuous
    torch.testing.assert_close(rates_fast, rates_plain, rtol=rtol, atol=atol)
    torch.testing.assert_close(out_fast, out_plain, rtol=rtol, atol=atol)
    for fast_grad, plain_grad in zip(grads_fast, grads_plain, strict=True):
        scale = plain_grad.abs().max().item()
        assert scale > 0
        torch.testing.assert_close(fast_grad, plain_grad, rtol=rtol, atol=atol * scale)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("saturation", [60.0, 0.0])
@pytest.mark.parametrize("dales_law", [True, False])
@pytest.mark.parametrize("noise_type", NOISE_TYPES)
def test_fast_path_equals_plain_autograd(noise_type, dales_law, saturation, dtype):
    torch.manual_seed(0)
    model = DaleRNN(
        7,
        4,
        n_neurons=12,
        spike_noise_type=noise_type,
        spike_noise_factor=0.1,
        saturation_firing_rate=saturation,
        dales_law=dales_law,
    ).to(dtype)
    ob = (torch.rand(3, 15, 7) * 12.0).to(dtype)
    # float64: the two paths differ only by rounding (1e-16 per op), so 1e-10 is tight
    tol = (1e-10, 1e-10) if dtype == torch.float64 else (RTOL, ATOL)
    fast, plain = _compare(model, ob, readout_from=6)
    _assert_equal_paths(fast, plain, *tol)


@pytest.mark.parametrize("noise_type", ["gamma", "gauss"])
def test_initial_rates_get_their_gradient(noise_type):
    torch.manual_seed(2)
    model = DaleRNN(
        7, 4, n_neurons=12, spike_noise_type=noise_type, spike_noise_factor=0.1
    ).double()
    ob = torch.rand(3, 10, 7, dtype=torch.float64) * 12.0
    start = torch.rand(3, 12, dtype=torch.float64) * 20.0
    fast, plain = _compare(model, ob, initial_rates=start)
    assert fast[2][-1].abs().max() > 0  # the initial rates' gradient is compared too
    _assert_equal_paths(fast, plain, 1e-10, 1e-10)


def test_variable_length_trials_padded_with_the_mask():
    """Trials of different lengths share one padded batch: each trial's decode window (its mask)
    ends where the trial ends; the readout draws no noise before the earliest window. Loss and
    gradients equal the plain loop's, and padding steps after a trial's end change nothing."""
    torch.manual_seed(4)
    model = DaleRNN(7, 4, n_neurons=12, spike_noise_type="gamma", spike_noise_factor=0.1)
    ob = torch.rand(4, 20, 7) * 12.0
    lengths = [20, 16, 12, 18]
    mask = torch.zeros(4, 20, 4)
    gt = torch.nn.functional.normalize(torch.randn(4, 1, 2, 2), dim=-1).flatten(-2).expand(4, 20, 4)
    for trial, length in enumerate(lengths):
        ob[trial, length:] = 0.0  # padding
        mask[trial, length - 5 : length] = 1.0
    readout_from = min(lengths) - 5

    def loss(outputs, rates):
        return losses.vwm_trial_error(outputs, gt, mask, "rad").mean() + 1e-3 * activity_penalty(
            rates, nonnegative=True
        )

    fast, plain = _compare(model, ob, readout_from=readout_from, loss=loss)
    _assert_equal_paths(fast, plain, RTOL, ATOL)
    # a different padding value changes rates after the end but no loss term before it
    padded = ob.clone()
    padded[1, 16:] = 5.0
    model.zero_grad(set_to_none=True)
    outputs, rates = model(
        padded, generator=torch.Generator().manual_seed(3), readout_from=readout_from
    )
    error = losses.vwm_trial_error(outputs, gt, mask, "rad")
    reference = losses.vwm_trial_error(
        *model(ob, generator=torch.Generator().manual_seed(3), readout_from=readout_from)[:1],
        gt,
        mask,
        "rad",
    )
    torch.testing.assert_close(error[1], reference[1], rtol=0, atol=0)
    assert not torch.equal(rates[1, 16:], plain[1][1, 16:])


@pytest.mark.parametrize("read, readout_from", [((2, 6), 4), ((1, 3), 8), ((9, 12), 4)])
def test_loss_on_some_steps_only(read, readout_from):
    """The backward skips the readout products on steps whose outputs no loss reads (their
    gradient is exactly 0): the loss reads steps [first, last), before, across or after
    readout_from."""
    torch.manual_seed(9)
    model = DaleRNN(7, 4, n_neurons=12, spike_noise_factor=0.1).double()
    ob = torch.rand(3, 12, 7, dtype=torch.float64) * 12.0

    def loss(outputs, rates):
        weights = torch.linspace(
            -1.0, 1.0, outputs[:, read[0] : read[1]].numel(), dtype=outputs.dtype
        ).view_as(outputs[:, read[0] : read[1]])
        return (outputs[:, read[0] : read[1]] * weights).sum() + 1e-3 * activity_penalty(
            rates, nonnegative=True
        )

    fast, plain = _compare(model, ob, readout_from=readout_from, loss=loss)
    _assert_equal_paths(fast, plain, 1e-10, 1e-10)


def test_stacked_fast_path_equals_plain_simulate():
    """Stacked weights (S, N, N) with per-member generators: euler_loop vs simulate (autograd)."""
    torch.manual_seed(5)
    models = [DaleRNN(7, 4, n_neurons=12, spike_noise_factor=0.1).double() for _ in range(3)]
    ob = torch.rand(3, 4, 10, 7, dtype=torch.float64) * 12.0
    results = []
    for fast in (True, False):
        for model in models:
            model.zero_grad(set_to_none=True)
        generators = [torch.Generator().manual_seed(10 + s) for s in range(3)]
        if fast:
            outputs, rates = ensemble_forward(models, ob, generators=generators, readout_from=4)
        else:
            gain, offset = models[0].activation_affine()
            drive = (
                torch.matmul(
                    ob.permute(2, 0, 1, 3), torch.stack([m.input_weights for m in models]).mT * gain
                )
                + offset
            )
            factor = torch.stack([m.spike_noise_factor for m in models]).view(3, 1, 1)
            outputs, rates = simulate(
                drive,
                torch.stack([m.W_eff for m in models]) * gain,
                torch.stack([m.leak for m in models]).unsqueeze(1),
                models[0].nonlinearity,
                noise_fn("gamma", factor, models[0].dt, generators),
                ob.new_zeros(3, 4, 12),
                torch.stack([m.readout_weights for m in models]),
                4,
            )
        _loss(outputs, rates).backward()
        results.append((outputs.detach(), rates.detach(), [g for m in models for g in _grads(m)]))
    _assert_equal_paths(*results, 1e-10, 1e-10)


def test_same_generator_gives_bit_identical_outputs_and_gradients():
    torch.manual_seed(6)
    model = DaleRNN(7, 4, n_neurons=12, spike_noise_factor=0.1)
    ob = torch.rand(3, 10, 7) * 12.0
    first, again = (_compare(model, ob, readout_from=3)[0] for _ in range(2))
    for a, b in zip(first[:2] + tuple(first[2]), again[:2] + tuple(again[2]), strict=True):
        assert torch.equal(a, b)


def test_no_grad_forward_equals_training_forward():
    torch.manual_seed(7)
    model = DaleRNN(7, 4, n_neurons=12, spike_noise_factor=0.1)
    ob = torch.rand(3, 10, 7) * 12.0
    with torch.no_grad():
        quiet = model(ob, generator=torch.Generator().manual_seed(1), readout_from=2)
    trained = model(ob, generator=torch.Generator().manual_seed(1), readout_from=2)
    assert trained[1].requires_grad and not quiet[1].requires_grad
    for a, b in zip(quiet, trained, strict=True):
        assert torch.equal(a, b) and a.is_contiguous()


@pytest.mark.parametrize("noise_type", [t for t in NOISE_TYPES if t != "none"])
def test_noise_slope_is_the_pathwise_derivative(noise_type):
    """slope_sampler draws what noise_fn draws and its slope is d noisy / d rates (autograd)."""
    rates = torch.linspace(0.0, 60.0, 200, dtype=torch.float64).view(10, 20)
    rates = rates.clone().requires_grad_(True)
    factor = torch.tensor(0.2, dtype=torch.float64)
    noisy = noise_fn(noise_type, factor, 10.0, torch.Generator().manual_seed(0))(rates)
    (autograd_slope,) = torch.autograd.grad(noisy.sum(), rates)
    slope = torch.empty_like(rates)
    with torch.no_grad():
        sampled = slope_sampler(noise_type, factor, 10.0, torch.Generator().manual_seed(0))(
            rates, None, slope
        )
    assert not torch.equal(sampled, rates.detach())
    torch.testing.assert_close(sampled, noisy.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(slope, autograd_slope, rtol=1e-10, atol=1e-10)


def test_leak_with_a_gradient_falls_back_to_autograd():
    torch.manual_seed(8)
    model = DaleRNN(7, 4, n_neurons=12, spike_noise_type="none")
    drive = model.input_drive(torch.rand(10, 3, 7) * 12.0)
    leak = model.leak.clone().requires_grad_(True)
    outputs, rates = euler_loop(
        drive,
        model.W_eff * 0.28,
        leak,
        model.activation,
        None,
        torch.zeros(3, 12),
        model.readout_weights,
    )
    rates.sum().backward()
    assert leak.grad is not None and leak.grad.abs().max() > 0

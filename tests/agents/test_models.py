"""DaleRNN, the GRU baseline and the agent registry."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vwm_agents.models import AGENTS, DaleRNN, GRUAgent, build_agent, simulate


def _model(**kwargs) -> DaleRNN:
    torch.manual_seed(0)
    return DaleRNN(6, 4, **{"n_neurons": 16, **kwargs})


def test_forward_shapes_and_clean_rates():
    model = _model()
    ob = torch.rand(3, 7, 6) * 12
    outputs, rates = model(ob, generator=torch.Generator().manual_seed(0))
    assert outputs.shape == (3, 7, 4) and rates.shape == (3, 7, 16)
    assert (rates >= 0).all() and torch.isfinite(outputs).all()
    gru_out, hidden = GRUAgent(6, 4, n_hidden=5)(ob)
    assert gru_out.shape == (3, 7, 4) and hidden.shape == (3, 7, 5)


def test_forward_without_noise_is_the_euler_recursion():
    """r_t = r_{t-1} + dt/tau (-r_{t-1} + phi(W_eff r_{t-1} + B u_t)), r_0 = 0, readout F r."""
    model = _model()
    ob = torch.rand(2, 5, 6) * 12
    outputs, rates = model(ob, noise=False)
    r = torch.zeros(2, 16)
    for t in range(5):
        total = r @ model.W_eff.T + ob[:, t] @ model.input_weights.T
        r = r + model.dt / model.tau * (-r + model.phi(total))
        assert torch.allclose(rates[:, t], r, rtol=1e-5, atol=1e-5)
        assert torch.allclose(
            model.step(rates[:, t - 1] if t else torch.zeros(2, 16), ob[:, t]),
            r,
            rtol=1e-5,
            atol=1e-5,
        )
    assert torch.allclose(outputs, rates @ model.readout_weights.T, rtol=1e-5, atol=1e-5)


def test_noise_is_reproducible_from_the_generator():
    model = _model()
    ob = torch.rand(2, 5, 6) * 12
    first = model(ob, generator=torch.Generator().manual_seed(1))
    again = model(ob, generator=torch.Generator().manual_seed(1))
    other = model(ob, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_phi_values():
    model = _model()
    values = model.phi(torch.tensor([30.0, 0.0, 1000.0]))
    assert math.isclose(values[0].item(), 30.0, rel_tol=1e-6)  # r_sat / 2 at x = 30
    assert math.isclose(values[1].item(), 30 * (1 + math.tanh(-4.2)), rel_tol=1e-4)  # ~0.0135
    assert 0.012 < values[1].item() < 0.014
    assert math.isclose(values[2].item(), 60.0, rel_tol=1e-6)
    power = _model(saturation_firing_rate=0.0).phi(torch.tensor([5.0, 20.0]))
    assert power[0].item() < 1e-15
    assert math.isclose(power[1].item(), 0.18 * 10**1.7, rel_tol=1e-5)


def test_tau_range_and_order_within_populations():
    model = _model(n_neurons=40, excitatory_fraction=0.25, tau_min=20.0, tau_max=400.0)
    tau = model.tau
    assert ((tau >= 20.0) & (tau <= 400.0)).all()
    exc, inh = tau[:10], tau[10:]
    assert (exc.diff() >= 0).all() and (inh.diff() >= 0).all()
    assert model.dale_sign[:10].eq(1).all() and model.dale_sign[10:].eq(-1).all()
    free = _model(n_neurons=40, dales_law=False)
    assert (free.tau.diff() >= 0).all() and free.dale_sign.eq(1).all()
    # log-uniform: log tau is uniform on [log 20, log 400]; mean check with SE of a uniform
    torch.manual_seed(1)
    big = DaleRNN(1, 1, n_neurons=20_000, tau_min=20.0, tau_max=400.0)
    logs = big.tau.log()
    width = math.log(400 / 20)
    se = width / math.sqrt(12 * logs.numel())
    assert abs(logs.mean().item() - (math.log(20) + width / 2)) < 4.5 * se


def test_dales_law_and_positivity_hold_after_adam_steps():
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    ob = torch.rand(4, 6, 6) * 12
    assert (model.recurrent_weights >= 0).all() and (model.input_weights >= 0).all()
    for _ in range(3):
        outputs, rates = model(ob)
        # pushes every weight down: without the projection W and B turn negative
        loss = outputs.square().mean() + model.recurrent_weights.sum() + model.input_weights.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert (model.recurrent_weights < 0).any() and (model.input_weights < 0).any()
        model.apply_constraints()
    assert (model.recurrent_weights >= 0).all() and (model.input_weights >= 0).all()
    w_eff = model.W_eff
    n_exc = model.n_excitatory
    assert (w_eff[:, :n_exc] >= 0).all() and (w_eff[:, n_exc:] <= 0).all()
    assert (w_eff[:, n_exc:] < 0).any() and (w_eff[:, :n_exc] > 0).any()


def test_without_constraints_weights_are_free():
    model = _model(dales_law=False, positive_input=False)
    assert (model.recurrent_weights < 0).any() and (model.input_weights < 0).any()
    before = model.recurrent_weights.detach().clone()
    model.apply_constraints()
    assert torch.equal(model.recurrent_weights, before)


def test_gradients_reach_every_parameter_with_gamma_noise():
    model = _model(spike_noise_factor=0.1)
    outputs, rates = model(torch.rand(3, 6, 6) * 12)
    (outputs.square().mean() + rates.mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_set_noise_factor_keeps_the_buffer():
    model = _model()
    buffer = model.spike_noise_factor
    model.set_noise_factor(0.2)
    assert model.spike_noise_factor is buffer and math.isclose(buffer.item(), 0.2, rel_tol=1e-6)
    assert "spike_noise_factor" in model.state_dict()
    with pytest.raises(ValueError, match="spike_noise_factor must be >= 0"):
        model.set_noise_factor(-1.0)
    model.set_noise_factor(0.0)
    ob = torch.rand(2, 4, 6) * 12
    assert torch.allclose(model(ob)[1], model(ob, noise=False)[1])


def test_simulate_runs_stacked_models_like_single_ones():
    """Weights (S, N, N) and states (S, B, N): each slice equals the model run alone."""
    models = [_model(), DaleRNN(6, 4, n_neurons=16)]
    ob = torch.rand(3, 5, 6) * 12
    gain, _ = models[0].activation_affine()
    weights = torch.stack([m.W_eff * gain for m in models])
    drive = torch.stack([m.input_drive(ob.transpose(0, 1)) for m in models], dim=1)
    leak = torch.stack([m.leak for m in models]).unsqueeze(1)
    outputs, rates = simulate(
        drive,
        weights,
        leak,
        models[0].nonlinearity,
        lambda r: r,
        torch.zeros(2, 3, 16),
        torch.stack([m.readout_weights for m in models]),
    )
    assert outputs.shape == (2, 3, 5, 4) and rates.shape == (2, 3, 5, 16)
    for s, model in enumerate(models):
        single_outputs, single_rates = model(ob, noise=False)
        assert torch.allclose(rates[s], single_rates, rtol=1e-5, atol=1e-5)
        assert torch.allclose(outputs[s], single_outputs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_neurons": 0}, "n_neurons must be an integer >= 1"),
        ({"tau_min": 0.0}, "0 < tau_min <= tau_max"),
        ({"tau_min": 300.0, "tau_max": 50.0}, "0 < tau_min <= tau_max"),
        ({"dt": 0.0}, "dt must be > 0"),
        ({"dt": 60.0}, "dt / tau_min must be <= 1"),
        ({"excitatory_fraction": 1.5}, r"excitatory_fraction must be in \[0, 1\]"),
        ({"spike_noise_type": "poisson"}, "spike_noise_type must be one of"),
        ({"spike_noise_factor": -0.1}, "spike_noise_factor must be >= 0"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DaleRNN(6, 4, **kwargs)


def test_registry_and_build_agent():
    assert set(AGENTS) == {"dale_rnn", "gru"}
    with pytest.raises(TypeError):
        AGENTS["mine"] = nn.Linear  # read-only mapping
    model = build_agent("dale_rnn", 6, 4, n_neurons=8)
    assert isinstance(model, DaleRNN) and model.n_neurons == 8
    imported = build_agent("vwm_agents.models.gru:GRUAgent", 6, 4, n_hidden=3)
    assert isinstance(imported, GRUAgent)
    with pytest.raises(ValueError, match=r"one of \('dale_rnn', 'gru'\) or an import path"):
        build_agent("lstm", 6, 4)
    with pytest.raises(ValueError, match="could not be imported"):
        build_agent("no_such_module:Agent", 6, 4)
    with pytest.raises(ValueError, match="must name an nn.Module subclass"):
        build_agent("math:sqrt", 6, 4)
    # kwargs are checked with the config; a direct call fails as any Python call does
    with pytest.raises(TypeError, match="unexpected keyword argument 'width'"):
        build_agent("gru", 6, 4, width=3)

"""The network-side forgetting mechanisms of issue 23: the finite spike-count readout
(``agent.readout_spikes``) and the cost of reporting (``training.report_cost``)."""

from __future__ import annotations

import math

import pytest
import torch
from agent_test_support import assert_same_tree

from vwm_agents import train
from vwm_agents.config import Config, apply_overrides
from vwm_agents.models import DaleRNN
from vwm_agents.models.item_synapses import (
    apply_item_efficacies,
    draw_item_efficacies,
    gamma_draw,
    item_presence,
)
from vwm_agents.models.spike_readout import expected_counts, spike_count_readout, spike_counts
from vwm_agents.training import losses
from vwm_agents.training.checkpoint import load_checkpoint


def _rates(shape=(64, 10, 32), seed=0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 20


def test_expected_counts_are_normalised_to_the_population_budget():
    rates = _rates()
    lam = expected_counts(rates, spikes_per_s=400.0, dt=10.0)
    # xi dt / 1000 = 4 spikes per step in the whole population, whatever the rates
    torch.testing.assert_close(lam.sum(-1), torch.full(lam.shape[:-1], 4.0))
    lam_doubled = expected_counts(3 * rates, spikes_per_s=400.0, dt=10.0)
    torch.testing.assert_close(lam, lam_doubled)  # firing more buys nothing
    # a silent population is not a division by zero
    assert torch.isfinite(expected_counts(torch.zeros(2, 3), 400.0, 10.0)).all()


@pytest.mark.parametrize("exact", [True, False])
def test_counts_have_poisson_mean_and_variance(exact):
    lam = torch.full((200_000,), 0.7)
    counts = spike_counts(lam, exact=exact, generator=torch.Generator().manual_seed(1))
    assert counts.mean().item() == pytest.approx(0.7, abs=0.01)
    assert counts.var().item() == pytest.approx(0.7, abs=0.02)
    if exact:  # whole spikes, and P(n = 0) = exp(-lambda): Bays's guesses
        assert torch.equal(counts, counts.round())
        assert (counts == 0).float().mean().item() == pytest.approx(math.exp(-0.7), abs=0.005)


def test_the_training_approximation_passes_gradients_and_the_draws_repeat():
    lam = torch.full((5,), 2.0, requires_grad=True)
    drawn = spike_counts(lam, exact=False, generator=torch.Generator().manual_seed(2))
    drawn.sum().backward()
    assert lam.grad is not None and torch.isfinite(lam.grad).all()
    again = spike_counts(lam, exact=False, generator=torch.Generator().manual_seed(2))
    assert torch.equal(drawn, again)


def test_readout_mean_is_the_normalised_rates_and_early_steps_draw_nothing():
    rates, weights = _rates((4, 6, 8)), torch.randn(4, 8)
    mean = spike_count_readout(rates, weights, 500.0, 10.0, noise=False, exact=True, generator=None)
    normalised = 8 * rates / rates.sum(-1, keepdim=True)
    torch.testing.assert_close(mean, normalised @ weights.T)
    noisy = spike_count_readout(
        rates,
        weights,
        500.0,
        10.0,
        noise=True,
        exact=True,
        generator=torch.Generator().manual_seed(0),
        readout_from=4,
    )
    torch.testing.assert_close(noisy[:, :4], mean[:, :4])
    assert not torch.allclose(noisy[:, 4:], mean[:, 4:])


def test_fewer_spikes_mean_a_noisier_readout():
    rates, weights = _rates((2000, 1, 16)), torch.randn(2, 16)

    def spread(xi):
        out = spike_count_readout(
            rates,
            weights,
            xi,
            10.0,
            noise=True,
            exact=True,
            generator=torch.Generator().manual_seed(3),
        )
        mean = spike_count_readout(
            rates, weights, xi, 10.0, noise=False, exact=True, generator=None
        )
        return (out - mean).square().mean().item()

    assert spread(200.0) > 4 * spread(2000.0)  # variance ~ 1 / xi


def test_dale_rnn_reads_spike_counts_poisson_in_eval_gaussian_in_training():
    model = DaleRNN(
        6, 4, n_neurons=16, spike_noise_type="csnr", spike_noise_factor=0.3, readout_spikes=300.0
    )
    ob = torch.rand(3, 20, 6) * 20
    out, rates = model(ob, generator=torch.Generator().manual_seed(0))
    out.square().mean().backward()
    assert model.readout_weights.grad.abs().sum() > 0 and model.input_weights.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        a, _ = model(ob, generator=torch.Generator().manual_seed(5))
        b, _ = model(ob, generator=torch.Generator().manual_seed(5))
        clean, clean_rates = model(ob, noise=False)
    assert torch.equal(a, b)
    torch.testing.assert_close(
        clean,
        spike_count_readout(
            clean_rates, model.readout_weights, 300.0, 10.0, noise=False, exact=True, generator=None
        ),
    )
    with pytest.raises(ValueError, match="readout_spikes must be null"):
        DaleRNN(6, 4, readout_spikes=0)


def test_report_cost_is_the_mean_length_of_present_readouts():
    outputs = torch.zeros(1, 3, 4)
    outputs[0, 1:, :2] = torch.tensor([0.3, 0.4])  # item 0: length 0.5 on the decode steps
    outputs[0, 1:, 2:] = torch.tensor([3.0, 4.0])  # item 1: absent, never costs
    mask = torch.zeros(1, 3, 4)
    mask[0, 1:, :2] = 1.0
    assert losses.report_cost(outputs, mask).item() == pytest.approx(0.5, abs=1e-5)


@pytest.mark.parametrize("m_length, c", [(0.2, 0.6), (0.5, 0.6), (0.9, 0.6), (0.5, 0.2)])
def test_l2_plus_report_cost_drops_weakly_held_items_and_shrinks_the_others(m_length, c):
    # An item whose true angle is +a or -a with equal odds (cos a = m_length): the best estimate
    # of its (cos, sin) is m = (m_length, 0). Over a grid of constant outputs u, the real losses
    # (l2 error averaged over the two cases, plus c times the report cost) are least at
    # u = m max(0, 1 - c / (2 |m|)): below |m| = c / 2 the item is not reported at all.
    step = 0.005
    axis = torch.arange(-1.0, 1.0 + step / 2, step)
    u = torch.cartesian_prod(axis, axis)  # (G, 2)
    a = math.acos(m_length)
    targets = torch.tensor([[math.cos(a), math.sin(a)], [math.cos(a), -math.sin(a)]])
    outputs = u[:, None, None, :].expand(-1, 2, 3, 2).reshape(-1, 3, 2)
    gt = targets[None, :, None, :].expand(len(u), 2, 3, 2).reshape(-1, 3, 2)
    mask = torch.ones_like(gt)
    error = losses.vwm_trial_error(outputs, gt, mask, "l2").view(-1, 2).mean(dim=1)
    cost = losses.report_cost(outputs, mask).view(-1, 2).mean(dim=1)
    best = u[torch.argmin(error + c * cost)]
    expected = torch.tensor([m_length * max(0.0, 1.0 - c / (2 * m_length)), 0.0])
    assert torch.allclose(best, expected, atol=step)


def _tiny(*overrides: str) -> Config:
    data = {
        "task": {
            "id": "VWMRecall-v0",
            "max_items": 3,
            "timing": {"init": 20, "stimulus": 100, "delay": 100, "decode": 100},
        },
        "agent": {
            "name": "dale_rnn",
            "n_neurons": 16,
            "spike_noise_type": "csnr",
            "spike_noise_factor": 0.3,
        },
        "training": {
            "seed": 1,
            "num_iterations": 8,
            "batch_size": 8,
            "learning_rate": 0.01,
            "eval_batch_size": 16,
            "device": "cpu",
            "threads": 1,
            "checkpoint_period": 2,
            "error_def": "l2",
        },
        "logging": {"run_name": "m", "period": 2, "progress": False},
    }
    return Config.from_dict(apply_overrides(data, list(overrides)))


MECHANISMS = [
    "agent.readout_spikes=300",
    "training.report_cost=0.5",
    "task.item_gain={scale: 0.05}",
    "agent.item_synapse_noise=0.05",
]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_runs_with_a_mechanism_repeat_and_resume_exactly(tmp_path, mechanism):
    straight = train(_tiny(mechanism), tmp_path / "a")
    again = train(_tiny(mechanism), tmp_path / "b")
    train(_tiny(mechanism, "training.num_iterations=4"), tmp_path / "c")
    resumed = train(_tiny(mechanism), tmp_path / "c", resume=True)

    def latest(run):
        return load_checkpoint(run / "checkpoints" / "latest.pt")

    assert_same_tree(latest(straight), latest(again))
    payload = latest(resumed)
    assert payload["iteration"] == 8
    assert_same_tree(latest(straight)["model"], payload["model"])
    assert_same_tree(latest(straight)["rng"], payload["rng"])
    # and the mechanism changed the run (it is on)
    plain = train(_tiny(), tmp_path / "plain")
    assert not torch.equal(
        latest(plain)["model"]["recurrent_weights"], payload["model"]["recurrent_weights"]
    )


@pytest.mark.parametrize("readout_spikes", [None, 300.0])
def test_mean_readout_is_the_noise_free_readout_of_the_rates(readout_spikes):
    model = DaleRNN(6, 4, n_neurons=16, readout_spikes=readout_spikes)
    ob = torch.rand(2, 15, 6) * 20
    with torch.no_grad():
        clean, rates = model(ob, noise=False)
        torch.testing.assert_close(model.mean_readout(rates), clean)


@pytest.mark.parametrize("shape", [0.8, 2.5, 20.0])
def test_gamma_draw_has_the_gamma_distribution_and_a_fixed_number_of_draws(shape):
    from scipy import stats

    generator = torch.Generator().manual_seed(0)
    g = gamma_draw(torch.full((50_000,), shape), generator).double()
    assert g.mean().item() == pytest.approx(shape, rel=0.02)
    assert g.var().item() == pytest.approx(shape, rel=0.05)
    assert stats.kstest(g[:5000].numpy(), stats.gamma(shape).cdf).pvalue > 0.01
    # the generator moved by the same amount whatever the shape
    a, b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    gamma_draw(torch.full((7,), 0.3), a)
    gamma_draw(torch.full((7,), 30.0), b)
    assert torch.equal(a.get_state(), b.get_state())


def test_item_efficacies_share_a_fixed_total_with_variance_growing_with_set_size():
    presence = torch.zeros(100_000, 8, dtype=torch.bool)
    cv = []
    for n in (1, 4, 8):
        presence[:] = False
        presence[:, :n] = True
        g = draw_item_efficacies(
            presence, 0.05, noise=True, generator=torch.Generator().manual_seed(n)
        )
        assert torch.all(g[:, n:] == 0)
        assert g.sum(dim=1).mean().item() == pytest.approx(1.0, rel=0.01)  # the fixed budget
        assert g[:, :n].var().item() == pytest.approx(0.05 / n, rel=0.05)  # variance w s
        cv.append((g[:, :n].std() / g[:, :n].mean()).item())
    assert cv[0] < cv[1] < cv[2]
    off = draw_item_efficacies(presence, 0.05, noise=False, generator=None)
    assert torch.all(off[:, :8] == 0.125)


def test_item_synapses_scale_each_items_channels_and_the_network_draws_them():
    ob = torch.zeros(2, 5, 9)
    ob[0, 1:3, 0:3] = 2.0  # trial 0: item 0 only
    ob[1, 1:3, 3:9] = 1.0  # trial 1: items 1 and 2
    presence = item_presence(ob, 3, 3)
    assert presence.tolist() == [[True, False, False], [False, True, True]]
    gained = apply_item_efficacies(ob, torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.25, 2.0]]), 3)
    assert torch.equal(gained[0, 1, :3], torch.full((3,), 1.0))
    assert torch.equal(gained[1, 1, 3:6], torch.full((3,), 0.25))
    assert torch.equal(gained[1, 1, 6:9], torch.full((3,), 2.0))
    model = DaleRNN(9, 6, n_neurons=16, item_synapse_noise=0.1)
    a, _ = model(ob * 20, generator=torch.Generator().manual_seed(4))
    b, _ = model(ob * 20, generator=torch.Generator().manual_seed(4))
    c, _ = model(ob * 20, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="item_synapse_noise must be null"):
        DaleRNN(9, 6, item_synapse_noise=-1)
    with pytest.raises(ValueError, match="needs 3 input channels per item"):
        DaleRNN(4, 6, item_synapse_noise=0.1)

"""analysis.neural.item_loss: Silverman's mode test on known mixtures, the per-item readouts of a model,
and the figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.neural.item_loss import (
    ItemReadouts,
    count_modes,
    item_loss,
    item_readouts,
    silverman_test,
)
from analysis.viz.item_loss import plot_item_loss
from vwm_agents.models import DaleRNN
from vwm_tasks.recall import VWMRecall


def test_count_modes_sees_two_separated_peaks_and_one_when_smoothed():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.3, 500), rng.normal(2, 0.3, 500)])
    assert count_modes(x, 0.2) == 2
    assert count_modes(x, 5.0) == 1


@pytest.mark.parametrize("bimodal", [True, False])
def test_silverman_rejects_one_mode_for_a_mixture_and_not_for_one_peak(bimodal):
    rng = np.random.default_rng(0)
    if bimodal:
        x = np.concatenate([rng.normal(-1.5, 0.4, 600), rng.normal(0.5, 0.4, 600)])
    else:
        x = np.log(rng.gamma(3.0, 1.0, 1200))  # skewed, one mode
    p = silverman_test(x, n_boot=100, seed=0)["p_value"]
    assert (p < 0.05) if bimodal else (p > 0.05)


def test_item_loss_summary_of_synthetic_readouts():
    rng = np.random.default_rng(2)
    n = 800
    held = rng.random(n) < 0.5
    length = np.where(held, rng.lognormal(np.log(0.6), 0.2, n), rng.lognormal(np.log(0.02), 0.3, n))
    error = np.where(held, rng.normal(0, 0.3, n), rng.uniform(-np.pi, np.pi, n))
    unimodal = rng.lognormal(np.log(0.5), 0.3, n)
    data = ItemReadouts(
        set_size=np.repeat([8, 1], n),
        length=np.concatenate([length, unimodal]),
        error=np.concatenate([error, rng.normal(0, 0.2, n)]),
        n_trials=n,
    )
    result = item_loss(data, n_boot=50)
    assert result.set_sizes == [1, 8]
    assert result.modes[8]["p_value"] < 0.05 and result.modes[1]["p_value"] > 0.05
    split = result.split[8]
    assert split["fraction_below"] == pytest.approx(0.5, abs=0.05)
    assert split["mae_below"] > 1.2 > 0.4 > split["mae_above"]  # dropped items are guesses
    assert set(result.to_dict()) >= {"silverman_log_length", "split", "quantiles_5_25_50_75_95"}


def test_item_readouts_of_a_model_with_item_gains_and_the_figure(tmp_path):
    env = VWMRecall(
        max_items=3,
        item_gain={"scale": 0.1},
        timing={"init": 20, "stimulus": 100, "delay": 100, "decode": 100},
    )
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=16, spike_noise_type="csnr", spike_noise_factor=0.3)
    data = item_readouts(model, env, n_trials=40, seed=3)
    assert len(data.length) == 40 * (1 + 2 + 3)
    assert np.all(data.length >= 0) and np.all(np.abs(data.error) <= np.pi)
    assert data.gain is not None and np.all(data.gain > 0)
    again = item_readouts(model, env, n_trials=40, seed=3)
    np.testing.assert_array_equal(data.length, again.length)  # seeded: repeatable
    result = item_loss(data, n_boot=20)
    assert set(result.gain_error) == {1, 2, 3}
    path = plot_item_loss([("a", result), ("b", result)], tmp_path / "f.png", set_sizes=(1, 3))
    assert path.stat().st_size > 0


def test_the_efficacies_an_item_drew_inside_the_network_are_replayed_exactly(monkeypatch):
    from analysis.neural.item_loss import _replayed_efficacies
    from vwm_agents.models import dale_rnn

    env = VWMRecall(max_items=3, timing={"init": 20, "stimulus": 100, "delay": 100, "decode": 100})
    model = DaleRNN(9, 6, n_neurons=16, item_synapse_noise=0.1)
    ob = torch.as_tensor(env.sample_batch(8, np.random.default_rng(0)).ob)
    used = []
    original = dale_rnn.apply_item_efficacies
    monkeypatch.setattr(
        dale_rnn,
        "apply_item_efficacies",
        lambda ob, eff, c: used.append(eff) or original(ob, eff, c),
    )
    torch.manual_seed(11)
    replayed = _replayed_efficacies(model, ob, torch.get_rng_state())
    with torch.no_grad():
        model(ob)
    np.testing.assert_array_equal(replayed, used[0].numpy())
    data = item_readouts(model, env, n_trials=30, seed=1)
    assert data.gain is not None and np.all(data.gain > 0)
    result = item_loss(data, n_boot=10)
    below, above = result.low_gain[3]["below"], result.low_gain[3]["above"]
    assert below["share"] + above["share"] == pytest.approx(1.0)
    assert below["n"] + above["n"] == 90


def test_rayleigh_p_is_small_for_concentrated_errors_and_not_for_uniform_ones():
    from analysis.neural.item_loss import _uniformity

    rng = np.random.default_rng(0)
    assert _uniformity(rng.normal(0, 0.3, 200), 1.0)["rayleigh_p"] < 1e-6
    assert _uniformity(rng.uniform(-np.pi, np.pi, 200), 1.0)["rayleigh_p"] > 0.05

"""Mixed selectivity: vector strength and IPR against closed forms, and run() on a small model."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import vwm_tasks  # noqa: F401  (registers the envs)
from analysis.selectivity import participation_ratio, run, selectivity_matrix, vector_strength
from vwm_agents.models.dale_rnn import DaleRNN

TIMING = {"init": 20, "stimulus": 100, "delay": 100, "decode": 100}


def test_vector_strength_of_cosine_tuning_is_half_modulation_over_baseline():
    theta = np.linspace(-np.pi, np.pi, 360, endpoint=False)
    a, b, pref = 10.0, 4.0, 0.7
    rates = np.stack([a + b * np.cos(theta - pref), np.full_like(theta, 3.0)], 1)
    r = vector_strength(rates, theta)
    assert r[0] == pytest.approx(b / (2 * a), abs=1e-12)
    assert r[1] == pytest.approx(0.0, abs=1e-12)


def test_vector_strength_of_silent_neuron_is_zero():
    assert vector_strength(np.zeros((4, 1)), np.zeros(4))[0] == 0.0


def test_ipr_bounds():
    k = 5
    single = np.zeros((1, k))
    single[0, 2] = 0.4
    uniform = np.full((1, k), 0.3)
    assert participation_ratio(single)[0] == pytest.approx(1 / k)
    assert participation_ratio(uniform)[0] == pytest.approx(1.0)
    assert np.isnan(participation_ratio(np.zeros((1, k)))[0])


def test_selectivity_matrix_uses_only_trials_with_the_slot_present():
    rng = np.random.default_rng(0)
    n, k = 400, 2
    theta = rng.uniform(-np.pi, np.pi, (n, k))
    presence = np.zeros((n, k), bool)
    presence[: n // 2, 0] = True
    presence[n // 2 :, 1] = True
    # neuron 0 tuned to slot 0's angle only; flat (1 Hz) when slot 1 holds the item
    rates = np.where(presence[:, :1], 2 + np.cos(theta[:, :1]), 1.0)
    r = selectivity_matrix(rates, theta, presence)
    half = presence[:, 0]
    assert r[0, 0] == pytest.approx(vector_strength(rates[half], theta[half, 0])[0])
    assert r[0, 1] < r[0, 0]
    with pytest.raises(ValueError, match="never present"):
        selectivity_matrix(rates, theta, np.zeros((n, k), bool))


def test_run_on_untrained_model():
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=32)
    result = run(model, env, n_trials=30, seed=0)
    assert result.r_matrix.shape == (32, 3)
    assert np.all((result.r_matrix >= 0) & (result.r_matrix <= 1))
    ipr = result.ipr[np.isfinite(result.ipr)]
    assert np.all((ipr >= 1 / 3 - 1e-12) & (ipr <= 1 + 1e-12))
    assert result.to_dict()["summary"]["IPR_bounds"] == [1 / 3, 1.0]

"""Divisive normalisation: the summation weights on synthetic data, and run() on a small model."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import vwm_tasks  # noqa: F401  (registers the envs)
from analysis.normalization import dn_weights, run
from vwm_agents.models.dale_rnn import DaleRNN

TIMING = {"init": 20, "stimulus": 100, "delay": 100, "decode": 100}


def test_dn_weights_recover_known_weights_exactly_without_noise():
    rng = np.random.default_rng(0)
    r1, r2 = rng.random((50, 64)), rng.random((50, 64))
    w1_true, w2_true = rng.uniform(0, 1, 50), rng.uniform(0, 1, 50)
    r12 = w1_true[:, None] * r1 + w2_true[:, None] * r2
    w1, w2 = dn_weights(r1, r2, r12)
    np.testing.assert_allclose(w1, w1_true, atol=1e-10)
    np.testing.assert_allclose(w2, w2_true, atol=1e-10)


def test_dn_weights_with_noise_within_standard_error():
    rng = np.random.default_rng(1)
    n, sigma = 2000, 0.1
    r1, r2 = rng.random(n), rng.random(n)
    r12 = 0.7 * r1 + 0.4 * r2 + sigma * rng.standard_normal(n)
    w1, w2 = dn_weights(r1, r2, r12)
    cov = sigma**2 * np.linalg.inv(np.stack([r1, r2], 1).T @ np.stack([r1, r2], 1))
    assert abs(w1 - 0.7) < 4 * np.sqrt(cov[0, 0])
    assert abs(w2 - 0.4) < 4 * np.sqrt(cov[1, 1])


def test_collinear_responses_give_nan_not_garbage():
    r = np.arange(1.0, 6.0)
    w1, w2 = dn_weights(r, 2 * r, 3 * r)
    assert np.isnan(w1) and np.isnan(w2)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        dn_weights(np.ones(3), np.ones(3), np.ones(4))


def test_run_on_untrained_model():
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=32)
    result = run(model, env, n_trials=12, seed=0)
    d = result.to_dict()
    assert len(d["summation"]["w1"]) + d["summation"]["n_singular"] == 12
    assert d["load"]["set_sizes"] == [1, 2, 3]
    # The input encoding scales by K, not by the set size: B u grows linearly with n.
    inputs = np.array(d["load"]["mean_input"])
    np.testing.assert_allclose(inputs / inputs[0], [1, 2, 3], rtol=0.05)
    assert all(np.isfinite(d["load"]["mean_rate_decode"]))

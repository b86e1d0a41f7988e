"""Mixed selectivity: vector strength and IPR against closed forms, the shuffle control on pure
noise and on a synthetic population of known pure and mixed units, and run() on small agents."""

import gymnasium as gym
import neurogym  # noqa: F401  (registers DelayMatchSample-v0)
import numpy as np
import pytest
import torch

import vwm_tasks  # noqa: F401  (registers the envs)
from analysis.neural.selectivity import (
    participation_ratio,
    run,
    selectivity_matrix,
    selectivity_with_chance,
    unavailable,
    vector_strength,
)
from vwm_agents.models.dale_rnn import DaleRNN
from vwm_agents.models.gru import GRUAgent

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
    d = result.to_dict()
    assert d["summary"]["IPR_bounds"] == [1 / 3, 1.0]
    # IPR is reported only for selective neurons
    reported = [v is not None for v in d["IPR"]]
    assert reported == list(result.selective_neurons & np.isfinite(result.ipr))


class PureNoise(torch.nn.Module):
    """An 'agent' whose states are non-negative noise that ignores its input."""

    def __init__(self, n_states: int) -> None:
        super().__init__()
        self.n_states = n_states
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, ob, *, noise=True, generator=None):
        states = torch.rand(*ob.shape[:2], self.n_states, generator=generator) * self.scale
        return ob.new_zeros(*ob.shape[:2], 6), states


def test_pure_noise_network_is_selective_at_chance_only():
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    n_states, k = 200, 3
    result = run(PureNoise(n_states), env, n_trials=150, seed=0, n_shuffles=200)
    pairs = n_states * k
    fraction = result.selective.mean()
    # each (neuron, slot) pair exceeds its own 95th percentile of chance with probability 0.05,
    # independently (different neurons; different slots use disjoint trials)
    assert abs(fraction - 0.05) < 4 * np.sqrt(0.05 * 0.95 / pairs)
    d = result.to_dict()["summary"]
    assert d["R_mean"] == pytest.approx(d["R_chance_mean"], rel=0.1)
    # untuned neurons have near-equal chance R in every slot: their chance IPR is high ("mixed")
    assert d["IPR_chance_mean"] > 0.7


def _population(n_trials, k, rng):
    theta = rng.uniform(-np.pi, np.pi, (n_trials, k))
    presence = np.zeros((n_trials, k), bool)
    presence[np.arange(n_trials), rng.permutation(np.arange(n_trials) % k)] = True
    slot = presence.argmax(1)
    shown = theta[np.arange(n_trials), slot]
    tuned = 10 + 6 * np.cos(shown - 0.3)  # a strongly tuned response to the shown angle
    pure = [np.where(slot == j, tuned, 10.0) for j in range(k)]  # one per slot
    mixed = [tuned, tuned]  # tuned whichever slot holds the item
    silent_to_angle = [np.full(n_trials, 10.0), np.full(n_trials, 10.0)]
    rates = np.stack(pure + mixed + silent_to_angle, 1)
    rates = rates + rng.gamma(4.0, 0.5, rates.shape)  # noise with mean 2
    return rates, theta, presence


def test_known_pure_and_mixed_units_are_recovered():
    rng = np.random.default_rng(4)
    k = 3
    rates, theta, presence = _population(600, k, rng)
    result = selectivity_with_chance(rates, theta, presence, n_shuffles=200, rng=rng)
    for j in range(k):  # pure unit j: selective for slot j only, IPR 1/K
        assert result.selective[j].tolist() == [s == j for s in range(k)]
    assert result.selective[k : k + 2].all()  # mixed units: every slot
    assert result.ipr[k : k + 2] == pytest.approx(1.0, abs=0.02)
    # A pure unit's R in the other slots is at chance, not 0 (the resultant of a finite set of
    # random angles is ~1/sqrt(trials)), so its IPR lies above 1/K, but below the IPR it has
    # at chance (tuning removed) and below the mixed units'.
    assert np.all(result.ipr[:k] < result.chance_ipr[:k])
    assert np.all(result.ipr[:k] < result.ipr[k : k + 2].min() - 0.2)
    d = result.to_dict()["summary"]
    # the two untuned units count only where chance makes them selective (5% per slot)
    assert d["n_mixed"] == 2 and k <= d["n_pure"] <= k + 2


def test_gru_states_are_shifted_to_non_negative():
    env = gym.make("VWMRecall-v0", max_items=2, timing=TIMING)
    assert unavailable(GRUAgent(6, 4, n_hidden=8), env) is None
    assert unavailable(GRUAgent(3, 3), gym.make("DelayMatchSample-v0")).startswith(
        "selectivity: needs a VWM recall task; this run trained DelayMatchSample-v0"
    )
    torch.manual_seed(0)
    result = run(GRUAgent(6, 4, n_hidden=8), env, n_trials=40, seed=0, n_shuffles=50)
    assert result.state_shift is not None and result.state_shift.shape == (8,)
    assert np.all((result.r_matrix >= 0) & (result.r_matrix <= 1))


def test_n_shuffles_setting_changes_the_chance_level():
    # analysis.selectivity.n_shuffles reaches run(): more shuffles, another estimate of the
    # 95th percentile of chance R (same rates, same angles).
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=16)
    few = run(model, env, n_trials=30, seed=0, n_shuffles=20)
    many = run(model, env, n_trials=30, seed=0, n_shuffles=400)
    np.testing.assert_array_equal(few.r_matrix, many.r_matrix)
    assert (few.n_shuffles, many.n_shuffles) == (20, 400)
    assert not np.allclose(few.chance_threshold, many.chance_threshold)


def test_silent_neurons_are_counted_and_excluded_and_ipr_has_an_effect_size():
    rng = np.random.default_rng(0)
    n_trials, k = 400, 2
    theta = rng.uniform(-np.pi, np.pi, (n_trials, k))
    presence = np.zeros((n_trials, k), bool)
    presence[np.arange(n_trials), np.arange(n_trials) % k] = True
    angle = theta[presence]
    tuned = 5.0 + 4.0 * np.cos(angle)  # tuned to whichever slot holds the item: mixed
    silent = 0.01 * (1.0 + np.cos(angle))  # tuned, but at 0.01 Hz
    rates = np.stack([tuned, tuned, silent, silent], 1)
    result = selectivity_with_chance(rates, theta, presence, n_shuffles=50, rng=rng, min_rate=0.1)
    summary = result.to_dict()["summary"]
    assert summary["n_silent"] == 2
    assert not result.selective[2:].any() and result.selective[:2].all()
    assert summary["n_selective"] == 2
    effect = summary["IPR_minus_chance"]
    assert effect["n"] == 2 and effect["mean"] == pytest.approx(
        np.mean(result.ipr[:2] - result.chance_ipr[:2])
    )
    unfiltered = selectivity_with_chance(rates, theta, presence, n_shuffles=50, rng=1)
    assert unfiltered.to_dict()["summary"]["n_selective"] == 4  # the old count: silent included

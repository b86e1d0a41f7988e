"""Variable precision in the input (task option ``item_gain``): the gain's distribution, its
budget, its place in the trial, and that the option off changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from vwm_tasks.item_gain import ItemGain
from vwm_tasks.recall import VWMRecall, replay_kwargs


def _presence(n: int, k: int = 8, rows: int = 20_000) -> np.ndarray:
    presence = np.zeros((rows, k), dtype=bool)
    presence[:, :n] = True
    return presence


@pytest.mark.parametrize("n", [1, 3, 8])
def test_gain_is_gamma_with_mean_total_over_n_and_variance_mean_times_scale(n):
    gain = ItemGain(scale=0.05)
    g = gain.draw(np.random.default_rng(0), _presence(n))
    shown = g[:, :n].ravel()
    w = 1.0 / n
    assert np.all(g[:, n:] == 0)  # absent slots get nothing
    assert shown.mean() == pytest.approx(w, rel=0.01)
    assert shown.var() == pytest.approx(w * 0.05, rel=0.05)
    # the whole distribution: gamma(shape w / scale, scale)
    assert stats.kstest(shown[:5000], stats.gamma(w / 0.05, scale=0.05).cdf).pvalue > 0.01


def test_normalised_budget_is_fixed_on_average_and_unnormalised_gain_is_per_item():
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 8):
        total = ItemGain(scale=0.05, total=1.5).draw(rng, _presence(n)).sum(axis=1)
        assert total.mean() == pytest.approx(1.5, rel=0.01)  # shared: the same total at every n
        per_item = ItemGain(scale=0.05, normalise=False).draw(rng, _presence(n))[:, :n]
        assert per_item.mean() == pytest.approx(1.0, rel=0.01)  # not shared: 1 per item
    # with a fixed scale, a shared total leaves more items near 0 as n grows (the guesses)
    low = [np.mean(ItemGain(0.05).draw(rng, _presence(n))[:, :n] < 0.1) for n in (2, 4, 8)]
    assert low[0] < low[1] < low[2]


def test_scale_zero_is_the_deterministic_share():
    g = ItemGain(scale=0.0).draw(np.random.default_rng(0), _presence(4, rows=3))
    assert np.array_equal(g[:, :4], np.full((3, 4), 0.25)) and np.all(g[:, 4:] == 0)


def test_stimulus_channels_are_scaled_by_the_gain_in_batches_and_single_trials():
    env = VWMRecall(max_items=4, item_gain={"scale": 0.05})
    plain = VWMRecall(max_items=4)
    batch = env.sample_batch(64, np.random.default_rng(3))
    same = plain.sample_batch(64, np.random.default_rng(3))
    # the gain is drawn after every other draw: the trials are otherwise the same
    for name in ("theta", "theta_input", "presence", "set_size"):
        assert np.array_equal(getattr(batch, name), getattr(same, name))
    assert same.item_gain is None and batch.item_gain.shape == (64, 4)
    step = batch.epochs["stimulus"][0, 0]
    expected = same.ob[:, step] * np.repeat(batch.item_gain, 3, axis=1).astype(np.float32)
    np.testing.assert_allclose(batch.ob[:, step], expected, rtol=1e-6)
    # a batch trial rebuilt one at a time (forced parameters) is the same trial
    for i in (0, 5):
        env.new_trial(**replay_kwargs(batch, i))
        np.testing.assert_array_equal(env.ob, batch.ob[i, : len(env.ob)])
    # the compact form expands to the same tensors
    compact = env.sample_batch(8, np.random.default_rng(4), dense=False)
    dense = env.sample_batch(8, np.random.default_rng(4))
    ob, _, _ = env.batch_tensors(compact)
    np.testing.assert_array_equal(ob.numpy(), dense.ob)


def test_single_trials_draw_a_gain_and_repeat_from_the_env_seed():
    env = VWMRecall(max_items=8, item_gain={"scale": 0.05})
    env.seed(7)
    first = env.new_trial()
    env.seed(7)
    again = env.new_trial()
    assert np.array_equal(first["item_gain"], again["item_gain"])
    assert np.all(first["item_gain"][~first["presence"]] == 0)
    assert np.all(first["item_gain"][first["presence"]] > 0)


def test_off_by_default_and_bad_values_name_the_key():
    assert VWMRecall().item_gain is None
    assert "item_gain" not in VWMRecall(max_items=2).new_trial()
    with pytest.raises(ValueError, match="item_gain.scale: must be a finite number >= 0"):
        VWMRecall(item_gain={"scale": -1})
    with pytest.raises(ValueError, match="item_gain.total: must be a finite number > 0"):
        VWMRecall(item_gain={"scale": 0.1, "total": 0})
    with pytest.raises(ValueError, match="item_gain keys must be in"):
        VWMRecall(item_gain={"scale": 0.1, "shape": 2})
    with pytest.raises(ValueError, match="item_gain.scale: required"):
        VWMRecall(item_gain={})
    with pytest.raises(ValueError, match="this env has no item_gain option"):
        VWMRecall(max_items=2).new_trial(item_gain=[1.0, 1.0])

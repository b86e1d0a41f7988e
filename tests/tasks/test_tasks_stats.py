"""Statistics of the sampled trials, with tolerances from standard errors (fixed seeds)."""

import numpy as np
import pytest
from scipy import stats

from vwm_tasks.encoding import decode_input_angles, wrap_angle
from vwm_tasks.recall import VWMRecall
from vwm_tasks.recall_cued import VWMRecallCued


def test_ilc_noise_constant_within_trial_and_of_right_spread():
    sd = 0.1
    env = VWMRecall(ilc_noise=sd)
    env.seed(0)
    noise = []
    for _ in range(1000):
        trial = env.new_trial()
        stimulus = env.ob[env.start_ind["stimulus"] : env.end_ind["stimulus"]]
        assert (stimulus == stimulus[0]).all()  # one draw per trial, held over the epoch
        shown = decode_input_angles(stimulus[0].astype(float))[trial["presence"]]
        np.testing.assert_allclose(
            wrap_angle(shown - trial["theta_input"][trial["presence"]]), 0, atol=1e-5
        )
        noise.append(wrap_angle(trial["theta_input"] - trial["theta"]))
    batch = VWMRecall(ilc_noise=sd).sample_batch(2000, rng=0, dense=False)
    for draws in (np.concatenate(noise), wrap_angle(batch.theta_input - batch.theta).ravel()):
        n = draws.size
        # SE of a normal sample's SD is sd / sqrt(2 (n - 1)); of its mean, sd / sqrt(n)
        assert abs(draws.std(ddof=1) - sd) < 4 * sd / np.sqrt(2 * (n - 1))
        assert abs(draws.mean()) < 4 * sd / np.sqrt(n)


def test_no_ilc_noise_shows_the_clean_angle():
    env = VWMRecall(ilc_noise=0.0)
    trial = env.new_trial()
    np.testing.assert_allclose(wrap_angle(trial["theta_input"] - trial["theta"]), 0, atol=1e-12)


@pytest.mark.parametrize("route", ["new_trial", "sample_batch"])
def test_set_size_frequencies_and_angles(route):
    set_sizes = [1, 4, 7]
    env = VWMRecall(set_sizes=set_sizes, max_items=8)
    n = 3000
    if route == "new_trial":
        env.seed(2)
        trials = [env.new_trial() for _ in range(n)]
        set_size = np.array([t["set_size"] for t in trials])
        presence = np.array([t["presence"] for t in trials])
        theta = np.array([t["theta"] for t in trials])
    else:
        batch = env.sample_batch(n, rng=2, dense=False)
        set_size, presence, theta = batch.set_size, batch.presence, batch.theta
    observed = np.array([(set_size == s).sum() for s in set_sizes])
    chi2 = stats.chisquare(observed).statistic
    assert chi2 < stats.chi2.ppf(0.9999, len(set_sizes) - 1)
    np.testing.assert_array_equal(presence.sum(1), set_size)  # distinct slots
    # each slot equally likely: expected frequency E[n]/K, binomial SE
    p = np.mean(set_sizes) / 8
    assert np.all(np.abs(presence.mean(0) - p) < 4 * np.sqrt(p * (1 - p) / n))
    # angles uniform on the full circle in every slot
    for slot in range(8):
        assert stats.kstest(theta[:, slot], stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-4


def test_random_responder_is_at_chance():
    env = VWMRecall(dt=50)  # coarse steps: the decode-averaged report is still uniform
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (100_000, env.action_space.shape[0]))
    errors = []
    for action in actions:
        _, _, _, _, info = env.step(action)
        if info["new_trial"]:
            errors.append(np.pi * (1 - info["performance"]))  # the trial's mean |error|
            if len(errors) == 300:
                break
    errors = np.array(errors)
    se = errors.std(ddof=1) / np.sqrt(errors.size)
    assert abs(errors.mean() - np.pi / 2) < 3 * se


def test_cued_probe_uniform_over_present_slots():
    env = VWMRecallCued(set_sizes=[4], max_items=4)
    batch = env.sample_batch(4000, rng=0, dense=False)
    assert batch.presence[np.arange(4000), batch.probe].all()
    counts = np.bincount(batch.probe, minlength=4)
    assert stats.chisquare(counts).statistic < stats.chi2.ppf(0.9999, 3)
    env.seed(0)
    looped = np.bincount([env.new_trial()["probe"] for _ in range(1000)], minlength=4)
    assert stats.chisquare(looped).statistic < stats.chi2.ppf(0.9999, 3)

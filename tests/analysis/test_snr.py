"""SNR: closed forms on synthetic point clouds, the dB slope, and run() on an untrained model."""

import gymnasium as gym
import neurogym  # noqa: F401  (registers DelayMatchSample-v0)
import numpy as np
import pytest
import torch

import vwm_tasks  # noqa: F401  (registers the envs)
from analysis.neural.snr import (
    bootstrap_db,
    db_slope,
    run,
    slope_uncertainty,
    snr_from_points,
    snr_from_stimuli,
)
from vwm_agents.models.dale_rnn import DaleRNN

TIMING = {"init": 20, "stimulus": 100, "delay": 100, "decode": 100}


def test_snr_of_gaussian_cloud_matches_closed_form():
    rng = np.random.default_rng(0)
    trials, steps = 4000, 5
    signal = np.array([3.0, -4.0])  # |signal|^2 = 25
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])  # trace 3
    points = signal + rng.multivariate_normal([0, 0], cov, (trials, steps))
    stats = snr_from_points(points)
    n = trials * steps
    # SE of a sample variance is sigma^2 sqrt(2 / (n - 1)); of the mean, sigma / sqrt(n).
    assert np.allclose(stats.signal, signal, atol=5 * np.sqrt(2.0 / n))
    assert stats.noise1_power == pytest.approx(3.0, abs=5 * np.sqrt(2 * (4 + 1 + 2 * 0.36) / n))
    # independent steps: the time-averaged covariance is cov / steps
    assert stats.noise2_power == pytest.approx(
        3.0 / steps, abs=5 * np.sqrt(2 * 5.72 / trials) / steps
    )
    assert stats.snr1 == pytest.approx(stats.signal_magnitude**2 / stats.noise1_power)
    assert stats.snr1_db == pytest.approx(10 * np.log10(25 / 3), abs=0.1)


def test_snr_exact_on_deterministic_cloud():
    # points +-1 around (2, 0) along x only: mean (2, 0), sample variance n/(n-1) in x.
    points = np.array([[[3.0, 0.0]], [[1.0, 0.0]]])
    stats = snr_from_points(points)
    assert np.allclose(stats.signal, [2.0, 0.0])
    assert stats.noise1_power == pytest.approx(2.0)
    assert stats.snr1 == pytest.approx(2.0)


def test_db_slope_is_minus_ten_when_noise_variance_grows_with_set_size():
    rng = np.random.default_rng(1)
    sizes = np.arange(1, 11)
    trials = 2000
    db = []
    for n in sizes:
        cloud = np.array([1.0, 0.0]) + np.sqrt(0.1 * n) * rng.standard_normal((trials, 1, 2))
        db.append(snr_from_points(cloud).snr1_db)
    slope, se = db_slope(sizes, db)
    # dB of a 2-D isotropic power estimate has SD (10 / ln 10) sqrt(1 / (n - 1)).
    sd_db = 10 / np.log(10) * np.sqrt(1 / (trials - 1))
    x = np.log10(sizes)
    slope_se = sd_db / np.sqrt(np.sum((x - x.mean()) ** 2))
    assert slope == pytest.approx(-10.0, abs=4 * slope_se)
    assert se == pytest.approx(slope_se, rel=1.0)


def test_signal_is_the_projection_on_the_true_orientation():
    rng = np.random.default_rng(3)
    noise = 0.5 * rng.standard_normal((8, 50, 4, 2))  # 8 stimuli, 50 repeats, 4 steps
    on_truth = snr_from_stimuli(noise + [1.0, 0.0])
    assert on_truth.snr1_db == pytest.approx(10 * np.log10(1 / 0.5), abs=0.3)
    sideways = snr_from_stimuli(noise + [0.0, 1.0])  # long mean, pointing 90 degrees off
    assert abs(sideways.signal_magnitude) < 0.05 and sideways.snr1 < 0.01
    assert snr_from_stimuli(noise + [-1.0, 0.0]).snr1_db == -np.inf  # pointing away
    draws = bootstrap_db(
        {1: on_truth, 2: snr_from_stimuli(noise * 2 + [1.0, 0.0])}, 100, np.random.default_rng(0)
    )
    assert draws["snr1"].shape == (100, 2) and np.all(np.isfinite(draws["snr1"]))
    se, ci = slope_uncertainty([1, 2], draws["snr1"])
    assert se > 0 and ci[0] < -20 < ci[1]  # 4x the noise power per 10^0.3: -20 dB/decade


def test_bad_points_shape_is_rejected():
    with pytest.raises(ValueError, match="points must be"):
        snr_from_points(np.zeros((5, 3)))


def test_run_on_untrained_model_is_finite_and_well_shaped():
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=32, spike_noise_factor=0.1)
    result = run(model, env, n_trials=20, seed=0)
    assert result.set_sizes == [1, 2, 3]
    assert result.points[2].shape == (20, 10, 2)
    d = result.to_dict()
    assert set(d["per_set_size"]) == {"1", "2", "3"}
    assert result.n_stimuli == 5 and result.repeats == 4  # 20 trials: 5 stimuli x 4 repeats
    for stats in result.stats.values():
        # The signal is the projection on the true orientation: an untrained model's decode
        # points anywhere, so its SNR may be 0 (-inf dB); the old |mean| signal was always
        # finite, which is why this test used to assert finite dB.
        assert stats.signal_magnitude == pytest.approx(stats.signal[0])
        assert not np.isnan(stats.snr1_db) and not np.isnan(stats.snr2_db)
        # averaging over 10 steps cannot increase the noise power beyond the per-step one
        assert stats.noise2_power <= stats.noise1_power * (1 + 1e-9)
    assert set(d["slope_db_per_decade"]) >= {"SNR1", "SNR1_se", "SNR1_ci95"}


def test_side_views_and_sample_trajectories_on_a_dale_rnn():
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=32, spike_noise_factor=0.1)
    result = run(model, env, n_trials=20, seed=0)
    assert result.noise_source == "agent" and result.input_noise == 0.0
    w_eff = model.W_eff.detach().double().numpy()
    for n in (1, 2, 3):
        rate, recurrent = result.side_views["rate"][n], result.side_views["recurrent_input"][n]
        # the recurrent input is linear in the rates: its mean is W_eff times the mean rate
        np.testing.assert_allclose(recurrent.mean, w_eff @ rate.mean, atol=1e-9)
        assert np.all(rate.sd > 0)  # spiking noise makes repeats differ
        # the external input carries no noise (ILC noise is 0): SD 0 across repeats
        assert np.all(result.side_views["external_input"][n].sd < 1e-12)
        assert result.sample_rates[n].shape == (3, 32, 5)
        assert result.sample_decoded[n].shape == (3, 32, 2)
    # external input grows with the number of items shown
    totals = [result.side_views["external_input"][n].mean.sum() for n in (1, 2, 3)]
    assert totals[0] < totals[1] < totals[2]


def test_gru_gets_the_task_input_noise_or_a_reason():
    from analysis.neural.snr import unavailable
    from vwm_agents.models.gru import GRUAgent

    torch.manual_seed(0)
    gru = GRUAgent(9, 6, n_hidden=16)
    quiet = gym.make("VWMRecall-v0", max_items=3, ilc_noise=0.0, timing=TIMING)
    assert unavailable(gru, quiet) == (
        "snr: needs noise; GRUAgent has none of its own and the task's ilc_noise is 0"
    )
    noisy = gym.make("VWMRecall-v0", max_items=3, ilc_noise=0.1, timing=TIMING)
    assert unavailable(gru, noisy) is None
    result = run(gru, noisy, n_trials=20, seed=0)
    assert result.noise_source == "input" and result.input_noise == 0.1
    assert all(np.isfinite(result.stats[n].snr1_db) for n in (1, 2, 3))
    assert set(result.side_views) == {"rate"}
    assert unavailable(gru, gym.make("DelayMatchSample-v0")).startswith(
        "snr: needs a VWM recall task; this run trained DelayMatchSample-v0"
    )

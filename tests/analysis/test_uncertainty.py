"""The model's own uncertainty: bootstrap SEs (seeded; whole trials or single items) of its error
statistics and mixture parameters, in the JSON, in the distance and in the figures."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from analysis.behaviour import mixture
from analysis.behaviour.errors import error_statistics
from analysis.behaviour.mixture import fit_by_set_size
from analysis.core.bootstrap import resample_indices
from analysis.human import comparison as human
from analysis.human.distance import HumanReference, human_distance
from analysis.viz.human import figure_human_comparison


def test_resampling_whole_trials_keeps_each_trials_items_together():
    trial = np.repeat([10, 11, 12], 2)[[0, 2, 4, 1, 3, 5]]  # items interleaved
    idx = resample_indices(trial, 50, np.random.default_rng(0), "trials")
    assert idx.shape == (50, 6)
    for row in idx:
        drawn = trial[row]
        assert all(np.sum(drawn == t) % 2 == 0 for t in (10, 11, 12))
    with pytest.raises(ValueError, match="same number of items"):
        resample_indices(np.array([0, 0, 1]), 5, np.random.default_rng(0), "trials")


def test_bootstrap_se_of_mae_matches_its_sampling_error_and_is_seeded():
    rng = np.random.default_rng(1)
    errors = rng.vonmises(0.0, 4.0, 2000)
    stats = error_statistics(errors, 2, n_bootstrap=300, seed=3).per_set_size[2]
    expected = np.std(np.abs(errors), ddof=1) / math.sqrt(errors.size)
    assert stats.se["mae"] == pytest.approx(expected, rel=0.15)
    assert (
        set(stats.se)
        == set(stats.se_items)
        >= {"mae", "linear_sd", "circular_kurtosis", "excess_kurtosis", "circular_sd"}
    )
    again = error_statistics(errors, 2, n_bootstrap=300, seed=3).per_set_size[2]
    assert again.se == stats.se


def test_correlated_items_of_a_trial_widen_the_trials_se():
    # every trial reports the same error for its 4 items: 4 copies carry one error's information
    rng = np.random.default_rng(2)
    errors = np.repeat(rng.vonmises(0.0, 4.0, 500), 4)
    trial = np.repeat(np.arange(500), 4)
    stats = error_statistics(errors, 4, trial=trial, n_bootstrap=300, seed=0).per_set_size[4]
    assert stats.se["mae"] / stats.se_items["mae"] == pytest.approx(2.0, rel=0.2)


@pytest.fixture(scope="module")
def guesses():
    rng = np.random.default_rng(4)
    set_size = np.repeat([1, 2], 600)
    guess = rng.random(1200) < np.repeat([0.3, 0.1], 600)  # the guess rate falls: reported
    errors = np.where(guess, rng.uniform(-np.pi, np.pi, 1200), rng.vonmises(0, 8.0, 1200))
    return errors, set_size


def test_mixture_parameters_carry_bootstrap_ses_and_report_their_uncertainty(guesses):
    errors, set_size = guesses
    result = fit_by_set_size(errors, set_size, n_bootstrap=30, seed=0)
    out = result.to_dict()
    se = out["2"]["se"]["vm_uniform"]["p_guess"]
    assert 0.005 < se < 0.05  # binomial sqrt(.1 * .9 / 600) = 0.012, inflated by the fit
    assert set(out["1"]["se"]) == {"vm_uniform", "gauss_uniform", "swap"}
    uncertainty = out["2"]["uncertainty"]
    assert uncertainty["guess_rate_falls_from"] == 1
    assert uncertainty["guess_rate_fall"] == pytest.approx(
        out["1"]["vm_uniform"]["p_guess"] - out["2"]["vm_uniform"]["p_guess"]
    )
    assert uncertainty["guess_rate_fall_z"] > 3
    assert uncertainty["guess_rate_gauss_minus_vm"] == pytest.approx(
        out["2"]["gauss_uniform"]["p_guess"] - out["2"]["vm_uniform"]["p_guess"]
    )


def test_bootstrap_of_pure_guessing_starts_inside_the_simplex_and_warns_nothing():
    # All responses uniform, with non-targets: the full fit sits at p_guess ~ 1, from where a
    # start that floors p_nontarget and p_guess alone had a negative target weight (log of it:
    # nan, warned), and some resamples fit kappa = 0, whose von Mises SD is infinite.
    rng = np.random.default_rng(0)
    n = 10  # ten trials of three items: the case the warning came from (a tiny test run)
    errors = rng.uniform(-np.pi, np.pi, n)
    nontargets = rng.uniform(-np.pi, np.pi, (n, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = fit_by_set_size(errors, np.full(n, 3), nontargets, n_bootstrap=20, seed=0)
    se = result.to_dict()["3"]["se"]
    assert np.isfinite(se["swap"]["p_guess"]) and np.isfinite(se["vm_uniform"]["p_guess"])
    p_n, p_u = mixture._start_weights(0.01, 0.99, nontargets=True)
    assert min(p_n, p_u, 1 - p_n - p_u) >= mixture._START_FLOOR / (1 + 2 * mixture._START_FLOOR)
    assert p_n + p_u < 1


def test_the_models_se_enters_the_distance_in_quadrature():
    reference = HumanReference(
        set_sizes=[1],
        mean={"mae": [0.5], "guess_rate": [0.1], "excess_kurtosis": [0.0]},
        se={"mae": [0.03], "guess_rate": [0.02], "excess_kurtosis": [0.1]},
        n_participants=6,
        se_source="between participants",
    )
    model = {1: {"mae": 0.6, "guess_rate": 0.1, "excess_kurtosis": 0.0}}
    exact = human_distance(model, reference)
    assert exact.per_set_size[0]["mae"] == pytest.approx(0.1 / 0.03)
    noisy = human_distance(
        model, reference, {1: {"mae": 0.04, "guess_rate": 0.0, "excess_kurtosis": 0.0}}
    )
    assert noisy.per_set_size[0]["mae"] == pytest.approx(0.1 / 0.05)
    assert "bootstrap" in noisy.to_dict()["model_se_source"]
    assert "SE_model" in noisy.to_dict()["definition"]


def test_comparison_json_and_figure_show_the_models_ses(guesses):
    errors, set_size = guesses
    summary = human.model_summary(
        error_statistics(errors, set_size, n_bootstrap=50),
        fit_by_set_size(errors, set_size, n_bootstrap=20),
    )
    result = human.human_comparison(summary, human.load_human_summary())
    assert set(result.to_dict()["model_se"]) >= {"mae", "p_guess", "vm_sd", "excess_kurtosis"}
    fig = figure_human_comparison(result)
    ax = fig.axes[0]  # the first panel: linear SD (the MAE is the report's set-size figure)
    assert "linear SD" in ax.get_ylabel()
    bars = ax.containers[1].lines[2][0].get_segments()
    heights = [seg[1, 1] - seg[0, 1] for seg in bars]
    np.testing.assert_allclose(heights, 2 * np.array(result.model_se["linear_sd"]), rtol=1e-9)

"""Human data: the shipped raw files, the loader (it reproduces the published table), the shipped
summary (computed from the files), the comparison with its SEs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.behaviour.errors import error_statistics
from analysis.behaviour.mixture import fit_vm_uniform
from analysis.human import comparison as human
from analysis.human import data as human_data

# Mean over the 6 participants of each one's statistic (van den Berg et al. 2012, orientation).
README_TABLE = {  # set size: (MAE rad, -2 ln R)
    1: (0.236, 0.100),
    2: (0.350, 0.223),
    3: (0.492, 0.464),
    4: (0.652, 0.816),
    5: (0.752, 1.063),
    6: (0.884, 1.425),
    7: (1.004, 1.802),
    8: (1.062, 2.057),
}


@pytest.fixture(scope="module")
def trials() -> human_data.HumanTrials:
    return human_data.load_vandenberg2012()


@pytest.fixture(scope="module")
def people(trials) -> human.HumanStatistics:
    return human.human_statistics(trials)


def test_raw_files_ship_with_the_package():
    folder = human_data.find_human_data()
    assert folder == human_data.shipped_data_dir()
    assert len(list(folder.glob("*.mat"))) == 24  # 6 participants x 4 sessions
    licence = (folder / "LICENSE-MemToolbox").read_text()
    assert "Redistribution and use in source and binary forms" in licence
    assert "van den Berg" in (folder / "README.md").read_text()


def test_loader_shapes(trials):
    assert trials.errors.shape == (15_360,)
    assert trials.participants == ["AA", "ACO", "ELA", "RGG", "TCS", "WJM"]
    assert np.all(np.abs(trials.errors) <= np.pi)
    # Set size N fills exactly N - 1 non-target columns.
    filled = np.isfinite(trials.nontarget_errors).sum(axis=1)
    np.testing.assert_array_equal(filled, trials.set_size - 1)
    # Doubling: errors are response - target on the full circle, consistent with the angles.
    np.testing.assert_allclose(
        np.cos(trials.errors), np.cos(trials.response - trials.target), atol=1e-12
    )


def test_loader_reproduces_readme_table(trials):
    summary = human.human_statistics(trials, fit=False).summary
    assert summary.set_sizes == list(README_TABLE)
    for i, n in enumerate(summary.set_sizes):
        mae, variance = README_TABLE[n]
        # The README rounds to 3 decimals.
        assert summary.mae[i] == pytest.approx(mae, abs=0.0015), n
        assert summary.circular_variance[i] == pytest.approx(variance, abs=0.0015), n


def test_nontarget_errors_are_not_the_target(trials):
    # Orientation responses are near the target, not near a random other item: the mean
    # |error| to non-targets is near chance (pi/2) at set size 2 while the target's is 0.35.
    rows = trials.set_size == 2
    assert np.mean(np.abs(trials.nontarget_errors[rows, 0])) > 1.3


def test_shipped_summary_is_computed_from_the_files(people):
    """The summary shipped for quick overlays equals human_statistics() of the shipped files
    (rounded to 6 decimals), every field and every SE."""
    shipped, computed = human.load_human_summary(), people.summary
    for name in human.SUMMARY_FIELDS:
        np.testing.assert_allclose(
            getattr(shipped, name), getattr(computed, name), atol=2e-6, err_msg=name
        )
        np.testing.assert_allclose(
            shipped.standard_errors[name], computed.standard_errors[name], atol=2e-6, err_msg=name
        )


def test_guess_rate_fits_match_published_values(trials):
    """Per-participant von Mises + uniform fits, averaged (van den Berg et al. 2012 data as
    refitted by van den Berg, Awh & Ma 2014, experiment E9: 0.235 and 0.553)."""
    for n, g in ((4, 0.235), (8, 0.553)):
        rows = trials.set_size == n
        fits = [
            fit_vm_uniform(trials.errors[rows & (trials.participant == p)])
            for p in trials.participants
        ]
        assert np.mean([f.p_guess for f in fits]) == pytest.approx(g, abs=0.005)


def test_people_have_excess_kurtosis_and_rising_guessing(people):
    summary = people.summary
    # Excess circular kurtosis over a matched von Mises (the human signature): every one of the
    # 6 participants at every set size >= 2 (42 values; a symmetric null gives this with
    # probability 2^-42).
    for p, statistics in people.per_participant.items():
        for n in range(2, 9):
            assert statistics.per_set_size[n].excess_kurtosis > 0, (p, n)
    assert summary.p_guess[-1] - summary.p_guess[0] > 0.3
    # Linear SD of errors on [-pi, pi) is close to the circular SD while errors are small.
    assert summary.linear_sd[0] == pytest.approx(summary.circular_sd[0], rel=0.15)


def test_shipped_summary_has_citation_and_all_set_sizes():
    summary = human.load_human_summary()
    assert summary.set_sizes == list(range(1, 9))
    assert "van den Berg" in summary.meta["citation"]
    assert "licence" in summary.meta["data_source"].lower()
    for name in human.SUMMARY_FIELDS:
        assert all(v is not None for v in getattr(summary, name)), name
    # Shape of human behaviour: errors and guessing rise with set size.
    assert np.all(np.diff(summary.mae) > 0)
    assert summary.p_guess[-1] - summary.p_guess[0] > 0.3


def test_summary_round_trip():
    summary = human.load_human_summary()
    again = human.BehaviourSummary.from_dict(json.loads(json.dumps(summary.to_dict())))
    assert again.to_dict() == summary.to_dict()


def test_human_comparison_ratios():
    people = human.load_human_summary()
    rng = np.random.default_rng(0)
    set_size = np.repeat([1, 2, 9], 2000)  # 9: no human data, left out of the comparison
    errors = rng.vonmises(0.0, 20.0, set_size.size) * 2  # ~2x human-ish spread
    stats = error_statistics(errors, set_size)
    model = human.model_summary(stats)
    model.p_guess = [0.01, 0.0, 0.5]
    result = human.human_comparison(model, people)
    assert result.set_sizes == [1, 2]
    assert result.ratio["mae"][0] == pytest.approx(stats.per_set_size[1].mae / people.mae[0])
    assert result.ratio["circular_variance"][1] == pytest.approx(
        stats.per_set_size[2].circular_variance / people.circular_variance[1]
    )
    assert result.ratio["p_guess"][0] == pytest.approx(0.01 / people.p_guess[0])
    json.dumps(result.to_dict(), allow_nan=False)


def test_human_comparison_needs_shared_set_sizes():
    model = human.BehaviourSummary(set_sizes=[12], mae=[1.0], circular_variance=[1.0])
    with pytest.raises(ValueError, match="model_stats"):
        human.human_comparison(model, human.load_human_summary())


def test_missing_data_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no van den Berg"):
        human_data.load_vandenberg2012(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        human_data.load_people(tmp_path / "nope.csv")


def test_comparison_carries_people_ses_and_every_statistic():
    people = human.load_human_summary()
    rng = np.random.default_rng(1)
    set_size = np.repeat([1, 4], 1000)
    stats = error_statistics(rng.vonmises(0.0, 10.0, set_size.size), set_size)
    result = human.human_comparison(human.model_summary(stats), people)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    for name in (
        "mae",
        "linear_sd",
        "circular_kurtosis",
        "excess_kurtosis",
        "p_guess",
        "vm_sd",
        "p_nontarget",
    ):
        assert len(data["human"][name]) == 2 and len(data["human_se"][name]) == 2, name
        assert all(se > 0 for se in data["human_se"][name][1:]), name
    assert data["human_se"]["mae"][1] == pytest.approx(people.standard_errors["mae"][3])

"""Behavioural and human-comparison figures: built from the results they show (axis data checked),
``figure_<x>`` returns a Figure, ``plot_<name>`` saves and returns paths, no pyplot state."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from analysis.behaviour.errors import error_statistics
from analysis.behaviour.mixture import fit_by_set_size
from analysis.behaviour.performance import PerformanceResult
from analysis.human import comparison as human
from analysis.human.distance import human_distance, observer_statistics
from analysis.viz.behaviour import figure_performance, plot_performance
from analysis.viz.human import (
    PANELS,
    figure_human_comparison,
    figure_human_histograms,
    plot_human,
)


@pytest.fixture(scope="module")
def comparison() -> human.HumanComparison:
    rng = np.random.default_rng(0)
    set_size = np.repeat([1, 2, 4], 400)
    errors = rng.vonmises(0.0, np.repeat([20.0, 8.0, 3.0], 400))
    people = human.load_human_summary()
    result = human.human_comparison(
        human.model_summary(error_statistics(errors, set_size), fit_by_set_size(errors, set_size)),
        people,
    )
    result.distance = human_distance(
        observer_statistics(errors, set_size), human.reference_from_summary(people)
    )
    edges = np.linspace(-np.pi, np.pi, 13)
    result.histogram_edges = edges.tolist()
    result.model_density = {
        n: np.histogram(errors[set_size == n], edges, density=True)[0].tolist() for n in (1, 2, 4)
    }
    result.human_density = {n: np.full(12, 1 / (2 * np.pi)).tolist() for n in (1, 2, 4)}
    return result


def test_comparison_panels_show_model_and_people_with_ses(comparison):
    fig = figure_human_comparison(comparison)
    assert isinstance(fig, Figure)
    axes = fig.axes
    for ax, name in zip(axes, PANELS, strict=False):
        model_line = ax.lines[0]
        np.testing.assert_allclose(model_line.get_xdata(), [1, 2, 4])
        np.testing.assert_allclose(model_line.get_ydata(), comparison.model[name])
        people_line = ax.containers[0].lines[0]  # errorbar: (data line, caps, bars)
        np.testing.assert_allclose(people_line.get_ydata(), comparison.human[name])
        bars = ax.containers[0].lines[2][0].get_segments()
        heights = [seg[1, 1] - seg[0, 1] for seg in bars]
        np.testing.assert_allclose(heights, 2 * np.array(comparison.human_se[name]), rtol=1e-9)
    z_axis = axes[len(PANELS)]
    heights = [bar.get_height() for bar in z_axis.containers[0]]
    np.testing.assert_allclose(heights, [row["mae"] for row in comparison.distance.per_set_size])


def test_histograms_overlay_model_and_people(comparison):
    fig = figure_human_histograms(comparison)
    for ax, n in zip(fig.axes, (1, 2, 4), strict=False):
        people, model = ax.patches[0], ax.patches[1]
        np.testing.assert_allclose(people.get_data().values, comparison.human_density[n])
        np.testing.assert_allclose(model.get_data().values, comparison.model_density[n])


def test_plot_human_saves_both_figures(comparison, tmp_path):
    paths = plot_human(comparison, tmp_path)
    assert [p.name for p in paths] == [
        "human_statistics_model_vs_people.png",
        "human_error_histograms_model_vs_people.png",
    ]
    assert all(p.stat().st_size > 5000 for p in paths)


def test_performance_figure_shows_the_scores(tmp_path):
    result = PerformanceResult(
        task="T",
        metric="accuracy",
        score=0.6,
        n_trials=10,
        response_epoch="decision",
        by_epoch={"fixation": 1.0, "decision": 0.4, "empty": None},
        by_condition={"ground_truth": {"1": {"score": 0.9, "n": 5}, "2": {"score": 0.3, "n": 5}}},
        chance=0.5,
    )
    fig = figure_performance(result)
    epoch_bars = [bar.get_height() for bar in fig.axes[0].containers[0]]
    # an epoch without a score ("empty") has no bar (it used to be a zero-height NaN bar)
    np.testing.assert_allclose(epoch_bars, [1.0, 0.4])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["fixation", "decision"]
    assert [bar.get_height() for bar in fig.axes[1].containers[0]] == [0.9, 0.3]
    assert plot_performance(result, tmp_path)[0].name == "performance_by_epoch_and_condition.png"


def test_plotting_leaves_pyplot_alone():
    code = (
        "import sys, analysis.viz.behaviour, analysis.viz.human; "
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0

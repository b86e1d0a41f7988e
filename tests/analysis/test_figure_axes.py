"""Every figure the analyses save is fit for a paper: each axis that carries data is labelled
(with its unit where it has one), each colour bar is labelled, and the figure is small enough to
be read at 100 dpi. The figures are caught as they are saved, so a new figure is checked too.
Each caption's numbers come from the analysis' JSON, and its claims are checked against the
figure it describes."""

from __future__ import annotations

import json
import shutil

import pytest
from matplotlib.figure import Figure

MAX_WIDTH_INCHES = 13.0
"""At 100 dpi, 1300 px: a figure wider than a screen shrinks its fonts below readable."""


def _carries_data(ax) -> bool:
    return bool(ax.lines or ax.collections or ax.patches or ax.images or ax.containers)


def _problems(fig: Figure, name: str) -> list[str]:
    problems = []
    if fig.get_figwidth() > MAX_WIDTH_INCHES:
        problems.append(f"{name}: {fig.get_figwidth():.1f} in wide (> {MAX_WIDTH_INCHES})")
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        where = f"{name} axes {i} ({ax.get_title() or ax.get_label()})"
        if getattr(ax, "_colorbar", None) is not None:
            if not (ax.get_ylabel() or ax.get_xlabel()):
                problems.append(f"{where}: colour bar without a label")
            continue
        if not _carries_data(ax) or not ax.axison:
            continue
        if not ax.get_xlabel():
            problems.append(f"{where}: no x label")
        if not ax.get_ylabel():
            problems.append(f"{where}: no y label")
    return problems


@pytest.fixture(scope="module")
def analysed(tiny_run, tmp_path_factory):
    """(run dir, [(file name, Figure)]) of every figure ``python -m analysis`` saves on a tiny
    run."""
    from analysis.__main__ import main as analyse

    run_dir = tmp_path_factory.mktemp("figures") / "run"
    shutil.copytree(tiny_run, run_dir)
    saved = []
    original = Figure.savefig

    def catch(self, fname, *args, **kwargs):
        saved.append((str(fname).rsplit("/", 1)[-1], self))
        return original(self, fname, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", catch)
        analyse([str(run_dir), "--trials", "12", "--no-progress"])
    return run_dir, saved


@pytest.fixture(scope="module")
def saved_figures(analysed):
    return analysed[1]


def _figure(analysed, name):
    return next(fig for saved, fig in analysed[1] if saved == name)


def _json(analysed, name):
    return json.loads((analysed[0] / "analysis" / f"{name}.json").read_text())


def test_every_saved_figure_labels_its_axes_and_colour_bars(saved_figures):
    assert len(saved_figures) >= 15
    problems = [p for name, fig in saved_figures for p in _problems(fig, name)]
    assert problems == [], "\n".join(problems)


def test_every_caption_with_facts_reads_them_from_its_analysis_json(analysed):
    from analysis.registry import ANALYSES
    from analysis.report.captions import CAPTIONS, caption_for

    run_dir = analysed[0]
    for name, _ in analysed[1]:
        stem = name.removesuffix(".png")
        if stem not in CAPTIONS or CAPTIONS[stem].facts is None:  # (the report's in-memory ones)
            continue
        row = next(
            r
            for r in ANALYSES.values()
            if any(stem == p or stem.startswith(p + "_") for p in r.figure_stems)
        )
        result = json.loads((run_dir / "analysis" / row.json_name).read_text())
        assert caption_for(stem, result).what != CAPTIONS[stem].what, stem


def test_error_statistics_caption_names_each_panel(analysed):
    from analysis.report.captions import caption_for

    caption = caption_for("error_statistics", _json(analysed, "errors"))
    for ax in _figure(analysed, "error_statistics.png").axes:
        words = ax.get_ylabel().split(" (")[0].split(" vs ")[0]
        assert words in caption.what, words
    assert "bootstrap SE" in caption.what


def test_performance_caption_states_chance_only_where_the_figure_draws_it(analysed):
    from analysis.report.captions import caption_for

    result = _json(analysed, "performance")
    caption = caption_for("performance", result)
    fig = _figure(analysed, "performance.png")
    drawn = any(line.get_linestyle() == ":" for ax in fig.axes for line in ax.lines)
    assert drawn == (result["chance"] is not None)
    assert ("no chance level" in caption.what) == (result["chance"] is None)
    n_scored = sum(v is not None for v in result["by_epoch"].values())
    assert len(fig.axes[0].containers[0]) == n_scored


def test_sample_trajectory_caption_names_the_star_it_draws(analysed):
    from analysis.report.captions import caption_for

    fig = _figure(analysed, "snr_sample_trajectories.png")
    stars = [line for ax in fig.axes for line in ax.lines if line.get_gid() == "true"]
    assert stars and all(line.get_marker() == "*" for line in stars)
    what = caption_for("snr_sample_trajectories").what
    assert "star" in what and "dashed" not in what


def test_dn_captions_state_the_json_numbers(analysed):
    from analysis.report.captions import caption_for

    result = _json(analysed, "dn")
    null = result["summation"]["linear_null"]["baseline_subtracted"]["w_sum_mean"]
    assert f"{null:.3f}" in caption_for("dn_sublinearity", result).what
    assert "w1 + w2 = 2" not in caption_for("dn_sublinearity", result).how
    growth = result["load"]["growth_relative_to_set_size_1"]["rate"][-1]
    assert f"x{growth:.1f}" in caption_for("dn_input_vs_rate", result).what
    assert "flat" not in caption_for("dn_input_vs_rate", result).how


def test_human_caption_states_the_distance_and_the_models_se(analysed):
    from analysis.report.captions import caption_for

    result = _json(analysed, "human_comparison")
    what = caption_for("human_comparison", result).what
    assert f"Distance {result['distance']['total']:.1f}" in what
    assert "bootstrap" in what and "inside the human error bars" not in what
    ax = _figure(analysed, "human_comparison.png").axes[0]
    assert len(ax.containers) == 2  # people's SEs and the model's


def test_many_set_sizes_get_a_labelled_colour_bar_instead_of_a_legend_of_shades():
    from analysis.viz.neural import MAX_LEGEND_COLOURS, _set_size_key

    for sizes, bar in ((list(range(1, MAX_LEGEND_COLOURS + 1)), False), (list(range(1, 9)), True)):
        fig = Figure()
        ax = fig.subplots()
        for n in sizes:
            ax.plot([0, 1], [n, n], label=f"set size {n}")
        _set_size_key(fig, ax, sizes)
        colour_bars = [a for a in fig.axes if getattr(a, "_colorbar", None) is not None]
        assert (len(colour_bars) == 1) == bar and (ax.get_legend() is None) == bar
        if bar:
            assert colour_bars[0].get_ylabel() == "set size"
            assert [t.get_text() for t in colour_bars[0].get_yticklabels()] == [
                str(n) for n in sizes
            ]

"""Every figure the analyses save is fit for a paper: each axis that carries data is labelled
(with its unit where it has one), each colour bar is labelled, and the figure is small enough to
be read at 100 dpi. The figures are caught as they are saved, so a new figure is checked too.
Each caption's numbers come from the analysis' JSON, and its claims are checked against the
figure it describes."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from analysis.report.captions import CAPTIONS, caption_for
from analysis.viz.human import figure_set_size

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
        if isinstance(fname, (str, os.PathLike)):  # files, not the report's in-memory PNGs
            saved.append((str(fname).rsplit("/", 1)[-1], self))
        return original(self, fname, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", catch)
        analyse([str(run_dir), "--trials", "12", "--no-progress"])
    return run_dir, saved


@pytest.fixture(scope="module")
def saved_figures(analysed):
    """Every figure the toolkit draws on the tiny run: the analyses' saved files, the report's
    set-size figure, the training curves and a sweep's figure (as ``stem.png``)."""
    from analysis.report.run_files import SET_SIZE_FIGURE, set_size_curve
    from vwm_agents.training.plotting import (
        SWEEP_FIGURE,
        figure_sweep_error_vs_set_size,
        plot_training_history,
    )
    from vwm_agents.training.rundir import read_history

    run_dir, saved = analysed
    curve = set_size_curve(run_dir)
    from vwm_agents.sweep.results import ErrorCurve

    sweep = [
        ErrorCurve({"lr": lr}, [1, 2, 3], [0.2 + lr, 0.4 + lr, 0.6], [0.01, 0.02, 0.02], [3, 3, 3])
        for lr in (0.01, 0.1)
    ]
    return [
        *saved,
        (f"{SET_SIZE_FIGURE}.png", figure_set_size(curve)),
        ("training_history.png", plot_training_history(read_history(run_dir))),
        (SWEEP_FIGURE, figure_sweep_error_vs_set_size(sweep)),
    ]


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

    caption = caption_for("error_sd_and_kurtosis_vs_set_size", _json(analysed, "errors"))
    for ax in _figure(analysed, "error_sd_and_kurtosis_vs_set_size.png").axes:
        words = ax.get_ylabel().split(" (")[0].split(" vs ")[0]
        assert words in caption.what, words
    assert "bootstrap SE" in caption.what


def test_performance_caption_states_chance_only_where_the_figure_draws_it(analysed):
    from analysis.report.captions import caption_for

    result = _json(analysed, "performance")
    caption = caption_for("performance_by_epoch_and_condition", result)
    fig = _figure(analysed, "performance_by_epoch_and_condition.png")
    drawn = any(line.get_linestyle() == ":" for ax in fig.axes for line in ax.lines)
    assert drawn == (result["chance"] is not None)
    assert ("no chance level" in caption.what) == (result["chance"] is None)
    n_scored = sum(v is not None for v in result["by_epoch"].values())
    assert len(fig.axes[0].containers[0]) == n_scored


def test_sample_trajectory_caption_names_the_star_it_draws(analysed):
    from analysis.report.captions import caption_for

    fig = _figure(analysed, "snr_sample_trials_rates_and_decodes.png")
    stars = [line for ax in fig.axes for line in ax.lines if line.get_gid() == "true"]
    assert stars and all(line.get_marker() == "*" for line in stars)
    what = caption_for("snr_sample_trials_rates_and_decodes").what
    assert "star" in what and "dashed" not in what


def test_dn_captions_state_the_json_numbers(analysed):
    from analysis.report.captions import caption_for

    result = _json(analysed, "dn")
    null = result["summation"]["linear_null"]["baseline_subtracted"]
    what = caption_for("dn_two_item_summation_weights", result).what
    for key in ("pooled_w_sum", "pooled_w_sum_se", "w_sum_mean"):
        assert f"{null[key]:.3f}" in what
    assert f"{null['w_sum_median']:.2f}" in what
    assert "w1 + w2 = 2" not in caption_for("dn_two_item_summation_weights", result).how
    growth = result["load"]["growth_relative_to_set_size_1"]["rate"][-1]
    assert f"x{growth:.1f}" in caption_for("dn_input_and_rate_vs_set_size", result).what
    assert "flat" not in caption_for("dn_input_and_rate_vs_set_size", result).how


def test_human_caption_states_the_distance_and_the_models_se(analysed):
    from analysis.report.captions import caption_for

    result = _json(analysed, "human_comparison")
    what = caption_for("human_statistics_model_vs_people", result).what
    assert f"Distance {result['distance']['total']:.1f}" in what
    assert "bootstrap" in what and "inside the human error bars" not in what
    ax = _figure(analysed, "human_statistics_model_vs_people.png").axes[0]
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


# ----------------------------------------------------------------------------------------------
# Every caption's claims against its figure


def _colours_drawn(fig: Figure) -> list[tuple[float, float, float]]:
    from matplotlib.colors import to_rgba_array

    found = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for line in ax.lines:
            if line.get_visible():
                found.extend(to_rgba_array(line.get_color())[:, :3])
                if line.get_marker() not in (None, "None", "", " "):
                    found.extend(to_rgba_array(line.get_markerfacecolor())[:, :3])
        for collection in ax.collections:
            for colours in (collection.get_facecolor(), collection.get_edgecolor()):
                found.extend(to_rgba_array(colours)[:, :3])
            if collection.get_array() is not None and collection.get_cmap() is not None:
                found.extend(collection.get_cmap()(np.linspace(0, 1, 16))[:, :3])
        for patch in ax.patches:
            found.extend(to_rgba_array([patch.get_facecolor(), patch.get_edgecolor()])[:, :3])
        for image in ax.images:
            found.extend(image.get_cmap()(np.linspace(0, 1, 16))[:, :3])
    return [tuple(c) for c in found]


_HUES = {
    "blue": lambda r, g, b: b > 0.55 and b > r + 0.25 and b > g + 0.1,
    "red": lambda r, g, b: r > 0.6 and g < 0.45 and b < 0.45,
    "green": lambda r, g, b: g > 0.45 and g > r + 0.15 and g > b + 0.1,
    "black": lambda r, g, b: max(r, g, b) < 0.15,
    "grey": lambda r, g, b: max(r, g, b) - min(r, g, b) < 0.06 and 0.25 < r < 0.9,
    "cyan": lambda r, g, b: g > 0.6 and b > 0.6 and r < 0.35,
}


def _has_colour(name: str):
    return lambda fig: any(_HUES[name](*c) for c in _colours_drawn(fig))


def _has_line_style(style: str):
    return lambda fig: any(
        line.get_visible() and line.get_linestyle() == style for ax in fig.axes for line in ax.lines
    )


def _has_marker(*markers: str):
    return lambda fig: any(
        line.get_visible() and line.get_marker() in markers for ax in fig.axes for line in ax.lines
    )


def _labels(fig: Figure) -> str:
    return (
        " ".join(f"{ax.get_xlabel()} {ax.get_ylabel()} {ax.get_title()}" for ax in fig.axes)
        + " "
        + (fig._suptitle.get_text() if fig._suptitle is not None else "")
    )


def _has_error_bars(fig: Figure) -> bool:
    from matplotlib.container import BarContainer, ErrorbarContainer

    return any(
        isinstance(c, ErrorbarContainer) or (isinstance(c, BarContainer) and c.errorbar)
        for ax in fig.axes
        for c in ax.containers
    )


def _has_colour_bar_or_map(fig: Figure) -> bool:
    from matplotlib.collections import QuadMesh

    return any(
        getattr(ax, "_colorbar", None) is not None
        or ax.images
        or any(isinstance(c, QuadMesh) for c in ax.collections)
        for ax in fig.axes
    )


def _has_histogram(fig: Figure) -> bool:
    from matplotlib.patches import Rectangle, StepPatch

    return any(isinstance(p, (StepPatch, Rectangle)) for ax in fig.axes for p in ax.patches)


def _has_shading(fig: Figure) -> bool:
    from matplotlib.collections import FillBetweenPolyCollection, PolyCollection
    from matplotlib.patches import Polygon, Rectangle

    return any(
        isinstance(c, (PolyCollection, FillBetweenPolyCollection))
        for ax in fig.axes
        for c in ax.collections
    ) or any(
        isinstance(p, (Polygon, Rectangle)) and p.get_alpha() for ax in fig.axes for p in ax.patches
    )


def _has_ellipses(fig: Figure) -> bool:
    from matplotlib.patches import Ellipse

    return any(isinstance(p, Ellipse) for ax in fig.axes for p in ax.patches)


def _texts(fig: Figure) -> str:
    """Every label, title, legend entry and colour-bar label of the figure, as one text."""
    texts = [_labels(fig)]
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if legend is not None:
            texts.extend(text.get_text() for text in legend.get_texts())
    return " ".join(texts)


def _data_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and _carries_data(ax) and ax.axison]


CLAIMS: dict[str, Any] = {
    r"\bblue\b": _has_colour("blue"),
    r"\bred\b": _has_colour("red"),
    r"\bgreen\b": _has_colour("green"),
    r"\bblack\b": _has_colour("black"),
    r"\bgr[ae]y\b": _has_colour("grey"),
    r"\bcyan\b": _has_colour("cyan"),
    r"\bdotted\b": _has_line_style(":"),
    r"\bdashed\b": _has_line_style("--"),
    r"\bstar\b": _has_marker("*"),
    r"\blog axis\b": lambda fig: any(ax.get_xscale() == "log" for ax in fig.axes),
    r"\bheat map|colour bar|colour map\b": _has_colour_bar_or_map,
    r"\bhistogram": _has_histogram,
    r"\bshaded\b": _has_shading,
    r"\bellipses\b": _has_ellipses,
    r"(?<!mean )± (bootstrap )?SE\b|± SEM|[Ee]rror bars": _has_error_bars,
    r"\bin ms\b": lambda fig: " ms" in _labels(fig) or "(ms" in _labels(fig),
    r"\bin Hz\b|\(Hz\)": lambda fig: "Hz" in _labels(fig),
    r"\(rad\b|\brad\)|\bin rad\b|\brad;": lambda fig: "rad" in _labels(fig),
    r"\bagainst (training )?iteration\b": lambda fig: "iteration" in _labels(fig),
    r"\bagainst set size\b|\bper set size\b": lambda fig: "set size" in _texts(fig),
    r"\bone colou?r per set size\b": lambda fig: (
        "set size" in _texts(fig).replace(_labels(fig), "")
        or any(
            getattr(ax, "_colorbar", None) is not None and "set size" in ax.get_ylabel()
            for ax in fig.axes
        )
    ),
    r"(?s)\b[Ll]eft\b.*\bright\b": lambda fig: len(_data_axes(fig)) >= 2,
    r"\bPC1\b|\bprincipal components\b": lambda fig: "PC" in _labels(fig),
    r"\bin the title\b": lambda fig: "%" in _labels(fig),
    r"\bvalidation\b": lambda fig: "validation" in _texts(fig),
    r"\blinear null\b|\blinear network\b": lambda fig: (
        "null" in _texts(fig) or "linear" in _texts(fig)
    ),
    r"VM \+ U|von Mises \+ uniform": lambda fig: "VM" in _texts(fig),
    r"\bunit circle\b": lambda fig: any(
        line.get_gid() == "unit_circle" or len(line.get_xdata()) > 50
        for ax in fig.axes
        for line in ax.lines
    ),
}
"""Claims a caption makes (a pattern of its text) and how to see them in the figure."""


def test_every_figure_the_toolkit_draws_has_a_caption_and_its_registry_row(saved_figures):
    from analysis.registry import ANALYSES
    from analysis.report.captions import CAPTIONS

    drawn = {name.removesuffix(".png") for name, _ in saved_figures}
    assert drawn == set(CAPTIONS), (
        f"drawn without a caption: {sorted(drawn - set(CAPTIONS))}; "
        f"captioned but not drawn: {sorted(set(CAPTIONS) - drawn)}"
    )
    registered = {stem for row in ANALYSES.values() for stem in row.figure_stems}
    analysis_figures = {name.removesuffix(".png") for name, _ in saved_figures[:-3]}
    assert analysis_figures == registered


@pytest.mark.parametrize("stem", sorted(CAPTIONS))
def test_each_captions_claims_are_in_its_figure(saved_figures, analysed, stem):
    """Every colour, line style, marker, scale, unit and uncertainty a caption names (with its
    facts read from the JSON) is drawn in the figure it describes; each caption makes at least one
    such claim."""
    import re

    from analysis.registry import ANALYSES
    from analysis.report.captions import caption_for

    figure = dict(saved_figures)[f"{stem}.png"]
    row = next((r for r in ANALYSES.values() if stem in r.figure_stems), None)
    result = None if row is None else _json(analysed, row.json_stem)
    caption = caption_for(stem, result)
    text = f"{caption.what} {caption.how}"
    claims = [pattern for pattern in CLAIMS if re.search(pattern, text)]
    assert claims, f"{stem}: its caption names nothing the test can check in the figure"
    missing = [pattern for pattern in claims if not CLAIMS[pattern](figure)]
    assert not missing, f"{stem}: the caption claims {missing} that the figure does not draw"


def test_performance_bars_per_condition_show_their_se_and_trial_counts(analysed):
    result = _json(analysed, "performance")
    fig = _figure(analysed, "performance_by_epoch_and_condition.png")
    groups = result["by_condition"]["set_size"]
    from matplotlib.container import BarContainer

    bars = next(c for c in fig.axes[1].containers if isinstance(c, BarContainer))
    assert bars.errorbar is not None
    assert all(group["se"] is not None and group["se"] > 0 for group in groups.values())
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert labels == [f"{size}\n(n={group['n']})" for size, group in groups.items()]
    assert sum(group["n"] for group in groups.values()) == result["n_trials"]


def test_set_size_caption_takes_the_number_of_participants_from_the_data(analysed):
    from analysis.human.comparison import load_human_summary
    from analysis.report.run_files import SET_SIZE_FIGURE, set_size_curve, set_size_facts

    curve = set_size_curve(analysed[0])
    n_people = load_human_summary().meta["n_participants"]
    assert curve.n_participants == n_people
    what = caption_for(SET_SIZE_FIGURE, set_size_facts(curve)).what
    assert f"{n_people} participants" in what
    assert "participants" not in CAPTIONS[SET_SIZE_FIGURE].what  # no number in the static text
    # the untrained network and chance are drawn, from the errors analysis
    errors = _json(analysed, "errors")
    lines = {line.get_gid(): line for line in figure_set_size(curve).axes[0].lines}
    untrained = [errors["controls"]["untrained_mae"][str(n)] for n in (1, 2, 3)]
    np.testing.assert_allclose(lines["untrained"].get_ydata()[:3], untrained)
    assert lines["chance"].get_ydata()[0] == pytest.approx(np.pi / 2)


def _legend_labels(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_training_history_legend_lists_exactly_the_series_drawn():
    from vwm_agents.training.plotting import plot_training_history

    def history(sizes: int, validation: bool) -> list[dict]:
        return [
            {
                "iteration": i,
                "error": 1.0 / i,
                "val_error": 1.1 / i if validation else None,
                "rate": 5.0,
                "lr": 1e-3,
                "per_set_size": {str(n): {"error": n / (10 * i)} for n in range(1, sizes + 1)},
            }
            for i in range(1, 4)
        ]

    error_ax = plot_training_history(history(3, False)).axes[0]
    assert _legend_labels(error_ax) == ["set size 1", "set size 2", "set size 3", "all"]
    fig = plot_training_history(history(8, True))
    assert _legend_labels(fig.axes[0]) == ["all", "validation"]  # 8 shades: a colour bar
    bars = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]
    assert len(bars) == 1 and bars[0].get_ylabel() == "set size"
    assert [t.get_text() for t in bars[0].get_yticklabels()] == [str(n) for n in range(1, 9)]

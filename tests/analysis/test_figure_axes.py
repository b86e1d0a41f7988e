"""Every figure the analyses save is fit for a paper: each axis that carries data is labelled
(with its unit where it has one), each colour bar is labelled, and the figure is small enough to
be read at 100 dpi. The figures are caught as they are saved, so a new figure is checked too."""

from __future__ import annotations

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
def saved_figures(tiny_run, tmp_path_factory):
    """(file name, Figure) of every figure ``python -m analysis`` saves on a tiny run."""
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
    return saved


def test_every_saved_figure_labels_its_axes_and_colour_bars(saved_figures):
    assert len(saved_figures) >= 15
    problems = [p for name, fig in saved_figures for p in _problems(fig, name)]
    assert problems == [], "\n".join(problems)

"""``SWEEP_DIR/sweep_report.html``: a sweep's best trials, the figure of the swept parameter,
the table of all trials and the trials' reports.

A sweep folder is recognised by ``sweep_results.csv`` (written by ``python -m vwm_agents.sweep``).
The table sorts by any column with a click on its header (a few lines of inline script); each
trial's name links to its own ``report.html``, written here for every trial that has a run
directory.
"""

from __future__ import annotations

import csv
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from analysis.report import _html as H
from analysis.report.captions import caption_for, caption_order
from analysis.report.run_report import IMAGE_SUFFIXES, REPORT_FILE, ReportError, write_report
from vwm_agents.training.plotting import SWEEP_FIGURE
from vwm_agents.training.rundir import atomic_write_text

__all__ = ["SWEEP_RESULTS", "SWEEP_REPORT_FILE", "is_sweep_dir", "write_sweep_report"]

SWEEP_RESULTS = "sweep_results.csv"
SWEEP_REPORT_FILE = "sweep_report.html"


def is_sweep_dir(path: str | Path) -> bool:
    """Whether ``path`` is a sweep's output folder (it holds ``sweep_results.csv``)."""
    return (Path(path) / SWEEP_RESULTS).is_file()


def _value(text: str) -> Any:
    """A CSV cell as a number where it is one (so that it sorts and rounds as a number)."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _read_results(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: unreadable results table: {exc}") from None


def _trial_report(sweep_dir: Path, row: dict[str, str], write: bool) -> str | None:
    """The trial report's path relative to the sweep folder (written if asked), or None."""
    run_dir = row.get("run_dir") or ""
    if not run_dir:
        return None
    folder = sweep_dir / run_dir
    if not (folder / "config.yaml").is_file():
        return None
    if write:
        try:
            write_report(folder)
        except ReportError:
            return None
    if not (folder / REPORT_FILE).is_file():
        return None
    return Path(os.path.relpath(folder / REPORT_FILE, sweep_dir)).as_posix()


BEST_TRIALS = 5
"""Trials the sweep report leads with."""


def _rank_key(row: dict[str, str]) -> tuple[float, float]:
    """Closest to people first where the sweep compared with people, else lowest error;
    unfinished trials last."""
    rank, error = _value(row.get("human_rank") or ""), _value(row.get("error") or "")
    finished = row.get("status") == "ok"
    return (
        rank if finished and isinstance(rank, (int, float)) else math.inf,
        error if finished and isinstance(error, (int, float)) else math.inf,
    )


def _best_trials(
    columns: list[str], rows: list[dict[str, str]], table_rows: list[list[Any]], shown: list[str]
) -> str:
    """The :data:`BEST_TRIALS` best finished trials: their swept values and scores."""
    order = sorted(
        (i for i, row in enumerate(rows) if _rank_key(row) != (math.inf, math.inf)),
        key=lambda i: _rank_key(rows[i]),
    )[:BEST_TRIALS]
    if not order:
        return '<p class="sub">No trial finished.</p>'
    swept = (
        columns[columns.index("trial") + 1 : columns.index("status")]
        if ("trial" in columns and "status" in columns)
        else []
    )
    keep = [
        c
        for c in ("trial", *swept, "human_rank", "human_distance", "error", "error_std", "rate")
        if c in shown
    ]
    ranked_by = "closeness to people (human_rank)" if "human_rank" in columns else "error"
    return (
        f'<p class="sub">Ranked by {H.esc(ranked_by)}; every trial is under All trials.</p>'
        + H.table(keep, [[table_rows[i][shown.index(c)] for c in keep] for i in order])
    )


def build_sweep_report(sweep_dir: Path, *, trial_reports: bool = True) -> str:
    """The HTML text of the sweep report (see :func:`write_sweep_report`)."""
    sweep_dir = Path(sweep_dir)
    if not is_sweep_dir(sweep_dir):
        raise ReportError(f"{sweep_dir}: no {SWEEP_RESULTS}; not a sweep folder")
    columns, rows = _read_results(sweep_dir / SWEEP_RESULTS)
    shown = [c for c in columns if c != "run_dir"]
    table_rows = []
    linked = 0
    for row in rows:
        href = _trial_report(sweep_dir, row, trial_reports)
        linked += href is not None
        cells: list[Any] = []
        for column in shown:
            value = _value(row.get(column) or "")
            if column == "trial" and href is not None:
                value = H.Link(str(value), href)
            cells.append(value)
        table_rows.append(cells)
    ok = sum(1 for row in rows if row.get("status") == "ok")
    sections = [("sec-best", "Best trials", _best_trials(columns, rows, table_rows, shown))]
    images = sorted(
        (p for p in sweep_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: (p.name != SWEEP_FIGURE, caption_order(p.stem)),
    )
    if images:
        sections.append(
            (
                "sec-figures",
                "The swept parameter",
                "\n".join(
                    H.figure_block(
                        H.png_data_uri(p), p.stem, caption_for(p.stem), anchor=f"fig-{p.stem}"
                    )
                    for p in images
                ),
            )
        )
    sections.append(
        (
            "sec-results",
            "All trials",
            f"<p>{len(rows)} trials, {ok} finished; {linked} with a report (click a trial). "
            "Click a column header to sort.</p>"
            f'<div style="overflow-x:auto">{H.table(shown, table_rows, sortable=True)}</div>',
        )
    )
    body = "\n".join(
        f'<section id="{a}"><h2>{H.esc(t)}</h2>\n{html}</section>' for a, t, html in sections
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"<code>{H.esc(sweep_dir)}</code> · report written {stamp}"
    return H.page(
        f"Sweep {sweep_dir.resolve().name}",
        subtitle,
        [(a, t) for a, t, _ in sections],
        body,
        script=True,
    )


def write_sweep_report(sweep_dir: str | Path, *, trial_reports: bool = True) -> Path:
    """Write ``sweep_dir/sweep_report.html`` and return its path.

    Args:
        trial_reports: also write (or refresh) ``report.html`` in every trial's run directory,
            which the table links to; False links only to reports that exist.

    Raises:
        ReportError: ``sweep_dir`` holds no ``sweep_results.csv`` or it is unreadable.
    """
    sweep_dir = Path(sweep_dir)
    text = build_sweep_report(sweep_dir, trial_reports=trial_reports)
    path = sweep_dir / SWEEP_REPORT_FILE
    atomic_write_text(path, text)
    return path

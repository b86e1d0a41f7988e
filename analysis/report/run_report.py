"""``RUN_DIR/report.html``: a run's finding first, then its figures, tables and config.

The page opens with the set-size curve against people, with the untrained network and chance
beside it (:mod:`analysis.report.run_files` reads it), then one line per analysis of what it
found against its control (the registry rows' ``finding``), then the figures (training curves,
each analysis' with its caption), the raw tables, and the configuration last.

The report reads only files (``config.yaml``, the history, ``metrics.json``,
``analysis/*.json`` and the figures next to them); it never loads the model, so it works from
the results of any earlier ``python -m analysis`` and takes seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from analysis import registry
from analysis.human.comparison import model_human_ratio
from analysis.report import _html as H
from analysis.report._summary import Table, summarise
from analysis.report.captions import caption_for, caption_order
from analysis.report.run_files import (
    SET_SIZE_FIGURE,
    ReportError,
    SetSizeCurve,
    read_json,
    set_size_curve,
    set_size_facts,
)
from analysis.viz.human import figure_set_size
from vwm_agents.training.rundir import atomic_write_text, read_history

__all__ = [
    "ReportError",
    "SetSizeCurve",
    "set_size_curve",
    "write_report",
    "REPORT_FILE",
    "IMAGE_SUFFIXES",
    "sections",
]

REPORT_FILE = "report.html"
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")


def sections() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Analysis JSON stem -> (section title, figure-stem prefixes), from the registry's rows in
    its order; any other JSON file gets a section of its own after them."""
    return {row.json_stem: (row.title, row.figure_stems) for row in registry.ANALYSES.values()}


def _tables_html(tables: list[Table]) -> str:
    parts = []
    for t in tables:
        parts.append(f"<h4>{H.esc(t.title)}</h4>" if t.title else "")
        parts.append(H.table(t.headers, t.rows))
    return "\n".join(parts)


def _json_section(path: Path) -> str:
    summary = summarise(read_json(path), path.stem)
    html = _tables_html(summary.tables)
    if summary.omitted:
        html += (
            f'<p class="sub">Not tabulated (see <code>analysis/{H.esc(path.name)}</code>): '
            + H.esc("; ".join(summary.omitted[:30]))
            + (f"; and {len(summary.omitted) - 30} more" if len(summary.omitted) > 30 else "")
            + "</p>"
        )
    return html


SETTINGS_USED = "settings_used.json"
"""Written by ``python -m analysis``: the settings each analysis ran with."""


def _settings_used(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "analysis" / SETTINGS_USED
    try:
        used = read_json(path) if path.is_file() else {}
    except ReportError:
        return {}
    return used if isinstance(used, Mapping) else {}


def _as_used(key: str, value: Any, used: Mapping[str, Any]) -> Any:
    """A config value of the ``analysis`` section, with the values actually used beside it
    where an override (``--trials``) changed them."""
    if key != "trials" or isinstance(value, Mapping):
        return value
    from analysis.registry import ANALYSES

    common = [
        name
        for name, row in ANALYSES.items()
        if row.trials_default and "trials" not in row.settings
    ]
    actual = sorted(
        {
            used[name]["n_trials"]
            for name in common
            if isinstance(used.get(name), Mapping) and "n_trials" in used[name]
        }
        - {value}
    )
    return value if not actual else f"{value} in config.yaml; used: {', '.join(map(str, actual))}"


def _config_section(run_dir: Path) -> str:
    path = run_dir / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ReportError(f"{path}: unreadable config: {' '.join(str(exc).split())}") from None
    if not isinstance(config, Mapping):
        raise ReportError(f"{path}: not a config (expected a mapping of sections)")
    used = _settings_used(run_dir)
    parts = ['<div class="grid">']
    for section, values in config.items():
        rows = (
            [[key, value] for key, value in values.items()]
            if isinstance(values, Mapping)
            else [[section, values]]
        )
        if section == "analysis" and used:
            rows = [[key, _as_used(key, value, used)] for key, value in rows]
        parts.append(f"<div><h4>{H.esc(section)}</h4>{H.table(['key', 'value'], rows)}</div>")
    parts.append("</div>")
    if used:
        rows = [
            [
                name,
                ", ".join(f"{'trials' if k == 'n_trials' else k}={v}" for k, v in values.items()),
            ]
            for name, values in used.items()
            if isinstance(values, Mapping)
        ]
        parts.append(
            "<h4>analysis settings as used (overrides included)</h4>"
            + H.table(["analysis", "settings"], rows)
        )
    parts.append(
        f"<details><summary>config.yaml</summary><pre>{H.esc(path.read_text())}</pre></details>"
    )
    return "\n".join(parts)


def _training_parts(run_dir: Path) -> tuple[str, str | None]:
    """The training curves (figure) and the last history record (table, or None)."""
    try:
        history = read_history(run_dir)  # history.jsonl, or history.yaml of older runs
    except Exception as exc:  # noqa: BLE001 - a corrupt history must not hide the rest
        return f'<p class="note">History unreadable: {H.esc(exc)}</p>', None
    stem = "training_history"
    uri = None
    if history:
        try:
            from vwm_agents.training.plotting import plot_training_history

            uri = H.figure_data_uri(plot_training_history(history))
        except Exception:  # noqa: BLE001 - fall back to the PNG the trainer saved
            uri = None
    saved = run_dir / f"{stem}.png"
    if uri is None and saved.is_file():
        uri = H.png_data_uri(saved)
    if uri is None:
        return '<p class="note">No training history in this run directory.</p>', None
    figure = H.figure_block(uri, stem, caption_for(stem), anchor=f"fig-{stem}")
    last = history[-1] if history else {}
    rows = [[k, v] for k, v in last.items() if isinstance(v, (int, float, str, type(None)))]
    if not rows:
        return figure, None
    return figure, (
        f"<h4>Last history record ({len(history)} records)</h4>" + H.table(["key", "value"], rows)
    )


def _set_size_parts(run_dir: Path) -> tuple[str, str] | None:
    """The set-size figure against people and its table; None for runs without set sizes."""
    curve = set_size_curve(run_dir)
    if curve is None:
        return None
    figure = H.figure_block(
        H.figure_data_uri(figure_set_size(curve)),
        SET_SIZE_FIGURE,
        caption_for(SET_SIZE_FIGURE, set_size_facts(curve)),
        anchor=f"fig-{SET_SIZE_FIGURE}",
    )
    headers = ["set size", "model MAE (rad)", "model SE", "people MAE (rad)", "people SE"]
    columns = [curve.model, curve.model_se or [None] * len(curve.set_sizes), curve.human]
    columns.append(curve.human_se)
    if curve.untrained:
        headers.append("untrained MAE (rad)")
        columns.append(curve.untrained)
    headers.append("model / people")
    columns.append(model_human_ratio(curve.model, curve.human))
    rows = [[n, *values] for n, *values in zip(curve.set_sizes, *columns, strict=True)]
    table = H.table(headers, rows)
    table += f'<p class="sub">Model: {H.esc(curve.model_source)}.'
    if curve.human_source:
        table += f" People: {H.esc(curve.human_source)}."
    if curve.chance is not None:
        table += f" Chance (guessing): {H.fmt(curve.chance)} rad."
    return figure, table + "</p>"


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _section_of(stem: str, sections: Mapping[str, tuple[str, tuple[str, ...]]]) -> str | None:
    best, length = None, -1
    for key, (_, prefixes) in sections.items():
        for prefix in (key, *prefixes):
            if (stem == prefix or stem.startswith(prefix + "_")) and len(prefix) > length:
                best, length = key, len(prefix)
    return best


def _analysis_jsons(run_dir: Path) -> list[Path]:
    folder = run_dir / "analysis"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if p.name != SETTINGS_USED)


def _found_sections(run_dir: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """JSON stem -> (title, figure stems) of the analyses this run has results of, in the
    registry's order, then the others."""
    stems = [p.stem for p in _analysis_jsons(run_dir)]
    known = sections()
    found = {k: v for k, v in known.items() if k in stems}
    found.update({s: (s.replace("_", " ").capitalize(), (s,)) for s in stems if s not in known})
    return found


def _figure_sections(run_dir: Path) -> list[tuple[str, str, str]]:
    """``(anchor, title, html)``: each analysis' figures with their captions, then figures of no
    analysis."""
    folder = run_dir / "analysis"
    found = _found_sections(run_dir)
    figures: dict[str | None, list[Path]] = {}
    for path in _images(folder):
        figures.setdefault(_section_of(path.stem, found), []).append(path)
    extra = [p for p in _images(run_dir) if p.stem != "training_history"]
    if extra:
        figures.setdefault(None, []).extend(extra)
    out = []
    for key, (title, _) in found.items():
        try:
            result = read_json(folder / f"{key}.json")
        except ReportError:
            result = None
        parts = [
            H.figure_block(
                H.png_data_uri(p), p.stem, caption_for(p.stem, result), anchor=f"fig-{p.stem}"
            )
            for p in sorted(figures.get(key, []), key=lambda p: caption_order(p.stem))
        ]
        note = (
            f'<p class="sub">No figures: its values are under <a href="#tab-{key}">Tables</a>.</p>'
        )
        out.append((f"sec-{key}", title, "\n".join(parts) or note))
    if figures.get(None):
        parts = [
            H.figure_block(H.png_data_uri(p), p.stem, caption_for(p.stem), anchor=f"fig-{p.stem}")
            for p in sorted(figures[None], key=lambda p: caption_order(p.stem))
        ]
        out.append(("sec-other", "Other figures", "\n".join(parts)))
    return out


def _findings(run_dir: Path) -> str:
    """One line per analysis run: what it found against its control (the registry row's
    ``finding``, from the analysis' JSON), linked to its figures."""
    found = _found_sections(run_dir)
    items = []
    for row in registry.ANALYSES.values():
        if row.json_stem not in found or row.finding is None:
            continue
        try:
            line = registry.resolve(row.finding)(read_json(run_dir / "analysis" / row.json_name))
        except (ReportError, KeyError, TypeError, ValueError, IndexError) as exc:
            line = f"no summary ({type(exc).__name__}: {exc}; an older or foreign result file)"
        items.append(
            f'<li><a href="#sec-{H.esc(row.json_stem)}"><b>{H.esc(row.title)}</b></a>: '
            f"{H.esc(line)}</li>"
        )
    if not items:
        return (
            '<p class="sub">No analysis results yet: run '
            f"<code>python -m analysis {H.esc(run_dir)}</code>.</p>"
        )
    return f'<ul class="findings">{"".join(items)}</ul>'


def _tables(run_dir: Path, metrics: Mapping | None, set_size_table: str | None) -> str:
    """The raw tables: final metrics, the set-size values, the last history record and every
    analysis' JSON."""
    parts = []
    if metrics is not None:
        parts.append("<h3>Final metrics (metrics.json)</h3>")
        parts.append(_tables_html(summarise(metrics, "metrics.json").tables))
    if set_size_table is not None:
        parts.append("<h3>Set size: model against people</h3>" + set_size_table)
    for key, (title, _) in _found_sections(run_dir).items():
        parts.append(f'<h3 id="tab-{H.esc(key)}">{H.esc(title)} (analysis/{H.esc(key)}.json)</h3>')
        parts.append(_json_section(run_dir / "analysis" / f"{key}.json"))
    return "\n".join(parts)


def _members(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob("seed_*") if (p / "config.yaml").is_file())


# ----------------------------------------------------------------------------------------------
# The page


def build_run_report(run_dir: Path) -> str:
    """The HTML text of ``run_dir``'s report (see :func:`write_report`).

    The page leads with the finding: the set-size curve against people with the untrained
    network and chance beside it, then one line per analysis of what it found against its
    control; then the figures (training curves, each analysis'), then the raw tables, and the
    configuration last.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: run directory not found")
    if not (run_dir / "config.yaml").is_file():
        raise ReportError(
            f"{run_dir}: no config.yaml; not a run directory (nor a sweep folder "
            "with sweep_results.csv)"
        )
    metrics_path = run_dir / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.is_file() else None
    sections: list[tuple[str, str, str]] = []
    set_size = _set_size_parts(run_dir)
    if set_size is not None:
        sections.append(("sec-setsize", "Set size: model against people", set_size[0]))
    sections.append(("sec-findings", "What each analysis found", _findings(run_dir)))
    members = _members(run_dir)
    if members:
        rows = [[H.Link(m.name, f"{m.name}/{REPORT_FILE}")] for m in members]
        sections.append(("sec-members", "Ensemble members", H.table(["member report"], rows)))
    training_figure, history_table = _training_parts(run_dir)
    sections.append(("sec-training", "Training", training_figure))
    sections.extend(_figure_sections(run_dir))
    tables = _tables(run_dir, metrics, None if set_size is None else set_size[1])
    if history_table is not None:
        tables = history_table + tables
    sections.append(("sec-tables", "Tables", tables))
    sections.append(("sec-config", "Configuration", _config_section(run_dir)))
    body = "\n".join(
        f'<section id="{a}"><h2>{H.esc(t)}</h2>\n{html}</section>' for a, t, html in sections
    )
    subtitle = _subtitle(run_dir, metrics)
    return H.page(f"Run {run_dir.resolve().name}", subtitle, [(a, t) for a, t, _ in sections], body)


def _subtitle(run_dir: Path, metrics: Mapping | None) -> str:
    parts = [f"<code>{H.esc(run_dir)}</code>"]
    if metrics:
        if metrics.get("iteration") is not None:
            parts.append(
                f"{H.esc(metrics.get('checkpoint', ''))} checkpoint at iteration "
                f"{H.esc(metrics['iteration'])}"
            )
        error = metrics.get("error")
        if isinstance(error, (int, float)) and math.isfinite(error):
            parts.append(f"error {H.fmt(float(error))}")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"report written {stamp}")
    return " · ".join(parts)


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` (and one per ensemble member) and return its path.

    One self-contained file: the figures are embedded, nothing is fetched, it opens offline.

    Raises:
        ReportError: ``run_dir`` is not a run directory or one of its files is unreadable
            (nothing is written).
    """
    run_dir = Path(run_dir)
    text = build_run_report(run_dir)
    for member in _members(run_dir):
        write_report(member)
    path = run_dir / REPORT_FILE
    atomic_write_text(path, text)
    return path

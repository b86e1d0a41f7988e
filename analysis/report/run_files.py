"""What the run report reads from a run directory's files: JSON (one error for an unreadable
file) and the set-size curve of the model against people, with its controls.

The curve takes the model's MAE per set size, its bootstrap SE and the controls (the untrained
network, chance) from ``analysis/errors.json`` (else the test batch of ``metrics.json``), and
people's from the shipped data, unless the run's ``human`` analysis compared with other people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.human.comparison import load_human_summary

__all__ = [
    "ReportError",
    "read_json",
    "SetSizeCurve",
    "set_size_curve",
    "SET_SIZE_FIGURE",
    "set_size_facts",
]


class ReportError(ValueError):
    """A folder that is not a run directory (or a sweep folder), or an unreadable file in it."""


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: unreadable JSON: {' '.join(str(exc).split())}") from None


@dataclass(frozen=True)
class SetSizeCurve:
    """Mean absolute error per set size of the model (with its bootstrap SE where the errors
    analysis gave one) and, where known, of people (rad)."""

    set_sizes: list[int]
    model: list[float | None]
    model_source: str
    human: list[float | None]
    human_se: list[float | None]
    human_source: str | None
    model_se: list[float | None] = field(default_factory=list)
    untrained: list[float | None] = field(default_factory=list)
    """MAE of the untrained network (the errors analysis' control); empty when unknown."""
    chance: float | None = None
    """MAE of guessing (rad), where the errors analysis states it."""
    n_participants: int | None = None


@dataclass(frozen=True)
class _ModelMAE:
    values: dict[int, float]
    se: dict[int, float]
    source: str
    controls: Mapping[str, Any] = field(default_factory=dict)


def _model_mae(run_dir: Path, metrics: Mapping | None) -> _ModelMAE:
    """MAE per set size, its bootstrap SE and the controls: the errors analysis (more trials)
    if run, else metrics.json (no SE, no controls)."""
    errors_path = run_dir / "analysis" / "errors.json"
    if errors_path.is_file():
        data = read_json(errors_path)
        per_size = data.get("per_set_size", data) if isinstance(data, Mapping) else {}
        rows = {
            int(n): row
            for n, row in per_size.items()
            if str(n).isdigit() and isinstance(row, Mapping) and row.get("mae") is not None
        }
        if rows:
            controls = data.get("controls")
            return _ModelMAE(
                {n: row["mae"] for n, row in rows.items()},
                {n: row["se"]["mae"] for n, row in rows.items() if "se" in row},
                "errors analysis (analysis/errors.json)",
                controls if isinstance(controls, Mapping) else {},
            )
    per_size = (metrics or {}).get("per_set_size") or {}
    values = {
        int(n): row["error"]
        for n, row in per_size.items()
        if isinstance(row, Mapping) and row.get("error") is not None
    }
    return _ModelMAE(values, {}, "test batch (metrics.json)")


def _people(run_dir: Path) -> tuple[dict[int, float], dict[int, float], str | None, int | None]:
    """People's MAE and SE per set size, their source and number: the shipped data (all its set
    sizes), unless the human analysis of this run compared with other people (``--human-data``),
    whose values its JSON holds."""
    try:
        people = load_human_summary()
        shipped = (
            {n: people.value("mae", n) for n in people.set_sizes},
            dict(zip(people.set_sizes, people.standard_errors.get("mae") or [], strict=False)),
            str(people.meta.get("citation") or people.meta.get("dataset") or "people"),
            people.meta.get("n_participants"),
        )
    except Exception:  # noqa: BLE001 - the report still shows the model's curve
        shipped = ({}, {}, None, None)
    path = run_dir / "analysis" / "human_comparison.json"
    try:
        data = read_json(path) if path.is_file() else None
        if isinstance(data, Mapping) and data.get("human_source") != shipped[2]:
            sizes = [int(n) for n in data["set_sizes"]]
            return (
                dict(zip(sizes, data["human"]["mae"], strict=True)),
                dict(zip(sizes, data["human_se"].get("mae") or [], strict=False)),
                str(data.get("human_source") or "people"),
                data.get("n_participants"),
            )
    except (ReportError, KeyError, TypeError, ValueError):
        pass
    return shipped


def set_size_curve(run_dir: str | Path) -> SetSizeCurve | None:
    """The model's and people's MAE per set size; None for runs without set sizes."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.is_file() else None
    model = _model_mae(run_dir, metrics)
    if not model.values:
        return None
    human, ses, human_source, n_participants = _people(run_dir)
    sizes = sorted(set(model.values) | set(human))
    untrained = {
        int(n): v
        for n, v in (model.controls.get("untrained_mae") or {}).items()
        if str(n).isdigit()
    }
    return SetSizeCurve(
        sizes,
        [model.values.get(n) for n in sizes],
        model.source,
        [human.get(n) for n in sizes],
        [ses.get(n) for n in sizes],
        human_source,
        [model.se.get(n) for n in sizes],
        [untrained.get(n) for n in sizes] if untrained else [],
        model.controls.get("chance_mae"),
        n_participants,
    )


SET_SIZE_FIGURE = "mae_vs_set_size_model_people_controls"
"""The report's first figure (drawn here, from the files): the model's MAE per set size
against people's, with the untrained network and chance beside it."""


def set_size_facts(curve: SetSizeCurve) -> dict[str, Any]:
    """What the set-size figure's caption states, from the curve it draws."""
    return {
        "n_participants": curve.n_participants,
        "model_source": curve.model_source,
        "human_source": curve.human_source,
        "untrained": any(v is not None for v in curve.untrained),
        "chance": curve.chance,
    }

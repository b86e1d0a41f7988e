"""A sweep's results: one row per trial, read from the trials' run directories.

``sweep_results.csv`` and ``sweep_results.yaml`` hold one row per trial: its swept values, its
status, the final evaluation of its ``metrics.json`` (error, rate, per set size) and, when the
sweep file has a ``human`` section, its distance to people (``human_distance`` and its components
``human_distance_mae``, ``human_distance_guess_rate``, ``human_distance_excess_kurtosis``, from
``RUN_DIR/analysis/human_comparison.json``; rows are then ranked by it, closest first).
``sweep_error_vs_set_size.png`` shows error against set size, one curve per swept setting (mean
+/- SEM over ``training.seed``).

Everything here is read back from files, so results can be rebuilt at any time (``--resume`` of
a finished sweep does only that).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vwm_agents.sweep.spec import SEED_KEY, SweepSpec, TrialPlan
from vwm_agents.sweep.trial import error_file, human_file, write_yaml
from vwm_agents.training.plotting import SWEEP_FIGURE, plot_sweep_error_vs_set_size
from vwm_agents.training.rundir import METRICS_FILE, RunDir, RunDirError, atomic_write_text

__all__ = [
    "RESULTS_CSV",
    "RESULTS_YAML",
    "FIGURE",
    "REPORT",
    "HUMAN_COLUMNS",
    "TrialResult",
    "ErrorCurve",
    "collect_results",
    "write_results",
    "read_human_distance",
    "error_vs_set_size",
    "write_report",
]

RESULTS_CSV = "sweep_results.csv"
RESULTS_YAML = "sweep_results.yaml"
FIGURE = SWEEP_FIGURE
REPORT = "sweep_report.html"
# The components of the distance to people (see docs/model.md, section Human comparison)
DISTANCE_COMPONENTS: tuple[str, ...] = ("mae", "guess_rate", "excess_kurtosis")
HUMAN_COLUMNS: tuple[str, ...] = (
    "human_distance",
    *(f"human_distance_{name}" for name in DISTANCE_COMPONENTS),
)


@dataclass
class TrialResult:
    """One row of the results table."""

    trial: str
    run_dir: str
    params: dict[str, Any]
    status: str  # "ok" or "error"
    message: str = ""
    final_iteration: int | None = None  # the last history record's
    checkpoint: str | None = None  # which checkpoint metrics.json evaluated: "best" or "latest"
    checkpoint_iteration: int | None = None
    error: float | None = None
    error_std: float | None = None
    rate: float | None = None
    per_set_size: dict[int, dict[str, float]] = field(default_factory=dict)
    human_distance: float | None = None
    human_distance_components: dict[str, float] = field(default_factory=dict)
    human_rank: int | None = None  # 1 = closest to people, among trials with a distance

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_results(spec: SweepSpec) -> list[TrialResult]:
    """Read every trial's outcome from its run directory (``metrics.json``, the human comparison)
    or error record; ranked by distance to people when the sweep asked for it."""
    results = [_trial_result(spec, plan) for plan in spec.trials]
    if spec.human is not None:
        ranked = sorted(
            (row for row in results if row.human_distance is not None),
            key=lambda row: row.human_distance,
        )
        for rank, row in enumerate(ranked, start=1):
            row.human_rank = rank
        results.sort(key=lambda row: row.human_rank if row.human_rank is not None else math.inf)
    return results


def _trial_result(spec: SweepSpec, plan: TrialPlan) -> TrialResult:
    row = TrialResult(
        trial=plan.name,
        run_dir=os.path.relpath(plan.run_dir, spec.output),
        params=dict(plan.params),
        status="error",
    )
    run_dir = RunDir(plan.run_dir)
    metrics_file = run_dir.metrics_file
    errors = error_file(plan)
    if errors.is_file():
        try:
            record = yaml.safe_load(errors.read_text()) or {}
        except (OSError, yaml.YAMLError):
            record = {}
        row.message = (
            str(record.get("error", "failed")) if isinstance(record, Mapping) else "failed"
        )
    elif not metrics_file.is_file():
        row.message = "did not finish (no metrics.json); run the sweep again with --resume"
    if metrics_file.is_file():  # also after a divergence: the metrics of its best checkpoint
        try:
            metrics = run_dir.read_metrics()
        except (OSError, ValueError) as exc:
            row.message = row.message or f"unreadable {METRICS_FILE}: {exc}"
            return row
        row.status = "error" if row.message else "ok"
        row.checkpoint = metrics.get("checkpoint")
        row.checkpoint_iteration = metrics.get("iteration")
        row.error, row.error_std, row.rate = (
            metrics.get(k) for k in ("error", "error_std", "rate")
        )
        row.per_set_size = {
            int(size): {k: values[k] for k in ("error", "error_std", "rate") if k in values}
            for size, values in sorted(
                metrics.get("per_set_size", {}).items(), key=lambda kv: int(kv[0])
            )
        }
    try:
        history = run_dir.read_history()
    except RunDirError:
        history = []
    row.final_iteration = history[-1].get("iteration") if history else None
    if spec.human is not None:
        _add_human_distance(row, plan)
    return row


def _add_human_distance(row: TrialResult, plan: TrialPlan) -> None:
    path = human_file(plan)
    if not path.is_file():
        if row.status == "ok":
            row.status = "error"
            row.message = f"no {path.parent.name}/{path.name}; run the sweep again with --resume"
        return
    try:
        total, components = read_human_distance(path)
    except ValueError as exc:
        row.status = "error"
        row.message = row.message or str(exc)
        return
    row.human_distance = total
    row.human_distance_components = components


def read_human_distance(path: str | Path) -> tuple[float, dict[str, float]]:
    """The distance to people in a ``human_comparison.json``: its total and its components.

    The file's top-level ``"distance"`` is ``{"total": float, "components": {"mae": float,
    "guess_rate": float, "excess_kurtosis": float}, ...}`` (written by the ``human`` analysis).

    Raises:
        ValueError: one line naming the file and what is missing.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable: {' '.join(str(exc).split())}") from None
    distance = data.get("distance") if isinstance(data, Mapping) else None
    if not isinstance(distance, Mapping):
        raise ValueError(
            f"{path}: has no 'distance' (written by a version of the human analysis "
            "without one); run the sweep again with --resume after updating"
        )
    total = _number(distance.get("total"), path, "distance.total")
    components = distance.get("components", {})
    if not isinstance(components, Mapping):
        raise ValueError(f"{path}: distance.components must be a mapping, got {components!r}")
    return total, {
        name: _number(components.get(name), path, f"distance.components.{name}")
        for name in DISTANCE_COMPONENTS
        if name in components
    }


def _number(value: Any, path: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}: {key} must be a number, got {value!r}")
    return float(value)


def write_results(spec: SweepSpec, results: Sequence[TrialResult]) -> dict[str, Path]:
    """Write ``sweep_results.csv``, ``sweep_results.yaml`` and the error-vs-set-size figure."""
    out = spec.output
    out.mkdir(parents=True, exist_ok=True)
    set_sizes = sorted({size for row in results for size in row.per_set_size})
    human = list(HUMAN_COLUMNS) + ["human_rank"] if spec.human is not None else []
    columns = [
        "trial",
        *spec.swept_keys,
        "status",
        "message",
        *human,
        "final_iteration",
        "checkpoint",
        "checkpoint_iteration",
        "error",
        "error_std",
        "rate",
        *(f"{name}_ss{size}" for size in set_sizes for name in ("error", "rate")),
        "run_dir",
    ]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    for row in results:
        flat = {key: value for key, value in row.to_dict().items() if key in columns}
        flat.update({key: _csv_value(row.params.get(key)) for key in spec.swept_keys})
        for size, values in row.per_set_size.items():
            flat[f"error_ss{size}"] = values.get("error")
            flat[f"rate_ss{size}"] = values.get("rate")
        for name, value in row.human_distance_components.items():
            flat[f"human_distance_{name}"] = value
        writer.writerow(flat)
    csv_path = out / RESULTS_CSV
    atomic_write_text(csv_path, text.getvalue())
    yaml_path = out / RESULTS_YAML
    write_yaml(
        yaml_path,
        {
            "sweep": spec.name,
            "swept_keys": list(spec.swept_keys),
            "trials": [row.to_dict() for row in results],
        },
    )
    paths = {"csv": csv_path, "yaml": yaml_path}
    curves = error_vs_set_size(results, spec.swept_keys)
    if curves:
        paths["figure"] = plot_sweep_error_vs_set_size(curves, out, title=spec.name)[0]
    return paths


def _csv_value(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, width=2**31).strip()
    return value


@dataclass
class ErrorCurve:
    """Error against set size for one swept setting, mean and SEM over seeds."""

    setting: dict[str, Any]
    set_sizes: list[int]
    mean: list[float]
    sem: list[float]  # nan where only one seed finished
    n_seeds: list[int]

    @property
    def label(self) -> str:
        if not self.setting:
            return "all trials"
        return ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in self.setting.items())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_vs_set_size(
    results: Iterable[TrialResult], swept_keys: Sequence[str], *, seed_key: str = SEED_KEY
) -> list[ErrorCurve]:
    """One curve per setting of the swept keys other than ``seed_key``, over finished trials."""
    setting_keys = [key for key in swept_keys if key != seed_key]
    groups: dict[str, tuple[dict[str, Any], list[TrialResult]]] = {}
    for row in results:
        if row.status != "ok" or not row.per_set_size:
            continue
        setting = {key: row.params.get(key) for key in setting_keys}
        groups.setdefault(repr(setting), (setting, []))[1].append(row)
    curves = []
    for setting, rows in groups.values():
        sizes = sorted({size for row in rows for size in row.per_set_size})
        means, sems, counts = [], [], []
        for size in sizes:
            values = [
                row.per_set_size[size]["error"]
                for row in rows
                if size in row.per_set_size and row.per_set_size[size].get("error") is not None
            ]
            n = len(values)
            mean = math.fsum(values) / n
            sem = (
                math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1) / n)
                if n > 1
                else math.nan
            )
            means.append(mean)
            sems.append(sem)
            counts.append(n)
        curves.append(ErrorCurve(setting, sizes, means, sems, counts))
    return curves


def write_report(output: Path) -> str | None:
    """``python -m analysis.report OUTPUT`` (writes ``sweep_report.html``) when the ``analysis``
    package is installed; returns None on success, else one warning line. The report is a
    convenience: its absence or failure never fails the sweep."""
    if importlib.util.find_spec("analysis") is None:
        return f"no {REPORT}: the analysis package is not installed"
    done = subprocess.run(
        [sys.executable, "-m", "analysis.report", str(output)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        return f"no {REPORT}: python -m analysis.report failed: {lines[-1] if lines else done.returncode}"
    return None

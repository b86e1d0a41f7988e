"""One trial of a sweep, without Ray: train its run directory, then (if asked) compare it with people.

A trial is an ordinary run directory of :func:`vwm_agents.train`. It continues from its
latest checkpoint when Ray retries it or the sweep is resumed. A failure is written to
``<output>/_errors/<trial>.yaml``; the error records and the run directories are all that the
results table (:mod:`vwm_agents.sweep.results`) reads.

The comparison with people runs ``python -m analysis RUN_DIR --only human`` in a subprocess:
``vwm_agents`` never imports ``analysis`` (which depends on it), and the analysis can use the
trial's reserved cores without sharing the trainer's process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from vwm_agents.config import Config
from vwm_agents.sweep.spec import HumanTarget, TrialPlan
from vwm_agents.training.rundir import ANALYSIS_DIR, RunDir, atomic_write_text

__all__ = [
    "ERRORS_DIR",
    "ANALYSIS_DIR",
    "HUMAN_FILE",
    "PERMANENT_ERRORS",
    "HumanAnalysisError",
    "run_trial",
    "run_human_analysis",
    "is_finished",
    "error_file",
    "write_yaml",
]

ERRORS_DIR = "_errors"
HUMAN_FILE = "human_comparison.json"

# A trial raising one of these (or vwm_agents.training.trainer.TrainingDiverged) failed because of what it
# was given; retrying it would fail again, so Ray is not asked to.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    ArithmeticError,
)

TrainFn = Callable[..., Path]


class HumanAnalysisError(RuntimeError):
    """``python -m analysis RUN_DIR --only human`` failed; the message is its last error line."""


def error_file(plan: TrialPlan) -> Path:
    """Where a failure of ``plan`` is recorded."""
    return plan.run_dir.parent / ERRORS_DIR / f"{plan.name}.yaml"


def human_file(plan: TrialPlan) -> Path:
    """The human comparison of ``plan``'s run directory, as ``python -m analysis`` writes it."""
    return RunDir(plan.run_dir).analysis_dir / HUMAN_FILE


def is_finished(plan: TrialPlan, human: HumanTarget | None = None) -> bool:
    """Finished without error (a diverged run also writes metrics.json, of its best checkpoint,
    but has an error record), and compared with people when the sweep asks for it."""
    trained = RunDir(plan.run_dir).metrics_file.is_file() and not error_file(plan).is_file()
    return trained and (human is None or human_file(plan).is_file())


def write_yaml(path: Path, data: Any) -> None:
    """Write YAML atomically, so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def run_trial(
    plan: TrialPlan,
    *,
    human: HumanTarget | None = None,
    train_fn: TrainFn | None = None,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> bool:
    """Train one trial (continuing from its checkpoint if it has one), then compare it with people
    if ``human`` is given; returns whether it finished.

    A trial that trained already (``metrics.json``, no error record) is not trained again: a
    resumed sweep only runs its missing comparison. Failures caused by the trial's values
    (:data:`PERMANENT_ERRORS`, a divergence, a failed comparison) are recorded and returned as
    False; others (a lost node, out of memory) are recorded and raised again so that Ray retries
    the trial.
    """
    from vwm_agents.training.trainer import TrainingDiverged

    errors = error_file(plan)
    stage = "train"
    try:
        if not _trained(plan):
            _train(plan, train_fn, report)
        if human is not None:
            stage = "human"
            run_human_analysis(plan.run_dir, human, threads=_threads(plan))
    except Exception as exc:
        permanent = isinstance(exc, (*PERMANENT_ERRORS, TrainingDiverged, HumanAnalysisError))
        write_yaml(
            errors,
            {
                "trial": plan.name,
                "stage": stage,
                "error": f"{type(exc).__name__}: {exc}",
                "retried_by_ray": not permanent,
                "traceback": traceback.format_exc(),
            },
        )
        if permanent:
            return False
        raise
    errors.unlink(missing_ok=True)
    return True


def _trained(plan: TrialPlan) -> bool:
    """metrics.json, and no failure other than of a comparison with people after training."""
    if not RunDir(plan.run_dir).metrics_file.is_file():
        return False
    errors = error_file(plan)
    if not errors.is_file():
        return True
    try:
        record = yaml.safe_load(errors.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(record, Mapping) and record.get("stage") == "human"


def _train(plan: TrialPlan, train_fn: TrainFn | None, report: Callable | None) -> None:
    if train_fn is None:
        from vwm_agents.training.api import train as train_fn
    config = Config.from_dict(plan.config)
    resume = RunDir(plan.run_dir).checkpoint("latest").is_file()
    if not resume and plan.run_dir.is_dir():
        # a start that crashed before its first checkpoint: nothing to keep, and the trainer
        # refuses to start over in an existing run directory
        shutil.rmtree(plan.run_dir)
    callback = None if report is None else (lambda record: report(scalar_metrics(record)))
    train_fn(
        config,
        plan.run_dir.parent,
        resume=resume,
        device=config.training.device,
        callback=callback,
        progress=False,
    )


def _threads(plan: TrialPlan) -> int:
    threads = plan.config.get("training", {}).get("threads")
    return threads if isinstance(threads, int) and threads > 0 else 1


def run_human_analysis(run_dir: Path, human: HumanTarget, *, threads: int = 1) -> Path:
    """``python -m analysis RUN_DIR --only human --no-progress [--human-data P] [--trials N]``.

    Returns:
        The ``human_comparison.json`` it wrote.

    Raises:
        HumanAnalysisError: the analysis failed (its last error line) or wrote no comparison.
    """
    command = [
        sys.executable,
        "-m",
        "analysis",
        str(run_dir),
        "--only",
        "human",
        "--no-progress",
        *human.analysis_args(),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    path = RunDir(run_dir).analysis_dir / HUMAN_FILE
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit code {done.returncode}"
        raise HumanAnalysisError(f"python -m analysis --only human: {last}")
    if not path.is_file():
        raise HumanAnalysisError(
            f"python -m analysis --only human wrote no {ANALYSIS_DIR}/{HUMAN_FILE}"
        )
    return path


def scalar_metrics(record: Mapping[str, Any]) -> dict[str, Any]:
    """The numeric part of a history record (Ray flattens nested dicts to ``a/b/c``)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            nested = scalar_metrics(value)
            if nested:
                out[str(key)] = nested
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(key)] = value
    return out

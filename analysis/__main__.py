"""Analyse a trained run directory.

Usage::

    python -m analysis RUN_DIR [--only errors,mixture,human,snr,dn,selectivity,fixed_points]
                               [--trials N] [--human-data DIR] [--checkpoint best|latest]
                               [--seed S]

Loads the run with :func:`vwm_agents.run.load_run`, runs the selected analyses (all by default,
or ``analysis.only`` of the run's config) and writes ``RUN_DIR/analysis/<file>.json`` plus PNG
figures. Every analysis module follows one contract::

    run(model, env, *, n_trials: int, seed: int) -> result with .to_dict()
    plot(result, out_dir: Path) -> list[Path]

so adding an analysis means adding one line to :data:`ANALYSES`. Exit status: 0 when every
analysis succeeded, 1 when some failed (each failure is reported on one line, the others still
run), 2 for a bad command line or a missing/corrupt run directory.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Analysis", "ANALYSES", "ALIASES", "main", "to_jsonable"]


@dataclass(frozen=True)
class Analysis:
    """One entry of the dispatch table: the module with ``run``/``plot`` and its JSON file.

    ``trials_key`` names the config setting (under ``analysis``) that gives ``n_trials`` when
    ``--trials`` is not passed; None leaves the module's own default (its trials mean something
    else, e.g. trajectories seeding the fixed-point search).
    """

    module: str
    json_name: str
    takes_human_data: bool = False
    trials_key: str | None = "trials"


ANALYSES: dict[str, Analysis] = {
    "errors": Analysis("analysis.errors", "errors.json"),
    "mixture": Analysis("analysis.mixture", "mixture.json"),
    "human": Analysis("analysis.human", "human_comparison.json", takes_human_data=True),
    "snr": Analysis("analysis.snr", "snr.json"),
    "dn": Analysis("analysis.normalization", "dn.json", trials_key=None),
    "selectivity": Analysis("analysis.selectivity", "selectivity.json"),
    "fixed_points": Analysis("analysis.fixed_points", "fixed_points.json",
                             trials_key="fixed_points.trials"),
}

ALIASES: dict[str, str] = {"normalization": "dn"}
"""Other names accepted for an analysis (the config schema calls ``dn`` ``normalization``)."""

_NOT_ANALYSES = {"weights"}  # in configs mapped from the original format; plotted by training


def to_jsonable(value: Any) -> Any:
    """Plain JSON data: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _parse_only(text: str | Sequence[str] | None, *, strict: bool) -> list[str]:
    if text is None:
        return list(ANALYSES)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    selected = []
    for name in filter(None, names):
        name = ALIASES.get(name, name)
        if name in ANALYSES:
            if name not in selected:
                selected.append(name)
        elif strict or name not in _NOT_ANALYSES:
            raise ValueError(f"--only: unknown analysis {name!r}; choose from "
                             f"{', '.join(ANALYSES)}")
    if not selected:
        raise ValueError(f"--only: no analysis selected; choose from {', '.join(ANALYSES)}")
    return selected


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Run the behavioural and neural analyses of a trained run directory.",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory written by vwm-train")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated subset of: {', '.join(ANALYSES)} "
                             "(default: the config's analysis.only, else all)")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per set size for every analysis (default: the config's "
                             "analysis.trials; analysis.fixed_points.trials for fixed_points; "
                             "the module's own default for dn)")
    parser.add_argument("--human-data", type=Path, default=None,
                        help="folder of the van den Berg (2012) .mat files (default: the "
                             "config's analysis.human_data, else the summary shipped with the "
                             "package)")
    parser.add_argument("--checkpoint", choices=("best", "latest"), default="best",
                        help="which weights to analyse (default: best)")
    parser.add_argument("--seed", type=int, default=0, help="seed of trials and noise")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _error(message: str) -> None:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)


def _trials_for(spec: Analysis, settings, requested: int | None) -> dict[str, int]:
    """``{"n_trials": N}`` from --trials, else from the config setting, else {} (default)."""
    if requested is not None:
        return {"n_trials": requested}
    if spec.trials_key is None:
        return {}
    value = settings
    for part in spec.trials_key.split("."):
        value = getattr(value, part)
    return {"n_trials": int(value)}


def _run_one(name: str, loaded, out_dir: Path, *, trials: dict[str, int], seed: int,
             human_data: Path | None) -> list[Path]:
    spec = ANALYSES[name]
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name != spec.module:
            raise
        raise RuntimeError(f"module {spec.module} is not installed") from None
    compute = module.run
    if spec.takes_human_data:
        compute = functools.partial(compute, human_data=human_data)
    result = compute(loaded.model, loaded.env, seed=seed, **trials)
    json_path = out_dir / spec.json_name
    json_path.write_text(json.dumps(to_jsonable(result.to_dict()), indent=2, allow_nan=False))
    return [json_path, *module.plot(result, out_dir)]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m analysis`` / ``vwm-analysis``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    from tqdm.auto import tqdm

    from vwm_agents.run import RunDirError, load_run

    try:
        loaded = load_run(args.run_dir, checkpoint=args.checkpoint)
    except RunDirError as exc:
        _error(exc)
        return 2
    settings = loaded.config.analysis
    try:
        only = (_parse_only(args.only, strict=True) if args.only is not None
                else _parse_only(settings.only, strict=False))
    except ValueError as exc:
        _error(exc)
        return 2
    if args.trials is not None and args.trials < 1:
        _error(f"--trials: must be >= 1, got {args.trials}")
        return 2
    human_data = args.human_data if args.human_data is not None else settings.human_data
    if human_data is not None and not Path(human_data).is_dir():
        _error(f"--human-data: {human_data} is not a directory")
        return 2

    out_dir = loaded.run_dir / "analysis"
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    bar = tqdm(only, desc="analyses", unit="analysis", disable=args.no_progress, file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        try:
            written = _run_one(name, loaded, out_dir, seed=args.seed, human_data=human_data,
                               trials=_trials_for(ANALYSES[name], settings, args.trials))
        except Exception as exc:  # noqa: BLE001 - one failing analysis must not stop the others
            failures += 1
            bar.write(f"error: {name}: {type(exc).__name__}: {' '.join(str(exc).split())}",
                      file=sys.stderr)
            continue
        bar.write(f"{name}: {', '.join(p.name for p in written)} "
                  f"({time.perf_counter() - start:.1f} s)", file=sys.stdout)
    print(f"results in {out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

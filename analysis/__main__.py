"""Analyse a trained run directory: ``python -m analysis RUN_DIR``.

Usage::

    python -m analysis RUN_DIR [--only NAME,...] [--trials N] [--seed S]
                               [--human-data PATH] [--human-units deg|rad]
                               [--human-space orientation|circle] [--checkpoint best|latest]

Loads the run with :func:`vwm_agents.load_run`, runs the selected analyses (all by default,
or ``analysis.only`` of the run's config) and writes ``RUN_DIR/analysis/<file>.json`` plus PNG
figures, then ``analysis.report.write_report(RUN_DIR)`` when that module is installed.

The analyses, their targets and settings are the rows of :data:`analysis.registry.ANALYSES`
(see :class:`analysis.registry.AnalysisRow` for what each field means).

Every setting of the config reaches its analysis under one name: ``analysis.<name>.<key>`` is
passed as ``run(..., key=value)``, except ``trials``, which is ``n_trials`` (``--trials``
overrides it; without a section value, ``analysis.trials`` applies where ``trials_default``
says so). ``errors``, ``mixture`` and ``human`` share one simulation of the model's trials
(:func:`analysis.core.trials.model_errors`, passed as ``data=``), and ``human`` takes the results
of ``errors`` and ``mixture`` of the same call instead of fitting again.

An analysis that cannot run on the run's agent or task is skipped with one line saying what it
needs; one that fails is reported on one line and the others still run. Exit status: 0 when
every analysis that could run succeeded, 1 when one failed, 2 for a bad command line or a
missing/corrupt run directory (nothing is written then).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from analysis import registry
from analysis.core.jsonable import write_json
from analysis.human.data import ANGLE_SPACES, ANGLE_UNITS
from vwm_agents.cli import OneLineParser

__all__ = ["main"]


def _unavailable_hook(row: registry.AnalysisRow) -> Callable | None:
    if row.unavailable is not None:
        return registry.resolve(row.unavailable)
    registry.resolve(row.compute)  # imports the module, or says in one line why it cannot
    return getattr(sys.modules[row.compute.partition(":")[0]], "unavailable", None)


def _parse_only(text: str | Sequence[str] | None, *, source: str) -> list[str]:
    ANALYSES = registry.ANALYSES  # noqa: N806 - read at call time, so a test can add a row
    if text is None:
        return list(ANALYSES)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    selected = []
    for name in filter(None, names):
        if name not in ANALYSES:
            raise ValueError(
                f"{source}: unknown analysis {name!r}; choose from {', '.join(ANALYSES)}"
            )
        if name not in selected:
            selected.append(name)
    if not selected:
        raise ValueError(f"{source}: no analysis selected; choose from {', '.join(ANALYSES)}")
    return selected


def _as_dict(section: Any) -> dict[str, Any]:
    """A config section (our schema's, or a plain mapping) as a plain dict."""
    if section is None:
        return {}
    if isinstance(section, dict):
        return dict(section)
    return dict(section.to_dict())


def _settings_for(name: str, analysis_config: Any) -> dict[str, Any]:
    """``analysis.<name>`` of the config as keyword arguments (the row's defaults under what
    the config leaves out, e.g. a config given as a plain mapping)."""
    defaults = {key: s.default for key, s in registry.ANALYSES[name].settings.items()}
    section = _as_dict(analysis_config).get(name)
    return {**defaults, **(section if isinstance(section, dict) else {})}


def _trials_for(
    spec: registry.AnalysisRow,
    settings: dict[str, Any],
    analysis_config: Any,
    requested: int | None,
) -> dict[str, int]:
    """``{"n_trials": N}`` from --trials, else the section's ``trials``, else ``analysis.trials``
    (where ``trials_default``), else {} (the module's default)."""
    if requested is not None:
        return {"n_trials": int(requested)}
    if "trials" in settings:
        return {"n_trials": int(settings["trials"])}
    default = _as_dict(analysis_config).get("trials")
    if spec.trials_default and default is not None:
        return {"n_trials": int(default)}
    return {}


def _check_parameters(name: str, compute: Callable, kwargs: dict[str, Any]) -> None:
    """Every configured setting must be a parameter of ``run`` (one line naming it if not)."""
    parameters = inspect.signature(compute).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = [key for key in kwargs if key not in parameters]
    if unknown:
        shown = ", ".join("trials" if k == "n_trials" else f"analysis.{name}.{k}" for k in unknown)
        raise RuntimeError(f"{shown}: not a setting of {compute.__module__}.run")


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m analysis",
        description="Run the behavioural and neural analyses of a trained run directory. "
        "Analyses that do not apply to the run's agent or task are skipped with "
        "a one-line reason.",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory written by vwm-train")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated subset of: {', '.join(registry.ANALYSES)} "
        "(default: the config's analysis.only, else all)",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="trials for every analysis (default: analysis.<name>.trials, "
        "else analysis.trials where it applies, else the module's own)",
    )
    parser.add_argument(
        "--human-data",
        type=Path,
        default=None,
        help="people to compare with: a folder of van den Berg (2012) .mat "
        "files or a CSV in python -m analysis.fit_table's format (default: the "
        "config's analysis.human_data, else the shipped van den Berg et "
        "al. 2012 files)",
    )
    parser.add_argument(
        "--human-units",
        choices=ANGLE_UNITS,
        default="rad",
        help="angle units of a CSV --human-data (default: rad)",
    )
    parser.add_argument(
        "--human-space",
        choices=ANGLE_SPACES,
        default="circle",
        help="period of a CSV --human-data: orientation (180 degrees) or circle (360; default)",
    )
    parser.add_argument(
        "--checkpoint",
        choices=("best", "latest"),
        default="best",
        help="which weights to analyse (default: best)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of trials and noise")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="load a run whose config names code from outside vwm-rnn "
        "(agent.name or task.id as package.module:Name); that code is imported",
    )
    return parser


def _error(message: str) -> None:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)


class _Session:
    """One CLI call: the loaded run, its out folder, the shared behavioural simulation and the
    results computed so far (an analysis that reuses another's takes it from here)."""

    def __init__(
        self,
        loaded,
        out_dir: Path,
        *,
        seed: int,
        trials: int | None,
        human: dict[str, Any],
        progress: bool = True,
    ) -> None:
        self.loaded, self.out_dir, self.seed = loaded, out_dir, seed
        self.trials, self.human, self.progress = trials, human, progress
        self._model_errors: dict[int, Any] = {}
        self._results: dict[str, Any] = {}
        self._untrained = None
        self.used: dict[str, dict[str, Any]] = {}
        """Per analysis, the settings its ``run`` was called with (``settings_used.json``)."""

    def model_errors(self, n_trials: int):
        """The model's errors on ``n_trials`` trials per set size, simulated once per call."""
        if n_trials not in self._model_errors:
            from analysis.core.trials import model_errors

            self._model_errors[n_trials] = model_errors(
                self.loaded.model, self.loaded.env, n_trials=n_trials, seed=self.seed
            )
        return self._model_errors[n_trials]

    def untrained_model(self):
        """The run's agent at its initial weights (rebuilt from the config with
        ``training.seed``, on the trained model's device, eval mode), built once per call."""
        if self._untrained is None:
            from vwm_agents.training.run import build_model

            device = next((p.device for p in self.loaded.model.parameters()), None)
            untrained = build_model(self.loaded.config, self.loaded.env)
            self._untrained = (untrained if device is None else untrained.to(device)).eval()
        return self._untrained

    def unavailable(self, name: str) -> str | None:
        hook = _unavailable_hook(registry.ANALYSES[name])
        return None if hook is None else hook(self.loaded.model, self.loaded.env)

    def result(self, name: str) -> Any:
        """Analysis ``name``'s result, computed once per call."""
        if name not in self._results:
            row = registry.ANALYSES[name]
            analysis_config = self.loaded.config.analysis
            settings = _settings_for(name, analysis_config)
            kwargs = {
                **{k: v for k, v in settings.items() if k != "trials"},
                **_trials_for(row, settings, analysis_config, self.trials),
            }
            if row.takes_human_data:
                kwargs.update(self.human)
            compute = registry.resolve(row.compute)
            _check_parameters(name, compute, kwargs)
            if "progress" in inspect.signature(compute).parameters:
                kwargs["progress"] = self.progress  # an analysis' own bar follows --no-progress
            if row.shares_model_errors:
                kwargs["data"] = self.model_errors(kwargs.get("n_trials", 1000))
            self.used[name] = {
                "seed": self.seed,
                **{
                    k: str(v) if isinstance(v, Path) else v
                    for k, v in kwargs.items()
                    if k not in ("data", "progress", *row.reuses)
                },
            }
            kwargs.update({used: self.result(used) for used in row.reuses})
            if row.takes_untrained_model:
                kwargs["untrained"] = self.untrained_model()
            self._results[name] = compute(
                self.loaded.model, self.loaded.env, seed=self.seed, **kwargs
            )
        return self._results[name]

    def run(self, name: str) -> list[Path]:
        row = registry.ANALYSES[name]
        result = self.result(name)
        plot = registry.resolve(row.figures)
        return [
            write_json(self.out_dir / row.json_name, result.to_dict()),
            *plot(result, self.out_dir),
        ]


SETTINGS_USED = "settings_used.json"
"""The settings each analysis last ran with (overrides included), for the report."""


def _write_settings_used(path: Path, used: dict[str, dict[str, Any]]) -> None:
    """Merge this call's settings into ``path`` (a call with --only keeps the others')."""
    import json

    try:
        previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        previous = {}
    write_json(path, {**previous, **used})


def _write_report(run_dir: Path) -> Path | None:
    """``analysis.report.write_report(run_dir)`` when that module exists, else None."""
    try:
        report = importlib.import_module("analysis.report")
    except ModuleNotFoundError as exc:
        if exc.name != "analysis.report":
            raise
        return None
    return report.write_report(run_dir)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m analysis`` / ``vwm-analysis``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    from tqdm.auto import tqdm

    from vwm_agents import RunDirError, load_run

    if args.trials is not None and args.trials < 1:
        _error(f"--trials: must be >= 1, got {args.trials}")
        return 2
    try:
        loaded = load_run(args.run_dir, checkpoint=args.checkpoint, trust_code=args.trust_code)
    except RunDirError as exc:
        _error(exc)
        return 2
    settings = loaded.config.analysis
    try:
        only = (
            _parse_only(args.only, source="--only")
            if args.only is not None
            else _parse_only(_as_dict(settings).get("only"), source="analysis.only")
        )
    except ValueError as exc:
        _error(exc)
        return 2
    from_config = args.human_data is None
    human_data = _as_dict(settings).get("human_data") if from_config else args.human_data
    if human_data is not None and not Path(human_data).exists():
        flag = "analysis.human_data" if from_config else "--human-data"
        _error(f"{flag}: {human_data} does not exist (a folder of .mat files or a CSV file)")
        return 2

    out_dir = loaded.run_dir / "analysis"
    out_dir.mkdir(parents=True, exist_ok=True)
    session = _Session(
        loaded,
        out_dir,
        seed=args.seed,
        trials=args.trials,
        human={
            "human_data": human_data,
            "human_units": args.human_units,
            "human_space": args.human_space,
        },
        progress=not args.no_progress,
    )
    failures = 0
    # no time estimate: the analyses differ in cost by 100x, so an average per analysis misleads;
    # the long ones (mixture, dn, fixed points) show their own bars with their own estimates
    bar = tqdm(
        only,
        desc="analyses",
        bar_format="{desc}: {n_fmt}/{total_fmt} [{elapsed}]{postfix}",
        disable=args.no_progress,
        file=sys.stderr,
    )
    for name in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        try:
            reason = session.unavailable(name)
            if reason is not None:
                reason = " ".join(str(reason).split()).removeprefix(f"{name}: ")
                bar.write(f"{name}: {reason} (skipped)", file=sys.stdout)
                continue
            written = session.run(name)
        except Exception as exc:  # noqa: BLE001 - one failing analysis must not stop the others
            failures += 1
            bar.write(
                f"error: {name}: {type(exc).__name__}: {' '.join(str(exc).split())}",
                file=sys.stderr,
            )
            continue
        bar.write(
            f"{name}: {', '.join(p.name for p in written)} ({time.perf_counter() - start:.1f} s)",
            file=sys.stdout,
        )
    bar.close()
    _write_settings_used(out_dir / SETTINGS_USED, session.used)
    try:
        report = _write_report(loaded.run_dir)
    except Exception as exc:  # noqa: BLE001 - the results are written; say what went wrong
        failures += 1
        _error(f"report: {type(exc).__name__}: {exc}")
    else:
        if report is not None:
            print(f"report: {report}")
    print(f"results in {out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

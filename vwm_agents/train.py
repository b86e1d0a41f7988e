"""Command line: ``python -m vwm_agents.train [--config PATH] [--out DIR] [--resume] ...``.

Without ``--config`` the run is the shipped ``configs/default.yaml`` (a CPU-sized model); keys a
config file leaves out take the reference model's values (``configs/original.yaml`` lists them).
The options ``--out``, ``--device``, ``--num-models`` and ``--no-progress`` set typed values
(``--out 2024`` is the directory ``2024``); ``--set`` values are parsed as YAML.

Exit codes: 0 done; 1 training diverged; 2 bad command line, config, run directory or checkpoint
(one line on stderr, nothing written); 130 interrupted with Ctrl-C (checkpoint saved).

``vwm_agents.train`` is also the library's ``train``: called, this module is
:func:`vwm_agents.training.api.train` (importing a submodule binds it as the package's attribute
of that name, so the command line's module and the public function must be one object).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.contrib.logging import logging_redirect_tqdm

from vwm_agents.cli import OneLineParser

__all__ = ["main", "build_parser"]


class _TrainModule(types.ModuleType):
    """This module, callable as :func:`vwm_agents.training.api.train`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Path:
        from vwm_agents.training.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _TrainModule


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m vwm_agents.train",
        description="Train an agent on a task; writes <out>/<name>/ (config, history, "
        "checkpoints, metrics.json, training_history.png).",
        epilog="Defaults: without --config the run is the shipped configs/default.yaml, sized for "
        "a CPU. Keys a config file leaves out take the reference model's values (the schema's "
        "defaults; configs/original.yaml lists them all), whichever file it is.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="YAML/JSON config, ours or the original four-section format "
        "(default: the shipped configs/default.yaml)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="directory for run directories, taken as written (default: logging.out_dir, 'runs')",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run exactly from its checkpoints/latest.pt",
    )
    parser.add_argument(
        "--device",
        metavar="DEVICE",
        help="auto, cpu, cuda or cuda:<index> (default: training.device; auto: "
        "cuda if available, else cpu)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (YAML-parsed); repeatable, "
        "e.g. --set training.seed=3 --set agent.n_neurons=64",
    )
    parser.add_argument(
        "--num-models",
        type=int,
        metavar="S",
        help="models trained side by side (training.num_models)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also used by the ``vwm-train`` console script)."""
    from vwm_agents.config import ConfigError, load_config
    from vwm_agents.training.accel import retain_freed_memory
    from vwm_agents.training.api import train
    from vwm_agents.training.checkpoint import CheckpointError
    from vwm_agents.training.distributed import environment_rank, launched_by_torchrun
    from vwm_agents.training.run import resolve_device
    from vwm_agents.training.rundir import RunDirError
    from vwm_agents.training.trainer import (
        TrainingFailed,
        TrainingInterrupted,
        TrainingRanksLost,
    )

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already reported)
        return int(exc.code or 0)
    # Typed values, set after loading: pasting them into "key=value" strings would let YAML
    # reinterpret them ("2024" -> int, "runs #1" -> "runs").
    options = {
        "logging.out_dir": ("--out", args.out),
        "training.device": ("--device", args.device),
        "training.num_models": ("--num-models", args.num_models),
        "logging.progress": ("--no-progress", False if args.no_progress else None),
    }
    config = None
    # Under torchrun every rank meets the same config, run directory and training verdicts:
    # rank 0 alone reports them (a lost rank is each survivor's own news).
    quiet = environment_rank() != 0
    if launched_by_torchrun():
        # torchrun stops every worker with SIGTERM when one of them ends or it is interrupted;
        # a training loop turns it into a clean stop, elsewhere it ends the process as Ctrl-C.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        config = load_config(args.config, args.overrides)
        for key, (option, value) in options.items():
            if value is not None:
                config = config.with_value(key, value, written_as=option)
        # Events of the run (noise stage, LR drop, early stop, resume) are logged at INFO;
        # the CLI shows them, above the progress bar when there is one.
        if resolve_device(config.training.device).type == "cpu":
            # The CLI owns its process, so it may set the allocator process-wide: freed
            # (B, T, N) buffers are reused instead of page-faulted in again (~20% per iteration).
            retain_freed_memory()
        events = logging.getLogger("vwm_agents")
        _show_events(events)
        with logging_redirect_tqdm(loggers=[events]):
            run_dir = train(config, resume=args.resume)
    except ConfigError as exc:
        return _fail(config.user_error(exc) if config is not None else exc, 2, quiet)
    except (RunDirError, CheckpointError) as exc:
        return _fail(exc, 2, quiet)
    except TrainingRanksLost as exc:
        return _fail(exc, 1)
    except TrainingFailed as exc:  # diverged, or out of memory: the last checkpoint is kept
        return _fail(exc, 1, quiet)
    except TrainingInterrupted as exc:
        if not quiet:
            print(str(exc), file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # a second Ctrl-C: at once, even while writing a checkpoint
        if not quiet:
            print(
                "interrupted; the last checkpoint written is complete (checkpoints are replaced "
                "atomically): continue with --resume",
                file=sys.stderr,
            )
        return 130
    except OSError as exc:  # an unwritable or full output folder
        where = exc.filename if exc.filename is not None else "the run directory"
        return _fail(
            f"{where}: {exc.strerror or exc} (the last checkpoint written is kept; a "
            "new run leaves nothing behind); choose another --out / logging.out_dir "
            "or free space",
            2,
        )
    if not quiet:
        print(run_dir)
    return 0


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _show_events(logger: logging.Logger) -> None:
    """INFO and above of ``logger`` on stderr, once (other libraries' logging left alone)."""
    if not any(getattr(h, "_vwm_events", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._vwm_events = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _fail(exc: Exception, code: int, quiet: bool = False) -> int:
    if not quiet:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

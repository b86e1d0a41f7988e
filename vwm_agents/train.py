"""Command line: ``python -m vwm_agents.train [--config PATH] [--out DIR] [--resume] ...``.

Exit codes: 0 done; 1 training diverged; 2 bad config, run directory or checkpoint (one line on
stderr, nothing written for a bad config); 130 interrupted with Ctrl-C (checkpoint saved).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vwm_agents.train",
        description="Train an agent on a task; writes runs/<name>/ (config, history, "
        "checkpoints, metrics.json, training_history.png).",
    )
    parser.add_argument("--config", metavar="PATH",
                        help="YAML/JSON config, ours or the original four-section format "
                        "(default: the embedded configs/default.yaml)")
    parser.add_argument("--out", metavar="DIR", help="directory for run directories "
                        "(default: logging.out_dir, 'runs')")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run exactly from its checkpoints/latest.pt")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"),
                        help="default: training.device (auto: cuda if available, else cpu)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="override a config value (YAML-parsed); repeatable, "
                        "e.g. --set training.seed=3 --set agent.n_neurons=64")
    parser.add_argument("--num-models", type=int, metavar="S",
                        help="models trained side by side (training.num_models)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also used by the ``vwm-train`` console script)."""
    from vwm_agents.checkpoint import CheckpointError
    from vwm_agents.config import ConfigError, load_config
    from vwm_agents.run import RunDirError
    from vwm_agents.trainer import TrainingDiverged, TrainingInterrupted, train

    args = build_parser().parse_args(argv)
    overrides = list(args.overrides)
    if args.out is not None:
        overrides.append(f"logging.out_dir={args.out}")
    if args.device is not None:
        overrides.append(f"training.device={args.device}")
    if args.num_models is not None:
        overrides.append(f"training.num_models={args.num_models}")
    if args.no_progress:
        overrides.append("logging.progress=false")
    try:
        config = load_config(args.config, overrides)
        run_dir = train(config, resume=args.resume)
    except (ConfigError, RunDirError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return 130
    print(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m vwm_agents.sweep SWEEP.yaml``: the command line of a sweep.

::

    python -m vwm_agents.sweep SWEEP.yaml [--address ADDR] [--max-concurrent N] [--resume]
                                          [--output DIR] [--quiet | --verbose]

Exit status 0 when every trial finished, 1 when some failed (the others' results are written),
2 for a bad sweep file or command line, or a cluster that cannot be reached or joined -- with one
line on stderr and nothing written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vwm_agents.cli import OneLineParser
from vwm_agents.sweep.results import RESULTS_CSV, write_report
from vwm_agents.sweep.runner import CONNECT_TIMEOUT_S, run_sweep
from vwm_agents.sweep.spec import SweepError, check_output, load_sweep, shipped_sweeps

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m vwm_agents.sweep",
        description="Run a parameter sweep of vwm_agents training runs on Ray Tune.",
    )
    parser.add_argument(
        "sweep",
        help="sweep file (YAML), or the name of a shipped sweep "
        f"({', '.join(shipped_sweeps()) or 'see configs/sweeps'})",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="a running Ray cluster: HOST:PORT of its head, 'auto' (the one this "
        "node belongs to) or ray://HOST:PORT; it must answer within "
        f"{CONNECT_TIMEOUT_S:g} s. Token authentication is used when the cluster "
        "wants it, with the token of $RAY_AUTH_TOKEN, the file $RAY_AUTH_TOKEN_PATH "
        "or ~/.ray/auth_token. Default: $RAY_ADDRESS if set, else a new Ray on this "
        "machine",
    )
    parser.add_argument(
        "--max-concurrent",
        type=_positive_int,
        default=None,
        metavar="N",
        help="run at most N trials at once (default: as many as resources allow)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in its output folder: skip finished trials, "
        "continue unfinished ones from their checkpoints",
    )
    parser.add_argument("--output", default=None, help="output folder (overrides the file's)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="no progress bar")
    shown.add_argument(
        "--verbose",
        action="store_true",
        help="Ray Tune's status table and the trials' logs as well",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0 when every trial finished, 1 when some failed, 2 for
    a bad sweep file or command line, or a cluster that cannot be joined."""
    args = build_parser().parse_args(argv)
    try:
        spec = load_sweep(args.sweep, output=args.output)
        check_output(spec, resume=args.resume)
        results = run_sweep(
            spec,
            address=args.address,
            max_concurrent=args.max_concurrent,
            resume=args.resume,
            verbose=1 if args.verbose else 0,
            progress=not args.quiet,
        )
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [row for row in results if row.status != "ok"]
    warning = write_report(spec.output)
    if warning is not None:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"sweep {spec.name}: {len(results) - len(failed)} of {len(results)} trials finished; "
        f"results in {spec.output / RESULTS_CSV}"
    )
    for row in failed:
        print(f"  failed: {row.trial}: {row.message}", file=sys.stderr)
    return 1 if failed else 0

"""``python -m analysis.report RUN_DIR|SWEEP_DIR``: write the HTML report from existing results.

A folder with ``sweep_results.csv`` gets ``sweep_report.html`` (and a ``report.html`` in every
trial's run directory); a run directory gets ``report.html``. Exit status 0 when written, 2 when
the folder is neither (one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Write RUN_DIR/report.html, or SWEEP_DIR/sweep_report.html for a sweep "
        "folder (one holding sweep_results.csv), from existing results.",
    )
    parser.add_argument("path", type=Path, help="a run directory or a sweep's output folder")
    parser.add_argument(
        "--no-trial-reports",
        action="store_true",
        help="sweeps: link only to trial reports that exist instead of writing them",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    from analysis.report import ReportError, is_sweep_dir, write_report, write_sweep_report

    try:
        if is_sweep_dir(args.path):
            path = write_sweep_report(args.path, trial_reports=not args.no_trial_reports)
        else:
            path = write_report(args.path)
    except ReportError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

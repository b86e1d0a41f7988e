"""Fit the mixture models to anyone's delayed-estimation data.

Usage::

    python -m analysis.fit_table DATA.csv [--units deg|rad] [--space orientation|circle] [--out DIR]

``DATA.csv`` has a header row with the columns ``set_size``, ``target``, ``response`` and,
optionally, ``participant`` (a label per row; the human comparison and the distance of
``python -m analysis`` take their standard errors across participants) and ``nontarget_1`` ..
``nontarget_M`` (the other items shown; a row of set size N fills exactly the first N - 1 of them
and leaves the rest empty). Errors are ``wrap(response - target)`` (our sign convention). Angles are in ``--units`` (default
rad); ``--space orientation`` means a 180-degree period (differences are doubled onto the full
circle), ``circle`` (default) a 360-degree one. Writes ``mixture.json`` (schema: see
:class:`analysis.behaviour.mixture.MixtureResult`; radians on the full circle), ``errors.json`` (error
statistics per set size) and figures to ``--out`` (default ``<DATA>_fit`` beside the file).
A malformed file is reported in one line naming the row and column, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from analysis.behaviour.errors import error_statistics
from analysis.behaviour.mixture import MixtureResult, fit_by_set_size
from analysis.core.jsonable import write_json
from analysis.human.data import (
    ANGLE_SPACES,
    ANGLE_UNITS,
    DataError,
    read_behaviour_csv,
)
from vwm_agents.cli import OneLineParser

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m analysis.fit_table",
        description="Fit von Mises+uniform, Gaussian+uniform and the Bays (2009) swap model per "
        "set size to a delayed-estimation data table (CSV).",
    )
    parser.add_argument(
        "data", type=Path, help="CSV with set_size, target, response [, nontarget_1..nontarget_M]"
    )
    parser.add_argument(
        "--units", choices=ANGLE_UNITS, default="rad", help="angle units in the file (default: rad)"
    )
    parser.add_argument(
        "--space",
        choices=ANGLE_SPACES,
        default="circle",
        help="orientation: 180-degree period, doubled to the full circle; "
        "circle: 360-degree period (default)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: <DATA>_fit beside the file)"
    )
    return parser


def _print_table(result: MixtureResult) -> None:
    print(
        f"{'N':>3} {'trials':>7} {'VM kappa':>9} {'VM sd':>7} {'guess':>6} "
        f"{'swap NT':>8} {'swap U':>7} {'dAIC swap-VM':>13}"
    )
    for n in result.set_sizes:
        f = result.fits[n]
        print(
            f"{n:>3} {f.n_trials:>7} {f.vm_uniform.kappa:>9.3f} {f.vm_uniform.sd:>7.3f} "
            f"{f.vm_uniform.p_guess:>6.3f} {f.swap.p_nontarget:>8.3f} {f.swap.p_guess:>7.3f} "
            f"{f.swap.aic - f.vm_uniform.aic:>13.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m analysis.fit_table`` / ``vwm-fit``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        data = read_behaviour_csv(args.data, units=args.units, space=args.space)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.units == "rad" and data.max_abs_angle > 2.0 * np.pi + 0.5:
        print(
            "warning: angles larger than 2 pi in a file read as radians; pass --units deg if "
            "they are degrees",
            file=sys.stderr,
        )
    out_dir = args.out if args.out is not None else args.data.with_name(f"{args.data.stem}_fit")
    out_dir.mkdir(parents=True, exist_ok=True)

    result = fit_by_set_size(data.errors, data.set_size, data.nontarget_errors)
    statistics = error_statistics(data.errors, data.set_size)
    write_json(out_dir / "mixture.json", result.to_dict())
    write_json(out_dir / "errors.json", statistics.to_dict())
    from analysis.viz.behaviour import plot_mixture

    figures = plot_mixture(result, out_dir)
    _print_table(result)
    print(
        f"wrote {out_dir / 'mixture.json'}, {out_dir / 'errors.json'} and "
        f"{', '.join(p.name for p in figures)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

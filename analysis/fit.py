"""Fit the mixture models to anyone's delayed-estimation data.

Usage::

    python -m analysis.fit DATA.csv [--units deg|rad] [--space orientation|circle] [--out DIR]

``DATA.csv`` has a header row with the columns ``set_size``, ``target``, ``response`` and,
optionally, ``nontarget_1`` .. ``nontarget_M`` (the other items shown; a row of set size N fills
exactly the first N - 1 of them and leaves the rest empty). Angles are in ``--units`` (default
rad); ``--space orientation`` means a 180-degree period (differences are doubled onto the full
circle), ``circle`` (default) a 360-degree one. Writes ``mixture.json`` (schema: see
:class:`analysis.mixture.MixtureResult`; radians on the full circle), ``errors.json`` (error
statistics per set size) and figures to ``--out`` (default ``<DATA>_fit`` beside the file).
A malformed file is reported in one line naming the row and column, with exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis import circstats
from analysis.errors import error_statistics
from analysis.mixture import MixtureResult, fit_by_set_size

__all__ = ["DataError", "BehaviouralData", "read_behaviour_csv", "main"]

REQUIRED_COLUMNS = ("set_size", "target", "response")
_NONTARGET = re.compile(r"nontarget_(\d+)$")


class DataError(ValueError):
    """A malformed data file; the message names the file, row and column."""


@dataclass
class BehaviouralData:
    """Errors on the full circle (radians) read from a table."""

    set_size: np.ndarray
    errors: np.ndarray
    nontarget_errors: np.ndarray | None  # (n, M) NaN-padded, None without non-target columns
    max_abs_angle: float  # largest |target| or |response| in the file's units


def read_behaviour_csv(path: str | Path, *, units: str = "rad", space: str = "circle"
                       ) -> BehaviouralData:
    """Read and validate a data table (see the module doc); raises :class:`DataError`."""
    if units not in ("deg", "rad"):
        raise ValueError(f"units: must be 'deg' or 'rad', got {units!r}")
    if space not in ("orientation", "circle"):
        raise ValueError(f"space: must be 'orientation' or 'circle', got {space!r}")
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a text CSV file ({exc})") from None
    if not rows:
        raise DataError(f"{path}: empty file; need a header with {', '.join(REQUIRED_COLUMNS)}")
    header = [name.strip() for name in rows[0]]
    for name in REQUIRED_COLUMNS:
        if name not in header:
            raise DataError(f"{path}: missing column '{name}' (header: {', '.join(header)}; "
                            f"need {', '.join(REQUIRED_COLUMNS)} and optional nontarget_1..M)")
    nontarget_cols = sorted((int(m.group(1)), i) for i, name in enumerate(header)
                            if (m := _NONTARGET.match(name)))
    numbers = [j for j, _ in nontarget_cols]
    if numbers != list(range(1, len(numbers) + 1)):
        raise DataError(f"{path}: non-target columns must be nontarget_1..nontarget_M without "
                        f"gaps, got {', '.join(f'nontarget_{j}' for j in numbers)}")
    data = rows[1:]
    if not data:
        raise DataError(f"{path}: no data rows after the header")
    col = {name: header.index(name) for name in REQUIRED_COLUMNS}
    n, m = len(data), len(nontarget_cols)
    set_size = np.empty(n, dtype=np.int64)
    target, response = np.empty(n), np.empty(n)
    nontargets = np.full((n, m), np.nan)

    def number(row_index: int, row: list[str], name: str, column: int) -> float:
        text = row[column].strip() if column < len(row) else ""
        try:
            value = float(text)
        except ValueError:
            shown = repr(text) if text else "an empty cell"
            raise DataError(f"{path}: row {row_index}, column '{name}': {shown} is not a "
                            "number") from None
        if not np.isfinite(value):
            raise DataError(f"{path}: row {row_index}, column '{name}': {text} is not finite")
        return value

    for i, row in enumerate(data):
        row_index = i + 1  # data rows counted from 1 (the header is line 1 of the file)
        size = number(row_index, row, "set_size", col["set_size"])
        if size != int(size) or size < 1:
            raise DataError(f"{path}: row {row_index}, column 'set_size': must be an integer "
                            f">= 1, got {row[col['set_size']].strip()}")
        set_size[i] = int(size)
        target[i] = number(row_index, row, "target", col["target"])
        response[i] = number(row_index, row, "response", col["response"])
        if not m:
            continue
        if set_size[i] - 1 > m:
            raise DataError(f"{path}: row {row_index}, column 'set_size': set size {set_size[i]} "
                            f"needs nontarget_1..nontarget_{set_size[i] - 1}, but the file has "
                            f"only {m} non-target columns")
        for j, column in nontarget_cols:
            name = f"nontarget_{j}"
            filled = column < len(row) and row[column].strip() != ""
            if j <= set_size[i] - 1:
                nontargets[i, j - 1] = number(row_index, row, name, column)
            elif filled:
                raise DataError(f"{path}: row {row_index}, column '{name}': set size "
                                f"{set_size[i]} has {set_size[i] - 1} non-targets, so "
                                f"{name} must be empty")

    full_circle = 2.0 * np.pi if units == "rad" else 360.0
    period = full_circle / 2 if space == "orientation" else full_circle
    scale = 2.0 * np.pi / period  # to radians on the full circle
    errors = circstats.wrap_angle(scale * (response - target))
    nt_errors = (circstats.wrap_angle(scale * (response[:, None] - nontargets)) if m else None)
    return BehaviouralData(set_size=set_size, errors=errors, nontarget_errors=nt_errors,
                           max_abs_angle=float(np.max(np.abs([target, response]))))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.fit",
        description="Fit von Mises+uniform, Gaussian+uniform and the Bays (2009) swap model per "
                    "set size to a delayed-estimation data table (CSV).",
    )
    parser.add_argument("data", type=Path, help="CSV with set_size, target, response "
                                                "[, nontarget_1..nontarget_M]")
    parser.add_argument("--units", choices=("deg", "rad"), default="rad",
                        help="angle units in the file (default: rad)")
    parser.add_argument("--space", choices=("orientation", "circle"), default="circle",
                        help="orientation: 180-degree period, doubled to the full circle; "
                             "circle: 360-degree period (default)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <DATA>_fit beside the file)")
    return parser


def _print_table(result: MixtureResult) -> None:
    print(f"{'N':>3} {'trials':>7} {'VM kappa':>9} {'VM sd':>7} {'guess':>6} "
          f"{'swap NT':>8} {'swap U':>7} {'dAIC swap-VM':>13}")
    for n in result.set_sizes:
        f = result.fits[n]
        print(f"{n:>3} {f.n_trials:>7} {f.vm_uniform.kappa:>9.3f} {f.vm_uniform.sd:>7.3f} "
              f"{f.vm_uniform.p_guess:>6.3f} {f.swap.p_nontarget:>8.3f} {f.swap.p_guess:>7.3f} "
              f"{f.swap.aic - f.vm_uniform.aic:>13.2f}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m analysis.fit`` / ``vwm-fit``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        data = read_behaviour_csv(args.data, units=args.units, space=args.space)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.units == "rad" and data.max_abs_angle > 2.0 * np.pi + 0.5:
        print("warning: angles larger than 2 pi in a file read as radians; pass --units deg if "
              "they are degrees", file=sys.stderr)
    out_dir = args.out if args.out is not None else args.data.with_name(f"{args.data.stem}_fit")
    out_dir.mkdir(parents=True, exist_ok=True)

    result = fit_by_set_size(data.errors, data.set_size, data.nontarget_errors)
    statistics = error_statistics(data.errors, data.set_size)
    (out_dir / "mixture.json").write_text(json.dumps(result.to_dict(), indent=2))
    (out_dir / "errors.json").write_text(json.dumps(statistics.to_dict(), indent=2))
    from analysis.mixture import plot

    figures = plot(result, out_dir)
    _print_table(result)
    print(f"wrote {out_dir / 'mixture.json'}, {out_dir / 'errors.json'} and "
          f"{', '.join(p.name for p in figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

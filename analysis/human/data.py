"""People's delayed-estimation data: the bottom layer of the human comparison (loading only).

* :func:`load_vandenberg2012` reads the van den Berg et al. (2012) orientation files shipped in
  ``analysis/data/vandenberg2012_orientation`` (or any folder of the same .mat files) into trial
  arrays. Orientations live on a 180-degree circle, so every difference (response - target and
  response - each non-target) is doubled onto the full circle, the space of our task.
* :func:`read_behaviour_csv` reads anyone's data table (the format of ``python -m analysis.fit_table``).
* :func:`load_people` takes either (None: the shipped files) and returns :class:`HumanTrials`.

Sign convention (ours, the same as for models in :mod:`analysis.core.trials`): an error is
``wrap(response - target)``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from analysis.core import circstats

__all__ = [
    "ANGLE_SPACES",
    "ANGLE_UNITS",
    "ORIENTATION_FOLDER",
    "REQUIRED_COLUMNS",
    "DataError",
    "HumanTrials",
    "BehaviouralData",
    "shipped_data_dir",
    "find_human_data",
    "load_vandenberg2012",
    "read_behaviour_csv",
    "load_people",
    "describe_people",
]

ORIENTATION_FOLDER = "vandenberg2012_orientation"
ANGLE_UNITS = ("deg", "rad")
"""Units a data table may give its angles in."""
ANGLE_SPACES = ("orientation", "circle")
"""Periods of a data table's angles: 180 degrees (doubled onto the circle) or 360."""
_BLOCKS = ("block_one", "block_two", "block_three", "block_four", "block_five")
CITATION = (
    "van den Berg, R., Shin, H., Chou, W.-C., George, R., & Ma, W. J. (2012). "
    "Variability in encoding precision accounts for visual short-term memory "
    "limitations. PNAS 109(22), 8780-8785. doi:10.1073/pnas.1117465109"
)


@dataclass
class HumanTrials:
    """Trials of the van den Berg et al. (2012) orientation experiment, on the full circle.

    Attributes:
        participant: (n,) participant initials.
        set_size: (n,) int, 1-8.
        target, response: (n,) doubled orientations in radians, [-pi, pi).
        errors: (n,) wrap(2 (response - target)) in radians.
        nontarget_errors: (n, 7) wrap(2 (response - other item)), NaN-padded.
    """

    participant: np.ndarray
    set_size: np.ndarray
    target: np.ndarray
    response: np.ndarray
    errors: np.ndarray
    nontarget_errors: np.ndarray

    @property
    def participants(self) -> list[str]:
        return sorted(set(self.participant.tolist()))

    def subset(self, rows: np.ndarray) -> HumanTrials:
        return HumanTrials(
            *(
                getattr(self, name)[rows]
                for name in (
                    "participant",
                    "set_size",
                    "target",
                    "response",
                    "errors",
                    "nontarget_errors",
                )
            )
        )


def shipped_data_dir() -> Path:
    """The folder of the van den Berg et al. (2012) files shipped with the package."""
    return Path(str(resources.files("analysis").joinpath("data", ORIENTATION_FOLDER)))


def find_human_data(path: str | Path | None = None) -> Path | None:
    """The folder holding the orientation .mat files, or None.

    ``path`` may be that folder or a folder holding it; None means the shipped copy.
    """
    candidates = [Path(path)] if path is not None else [shipped_data_dir()]
    for candidate in candidates:
        for folder in (candidate, candidate / ORIENTATION_FOLDER):
            if folder.is_dir() and any(folder.glob("*.mat")):
                return folder
    return None


def _double(degrees) -> np.ndarray:
    """Orientation differences in degrees (period 180) -> radians on the full circle."""
    return circstats.wrap_angle(np.deg2rad(2.0 * np.asarray(degrees, dtype=float)))


def load_vandenberg2012(data_dir: str | Path | None = None) -> HumanTrials:
    """Load every session file of the orientation experiment (default: the shipped copy; its
    README describes the format). Errors are ``wrap(2 (response - target))``.

    Raises:
        FileNotFoundError: no .mat files in ``data_dir`` (or its orientation sub-folder).
        ValueError: a file without the expected blocks and fields, naming file and field.
    """
    from scipy.io import loadmat

    folder = find_human_data(data_dir)
    if folder is None:
        raise FileNotFoundError(f"{data_dir}: no van den Berg (2012) .mat files found")
    columns: dict[str, list[np.ndarray]] = {
        name: []
        for name in ("participant", "set_size", "target", "response", "errors", "nontarget_errors")
    }
    for path in sorted(folder.glob("*.mat")):
        participant = re.match(r"[A-Za-z]+", path.stem)
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
        for block_name in _BLOCKS:
            try:
                block = mat[block_name]
                set_size = np.asarray(block.set_size, dtype=np.int64)
                true_deg = np.asarray(block.true_values, dtype=float)
                response_deg = np.asarray(block.subject_responses, dtype=float)
                items_deg = np.asarray(block.gabor_angles, dtype=float)  # (9, trials)
                cued = np.atleast_2d(block.cued_gabor)[0].astype(np.int64) - 1
            except (KeyError, AttributeError) as exc:
                raise ValueError(f"{path.name}: {block_name}: missing field {exc}") from None
            n = set_size.size
            # Items are rows 0..set_size-1 of gabor_angles; the cued one is the target.
            others = (np.arange(items_deg.shape[0])[:, None] < set_size[None, :]) & (
                np.arange(items_deg.shape[0])[:, None] != cued[None, :]
            )
            order = np.argsort(~others.T, axis=1, kind="stable")[:, : items_deg.shape[0] - 2]
            nt_deg = np.take_along_axis(items_deg.T, order, axis=1)
            nt_valid = np.take_along_axis(others.T, order, axis=1)
            columns["participant"].append(
                np.full(n, participant.group(0) if participant else path.stem)
            )
            columns["set_size"].append(set_size)
            columns["target"].append(_double(true_deg))
            columns["response"].append(_double(response_deg))
            columns["errors"].append(_double(response_deg - true_deg))
            columns["nontarget_errors"].append(
                np.where(nt_valid, _double(response_deg[:, None] - nt_deg), np.nan)
            )
    return HumanTrials(**{name: np.concatenate(parts) for name, parts in columns.items()})


class DataError(ValueError):
    """A malformed data file; the message names the file, row and column."""


REQUIRED_COLUMNS = ("set_size", "target", "response")
_NONTARGET = re.compile(r"nontarget_(\d+)$")


@dataclass
class BehaviouralData:
    """Errors on the full circle (radians) read from a table."""

    set_size: np.ndarray
    errors: np.ndarray
    nontarget_errors: np.ndarray | None  # (n, M) NaN-padded, None without non-target columns
    max_abs_angle: float  # largest |target| or |response| in the file's units
    participant: np.ndarray | None = None  # (n,) str, None without a participant column
    target: np.ndarray | None = None  # (n,) radians on the full circle
    response: np.ndarray | None = None

    def to_trials(self) -> HumanTrials:
        """As :class:`HumanTrials`; a file without a participant column is one participant."""
        n = self.errors.size
        nontarget = (
            self.nontarget_errors if self.nontarget_errors is not None else np.full((n, 0), np.nan)
        )
        participant = self.participant if self.participant is not None else np.full(n, "all")
        zeros = np.zeros(n)
        return HumanTrials(
            participant=participant,
            set_size=self.set_size,
            target=self.target if self.target is not None else zeros,
            response=self.response if self.response is not None else self.errors,
            errors=self.errors,
            nontarget_errors=nontarget,
        )


def read_behaviour_csv(
    path: str | Path, *, units: str = "rad", space: str = "circle"
) -> BehaviouralData:
    """Read and validate a data table; raises :class:`DataError` naming row and column.

    Columns: ``set_size``, ``target``, ``response``, optionally ``participant`` (any label) and
    ``nontarget_1`` .. ``nontarget_M`` (a row of set size N fills exactly the first N - 1). Angles
    are in ``units`` (``deg`` or ``rad``); ``space="orientation"`` means a 180-degree period
    (differences are doubled onto the full circle), ``"circle"`` a 360-degree one.
    """
    if units not in ANGLE_UNITS:
        raise ValueError(f"units: must be 'deg' or 'rad', got {units!r}")
    if space not in ANGLE_SPACES:
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
            raise DataError(
                f"{path}: missing column '{name}' (header: {', '.join(header)}; "
                f"need {', '.join(REQUIRED_COLUMNS)} and optional nontarget_1..M)"
            )
    nontarget_cols = sorted(
        (int(m.group(1)), i) for i, name in enumerate(header) if (m := _NONTARGET.match(name))
    )
    numbers = [j for j, _ in nontarget_cols]
    if numbers != list(range(1, len(numbers) + 1)):
        raise DataError(
            f"{path}: non-target columns must be nontarget_1..nontarget_M without "
            f"gaps, got {', '.join(f'nontarget_{j}' for j in numbers)}"
        )
    data = rows[1:]
    if not data:
        raise DataError(f"{path}: no data rows after the header")
    col = {name: header.index(name) for name in REQUIRED_COLUMNS}
    participant_col = header.index("participant") if "participant" in header else None
    n, m = len(data), len(nontarget_cols)
    participant = np.empty(n, dtype=object) if participant_col is not None else None
    set_size = np.empty(n, dtype=np.int64)
    target, response = np.empty(n), np.empty(n)
    nontargets = np.full((n, m), np.nan)

    def number(row_index: int, row: list[str], name: str, column: int) -> float:
        text = row[column].strip() if column < len(row) else ""
        try:
            value = float(text)
        except ValueError:
            shown = repr(text) if text else "an empty cell"
            raise DataError(
                f"{path}: row {row_index}, column '{name}': {shown} is not a number"
            ) from None
        if not np.isfinite(value):
            raise DataError(f"{path}: row {row_index}, column '{name}': {text} is not finite")
        return value

    for i, row in enumerate(data):
        row_index = i + 1  # data rows counted from 1 (the header is line 1 of the file)
        size = number(row_index, row, "set_size", col["set_size"])
        if size != int(size) or size < 1:
            raise DataError(
                f"{path}: row {row_index}, column 'set_size': must be an integer "
                f">= 1, got {row[col['set_size']].strip()}"
            )
        set_size[i] = int(size)
        if participant is not None:
            label = row[participant_col].strip() if participant_col < len(row) else ""
            if not label:
                raise DataError(
                    f"{path}: row {row_index}, column 'participant': empty cell; "
                    "every row needs a participant label"
                )
            participant[i] = label
        target[i] = number(row_index, row, "target", col["target"])
        response[i] = number(row_index, row, "response", col["response"])
        if not m:
            continue
        if set_size[i] - 1 > m:
            raise DataError(
                f"{path}: row {row_index}, column 'set_size': set size {set_size[i]} "
                f"needs nontarget_1..nontarget_{set_size[i] - 1}, but the file has "
                f"only {m} non-target columns"
            )
        for j, column in nontarget_cols:
            name = f"nontarget_{j}"
            filled = column < len(row) and row[column].strip() != ""
            if j <= set_size[i] - 1:
                nontargets[i, j - 1] = number(row_index, row, name, column)
            elif filled:
                raise DataError(
                    f"{path}: row {row_index}, column '{name}': set size "
                    f"{set_size[i]} has {set_size[i] - 1} non-targets, so "
                    f"{name} must be empty"
                )

    full_circle = 2.0 * np.pi if units == "rad" else 360.0
    period = full_circle / 2 if space == "orientation" else full_circle
    scale = 2.0 * np.pi / period  # to radians on the full circle
    errors = circstats.wrap_angle(scale * (response - target))
    nt_errors = circstats.wrap_angle(scale * (response[:, None] - nontargets)) if m else None
    return BehaviouralData(
        set_size=set_size,
        errors=errors,
        nontarget_errors=nt_errors,
        max_abs_angle=float(np.max(np.abs([target, response]))),
        participant=None if participant is None else participant.astype(str),
        target=circstats.wrap_angle(scale * target),
        response=circstats.wrap_angle(scale * response),
    )


def load_people(
    path: str | Path | None = None, *, units: str = "rad", space: str = "circle"
) -> HumanTrials:
    """People's trials from the shipped files (None), a folder of van den Berg .mat files, or a
    CSV file in ``python -m analysis.fit_table``'s format (``units``/``space`` apply to CSV only).

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no .mat files.
        DataError: a malformed CSV file (one line naming row and column).
    """
    if path is not None and Path(path).is_file():
        return read_behaviour_csv(path, units=units, space=space).to_trials()
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return load_vandenberg2012(path)


def describe_people(path: str | Path | None = None) -> str:
    """A one-line name of a data set of people for result files."""
    if path is None:
        return "van den Berg et al. (2012), orientation, 6 participants (shipped raw data)"
    return str(path)

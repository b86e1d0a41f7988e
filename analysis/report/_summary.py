"""Tables from an analysis' JSON file, whatever its shape.

The analyses keep changing what they write, so the report does not know their formats: it turns
any JSON object into key/value tables of its scalars and into row tables of its record maps
(``{"1": {...}, "2": {...}}`` keyed by set size, or records that share their keys), and lists
what it leaves out (long arrays, lists of records) by name and size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Table", "Summary", "summarise"]

SHORT_LIST = 6  # lists of scalars up to this length are shown inline
MAX_ROWS = 16  # longer columns (histograms, per-neuron values) are named, not tabulated
MAX_DEPTH = 4


@dataclass
class Table:
    """``title``, column ``headers`` and ``rows`` (first column: the row label)."""

    title: str
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Summary:
    """The tables of one JSON object and the names of what they leave out."""

    tables: list[Table] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_inline(value: Any) -> bool:
    return _is_scalar(value) or (
        isinstance(value, list) and len(value) <= SHORT_LIST and all(_is_scalar(v) for v in value)
    )


def _int_like(key: Any) -> bool:
    try:
        int(str(key))
    except ValueError:
        return False
    return True


def _is_record_map(value: Any) -> bool:
    """A map of records: keyed by integers (set sizes), or >= 2 records with the same keys."""
    if not isinstance(value, Mapping) or not value:
        return False
    if not all(isinstance(v, Mapping) and v for v in value.values()):
        return False
    if all(_int_like(k) for k in value):
        return True
    keys = [tuple(v) for v in value.values()]
    return len(value) >= 2 and len(set(keys)) == 1


def _is_column_map(value: Any) -> bool:
    """Columns of one table: >= 2 lists of scalars of one length >= 2 (e.g. one per statistic)."""
    if not isinstance(value, Mapping) or len(value) < 2:
        return False
    lengths = {
        len(v) if isinstance(v, list) and all(_is_scalar(x) for x in v) else -1
        for v in value.values()
    }
    return len(lengths) == 1 and 2 <= min(lengths) <= MAX_ROWS


def _column_table(title: str, columns: Mapping, labels: list | None) -> Table:
    length = len(next(iter(columns.values())))
    label, keys = ("set size", labels) if labels and len(labels) == length else ("row", None)
    keys = keys or list(range(length))
    return Table(
        title=title,
        headers=[label, *map(str, columns)],
        rows=[[key, *(column[i] for column in columns.values())] for i, key in enumerate(keys)],
    )


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"list of {len(value)}"
    if isinstance(value, Mapping):
        return f"map of {len(value)}"
    return type(value).__name__


def _flatten(
    record: Mapping, prefix: str, out: dict[str, Any], omitted: list[str], where: str, depth: int
) -> None:
    for key, value in record.items():
        name = f"{prefix}{key}"
        if _is_inline(value):
            out[name] = value
        elif isinstance(value, Mapping) and depth < MAX_DEPTH:
            _flatten(value, f"{name}.", out, omitted, where, depth + 1)
        else:
            omitted.append(f"{where}[*].{name} ({_describe(value)})")


def _record_tables(title: str, records: Mapping, omitted: list[str]) -> list[Table]:
    """One table per group of columns: the records' own scalars, then each nested record."""
    keys = list(records)
    if all(_int_like(k) for k in keys):
        keys.sort(key=lambda k: int(str(k)))
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for key in keys:
        for column_key, value in records[key].items():
            if _is_inline(value):
                groups.setdefault("", {}).setdefault(str(key), {})[str(column_key)] = value
            elif isinstance(value, Mapping):
                flat: dict[str, Any] = {}
                _flatten(value, "", flat, omitted, f"{title}.{column_key}", 1)
                if flat:
                    groups.setdefault(str(column_key), {})[str(key)] = flat
            else:
                name = f"{title}[*].{column_key} ({_describe(value)})"
                if name not in omitted:
                    omitted.append(name)
    tables = []
    label = title.rsplit(".", 1)[-1]
    for group, rows in groups.items():
        columns = list(dict.fromkeys(c for row in rows.values() for c in row))
        tables.append(
            Table(
                title=f"{title} ({group})" if group else title,
                headers=[label, *columns],
                rows=[[key, *(row.get(c) for c in columns)] for key, row in rows.items()],
            )
        )
    return tables


def summarise(data: Any, title: str = "") -> Summary:
    """Tables of ``data`` (a parsed JSON value) and the names of what they leave out."""
    summary = Summary()
    if isinstance(data, list):
        summary.omitted.append(f"{title or 'value'} ({_describe(data)})")
        return summary
    if not isinstance(data, Mapping):
        summary.tables.append(Table(title or "value", ["value"], [[data]]))
        return summary
    scalars: list[list[Any]] = []

    def visit(obj: Mapping, prefix: str, depth: int, labels: list | None = None) -> None:
        sizes = obj.get("set_sizes")
        if isinstance(sizes, list) and all(_is_scalar(v) for v in sizes):
            labels = sizes  # rows of the column tables below this level
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if key == "set_sizes" and value is labels:
                scalars.append([name, value])
            elif _is_column_map(value):
                summary.tables.append(_column_table(name, value, labels))
            elif _is_inline(value):
                scalars.append([name, value])
            elif _is_record_map(value):
                summary.tables.extend(_record_tables(name, value, summary.omitted))
            elif isinstance(value, Mapping) and depth < MAX_DEPTH:
                visit(value, f"{name}.", depth + 1, labels)
            else:
                summary.omitted.append(f"{name} ({_describe(value)})")

    if _is_record_map(data):
        summary.tables.extend(_record_tables(title or "records", data, summary.omitted))
    else:
        visit(data, "", 0)
    if scalars:
        summary.tables.insert(0, Table(title or "values", ["key", "value"], scalars))
    return summary

"""The JSON form of analysis results, one rule for every file the toolkit writes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["to_jsonable", "write_json"]


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


def write_json(path: Path, value: Any) -> Path:
    """``value`` through :func:`to_jsonable` into ``path`` (indented, strict JSON); returns it."""
    path.write_text(json.dumps(to_jsonable(value), indent=2, allow_nan=False))
    return path

"""The names of a sweep's trials: readable, unique and safe as directory names."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["trial_names", "format_value"]


def trial_names(param_sets: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """Readable, unique, filesystem-safe names: ``spike_noise_factor-0.1_seed-0``.

    Keys are shortened to their last part unless two swept keys share it; names that still
    collide after sanitising get a short hash of their values.
    """
    last = [key.rsplit(".", 1)[-1] for key in keys]
    labels = {
        key: (short if last.count(short) == 1 else key)
        for key, short in zip(keys, last, strict=True)
    }
    names = [
        "_".join(f"{labels[key]}-{format_value(value)}" for key, value in params.items())
        for params in param_sets
    ]
    for i, name in enumerate(names):
        if names.count(name) > 1:
            digest = hashlib.sha1(repr(sorted(param_sets[i].items())).encode()).hexdigest()[:8]
            names[i] = f"{name}_{digest}"
    return names


def format_value(value: Any) -> str:
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        text = "-".join(format_value(v) for v in value)
    elif isinstance(value, Mapping):
        text = "-".join(f"{k}{format_value(v)}" for k, v in value.items())
    else:
        text = str(value)
    return re.sub(r"[^\w.+-]", "", text) or "none"

"""The error type and the value specifications every part of the config package checks with."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SECTIONS", "ConfigError", "Spec", "assign", "bad_value", "show"]

# The sections of our schema (vwm_agents.config.schema defines them; the original-format mapping
# needs the names too).
SECTIONS: tuple[str, ...] = ("task", "agent", "training", "logging", "analysis")


class ConfigError(ValueError):
    """A bad configuration; the message is one line ``<key as written>: <what is allowed>``."""


@dataclass(frozen=True)
class Spec:
    """What one schema key accepts."""

    kind: str  # "int", "float", "bool", "str", "choice", "device", "str_list"
    low: float | None = None
    low_open: bool = False  # low is exclusive
    high: float | None = None
    high_open: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """What the key accepts, in words ("an integer >= 1")."""
        if self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(self.choices)
        elif self.kind == "device":
            text = "one of auto, cpu, cuda, cuda:<index>"
        elif self.kind == "str":
            text = "a non-empty string"
        elif self.kind == "str_list":
            text = "a list of strings"
        else:
            noun = "an integer" if self.kind == "int" else "a number"
            if self.low == 0 and self.low_open and self.high is None:
                text = "a positive " + noun[noun.index(" ") + 1 :]
            else:
                bounds = []
                if self.low is not None:
                    bounds.append(f"{'>' if self.low_open else '>='} {_fmt(self.low)}")
                if self.high is not None:
                    bounds.append(f"{'<' if self.high_open else '<='} {_fmt(self.high)}")
                text = noun + (" " + " and ".join(bounds) if bounds else "")
        return ("null or " + text) if self.nullable else text

    def check(self, key: str, value: Any) -> Any:
        """Return ``value`` (ints widened to float for float keys) or raise ConfigError."""
        if value is None:
            if self.nullable:
                return None
            raise bad_value(key, self.describe(), value)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise bad_value(key, self.describe(), value)
            return value
        if self.kind == "choice" and value is False and "off" in self.choices:
            value = "off"  # YAML 1.1 reads a bare ``off`` as false
        if self.kind in ("str", "choice", "device"):
            ok = isinstance(value, str) and value != ""
            if self.kind == "choice":
                ok = ok and value in self.choices
            if self.kind == "device":
                ok = ok and (value in ("auto", "cpu", "cuda") or _is_cuda_index(value))
            if not ok:
                raise bad_value(key, self.describe(), value)
            return value
        if self.kind == "str_list":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise bad_value(key, self.describe(), value)
            return list(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_value(key, self.describe(), value)
        if self.kind == "int" and not isinstance(value, int):
            raise bad_value(key, self.describe(), value)
        number = float(value) if self.kind == "float" else value
        if not math.isfinite(number):
            raise bad_value(key, self.describe(), value)
        if self.low is not None and (number < self.low or (self.low_open and number == self.low)):
            raise bad_value(key, self.describe(), value)  # as written: -1, not -1.0
        if self.high is not None and (
            number > self.high or (self.high_open and number == self.high)
        ):
            raise bad_value(key, self.describe(), value)
        return number


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _is_cuda_index(value: str) -> bool:
    head, _, index = value.partition(":")
    return head == "cuda" and index.isdigit()


def bad_value(key: str, allowed: str, value: Any) -> ConfigError:
    """``ConfigError("<key>: must be <allowed>, got <value>")``."""
    return ConfigError(f"{key}: must be {allowed}, got {show(value)}")


def show(value: Any) -> str:
    """A value as the user would have written it in YAML, shortened to one short line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    text = json.dumps(value, default=repr) if isinstance(value, (list, dict)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def assign(tree: dict[str, Any], path: Sequence[str], value: Any, *, prefix: str = "") -> None:
    """Set ``tree[path[0]][path[1]]... = value`` in place, making missing mappings on the way.

    ``prefix`` (``"agent."``) is prepended to the dotted keys in the message of the
    :class:`ConfigError` raised where a key on the way holds something other than a mapping.
    """
    node = tree
    for depth, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(
                f"{prefix}{'.'.join(path[: depth + 1])}: is not a mapping, cannot set "
                f"{prefix}{'.'.join(path)}"
            )
        node = child
    node[path[-1]] = value

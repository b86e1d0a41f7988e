"""Reading config files and applying ``section.key=value`` overrides."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from vwm_agents.config.original import is_original_format, map_original
from vwm_agents.config.schema import SECTIONS, Config
from vwm_agents.config.specs import ConfigError, assign, show

__all__ = [
    "DEFAULT_CONFIG",
    "shipped_configs",
    "load_config",
    "parse_override",
    "apply_overrides",
    "yaml_load",
]

# The config the command line reads without --config: a CPU-sized run, shipped in the package.
DEFAULT_CONFIG = "default.yaml"


def shipped_configs() -> Traversable:
    """The folder of shipped configs (``configs/`` of the repository).

    An install provides it as the resource package ``vwm_agents.configs``. A source tree that
    Python imports ahead of an installed copy (``python -m vwm_agents.train`` run from the
    repository root after a non-editable install) has no such package, but ``configs/`` lies
    beside ``vwm_agents/`` there.
    """
    try:
        return resources.files("vwm_agents.configs")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "configs"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-3`` is a number, not the string '1e-3'."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse YAML as config files are parsed (safe loader, ``1e-3`` is a float)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Read, override and validate a configuration.

    Args:
        path: a YAML or JSON file in our schema or the original four-section format; ``None``
            reads the shipped ``configs/default.yaml`` (the command line's default run, sized
            for a CPU). Keys a file leaves out take the reference model's values (the schema's
            defaults), whichever file it is.
        overrides: ``"section.key=value"`` strings applied after reading (value parsed as YAML;
            nested keys such as ``task.timing.delay=500`` work too). Overrides address our schema,
            also when the file is in the original format. To set a value that must not be parsed
            (a directory name such as ``2024`` or ``runs #1``), use :meth:`Config.with_value`.

    >>> from vwm_agents import load_config
    >>> config = load_config(overrides=["training.seed=3", "agent.n_neurons=64"])
    >>> config.training.seed, config.agent.kwargs["n_neurons"]
    (3, 64)
    """
    data = _read(path)
    origin: dict[str, str] = {}
    if is_original_format(data):
        data, origin = map_original(data)
    overrides = [overrides] if isinstance(overrides, str) else list(overrides)
    data = apply_overrides(data, overrides)
    for text in overrides:  # an overridden key is named as the user wrote it in --set
        key = text.partition("=")[0].strip()
        for known in [k for k in origin if k == key or k.startswith(key + ".")]:
            del origin[known]
    return Config.from_dict(data, origin=origin)


def _read(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        text = shipped_configs().joinpath(DEFAULT_CONFIG).read_text()
        source = f"configs/{DEFAULT_CONFIG}"
    else:
        path = Path(path)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or " ".join(str(exc).split())
            raise ConfigError(f"config: cannot read {path}: {reason}") from None
        source = str(path)
    try:
        if path is not None and Path(path).suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"config: {source} is not valid YAML/JSON: {detail}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config: {source} must hold a mapping of sections, got {show(data)}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"section.key=value"`` into the key path and the YAML-parsed value."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or not all(path):
        raise ConfigError(f"--set {text}: must look like section.key=value")
    if path[0] not in SECTIONS:
        raise ConfigError(
            f"--set {text}: unknown section {path[0]!r}; allowed: {', '.join(SECTIONS)}"
        )
    try:
        value = yaml_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"{key}: value {raw!r} is not valid YAML") from None
    return path, value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``data`` (our schema) with the ``section.key=value`` overrides applied."""
    data = copy.deepcopy(dict(data))
    if isinstance(overrides, str):
        overrides = [overrides]
    for text in overrides:
        path, value = parse_override(text)
        assign(data, path, value)
    return data

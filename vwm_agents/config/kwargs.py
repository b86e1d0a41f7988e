"""Checking the free-form sections: env and agent keyword arguments against their signatures.

The schema cannot list the kwargs of every gymnasium env or agent class, so the ``task`` and
``agent`` sections are checked against the constructor they will be passed to: names, and types
where the constructor annotates them. Values (ranges, consistency) are the env's and the agent's
own business and are checked once, when they are built.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from vwm_agents.config.specs import ConfigError, show

__all__ = ["check_kwargs", "resolve_env_class"]

_ENV_EXAMPLES = "e.g. VWMRecall-v0, VWMRecallCued-v0 or a neurogym id such as DelayMatchSample-v0"


def resolve_env_class(env_id: str) -> type | None:
    """The class behind a gymnasium id, or None when its entry point is not a class.

    Accepts ``"module:EnvId"`` (gymnasium imports ``module`` first) as well as plain ids;
    neurogym is imported when a plain id is not registered yet, because it registers its tasks
    on import. Raises ConfigError naming ``task.id`` for an id that is still unknown.
    """
    import gymnasium as gym

    module_name, sep, name = env_id.rpartition(":")
    if sep:
        try:
            importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"task.id: cannot import {module_name!r} of {env_id!r} ({exc}); allowed: a "
                f"registered gymnasium id or 'module:EnvId', {_ENV_EXAMPLES}"
            ) from None
    elif name not in gym.envs.registry:
        try:
            import neurogym  # noqa: F401
        except ImportError:
            pass
    if name not in gym.envs.registry:
        raise ConfigError(
            f"task.id: unknown environment {env_id!r}; allowed: a registered gymnasium id, {_ENV_EXAMPLES}"
        )
    entry_point = gym.envs.registry[name].entry_point
    if callable(entry_point):
        return entry_point if inspect.isclass(entry_point) else None
    target_module, _, attr = str(entry_point).partition(":")
    try:
        target = getattr(importlib.import_module(target_module), attr)
    except (ImportError, AttributeError):
        return None  # gym.make reports it when the env is built
    return target if inspect.isclass(target) else None


def check_kwargs(
    function: Any, kwargs: Mapping[str, Any], section: str, *, owner: str, skip: Iterable[str] = ()
) -> None:
    """Check ``kwargs`` against ``function``'s signature: names, and types from its annotations.

    Raises ConfigError naming ``{section}.{key}``. Functions taking ``**kwargs`` accept any name.
    """
    signature = inspect.signature(function)
    skip = set(skip)
    params = {
        name: p
        for name, p in signature.parameters.items()
        if name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # unresolvable annotations: names are still checked
        hints = {}
    for key, value in kwargs.items():
        if key not in params:
            if open_ended:
                continue
            allowed = ", ".join(params) or "none"
            raise ConfigError(f"{section}.{key}: unknown argument of {owner}; allowed: {allowed}")
        hint = hints.get(key)
        if hint is not None and not _matches(value, hint):
            raise ConfigError(f"{section}.{key}: must be {_describe_type(hint)}, got {show(value)}")


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (plain YAML data) fits the annotation ``hint``; unknown hints accept."""
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    container = origin or hint
    if container in (list, tuple, typing.Sequence) or (
        inspect.isclass(container) and issubclass(container, (list, tuple))
    ):
        return isinstance(value, (list, tuple))
    if container in (dict, typing.Mapping) or (
        inspect.isclass(container) and issubclass(container, dict)
    ):
        return isinstance(value, dict)
    return True


def _describe_type(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if hint is type(None):
        return "null"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    container = origin or hint
    if container in (list, tuple) or container is typing.Sequence:
        return "a list"
    if container in (dict,) or container is typing.Mapping:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))

"""The free-form sections of the schema: a name (an env id, an agent name) plus the keyword
arguments of what it names, checked against that constructor's signature.

``vwm_agents.config.schema`` re-exports :class:`TaskConfig` and :class:`AgentConfig`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vwm_agents.config.kwargs import check_kwargs, resolve_env_class
from vwm_agents.config.specs import ConfigError, assign, bad_value, show

__all__ = ["AgentConfig", "TaskConfig", "set_nested"]


@dataclass(frozen=True)
class TaskConfig:
    """The ``task`` section: a gymnasium id (or ``module:EnvId``) and the env's keyword arguments."""

    id: str = "VWMRecall-v0"
    kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> TaskConfig:
        env_id, kwargs = _split_named(data, "task", "id", cls.id, "a gymnasium environment id")
        return cls(id=env_id, kwargs=kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **copy.deepcopy(self.kwargs)}

    def env_class(self) -> type | None:
        """The env's class (None when its entry point is not a class), resolved once.

        The first call looks the id up in the gymnasium registry (importing neurogym or the
        ``module:`` of the id as needed, so that ``gym.make`` finds it afterwards); the result
        is kept on this (immutable) section, so later calls and copies made with
        :meth:`Config.with_value` that leave the task alone do not look again.
        """
        if "_env_class" not in self.__dict__:
            self.__dict__["_env_class"] = resolve_env_class(self.id)  # frozen: bypass __setattr__
        return self.__dict__["_env_class"]

    def check(self) -> None:
        """Check the kwargs against the env's constructor."""
        env_class = self.env_class()
        if env_class is not None:
            check_kwargs(env_class.__init__, self.kwargs, "task", owner=self.id, skip=("self",))


@dataclass(frozen=True)
class AgentConfig:
    """The ``agent`` section: a registered agent name (or ``module:Class``) and its kwargs."""

    name: str = "dale_rnn"
    kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> AgentConfig:
        name, kwargs = _split_named(
            data, "agent", "name", cls.name, "an agent name or 'package.module:Class'"
        )
        return cls(name=name, kwargs=kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **copy.deepcopy(self.kwargs)}

    def agent_class(self) -> type:
        """The agent's class (a registered name or a ``module:Class`` import path), resolved once
        per section like :meth:`TaskConfig.env_class`."""
        if "_agent_class" not in self.__dict__:
            self.__dict__["_agent_class"] = self._resolve()
        return self.__dict__["_agent_class"]

    def _resolve(self) -> type:
        from vwm_agents.models import AGENTS, resolve_agent

        try:
            return resolve_agent(self.name)
        except ValueError as exc:
            if ":" in self.name:  # the registry's message says why the import path failed
                raise ConfigError(f"agent.name: {' '.join(str(exc).split())}") from None
            raise ConfigError(
                f"agent.name: unknown agent {self.name!r}; allowed: {', '.join(AGENTS)} "
                "or 'package.module:ClassName'"
            ) from None

    def check(self) -> None:
        """The one check of agent kwargs: names and annotated types against the class's __init__."""
        check_kwargs(
            self.agent_class().__init__,
            self.kwargs,
            "agent",
            owner=self.name,
            skip=("self", "n_inputs", "n_outputs"),
        )


def _split_named(data: Any, section: str, key: str, default: str, allowed: str) -> tuple[str, dict]:
    """``{key: name, **kwargs}`` -> (name, kwargs), checking the mapping and the name."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section}: must be a mapping of keys to values, got {show(data)}")
    kwargs = dict(copy.deepcopy(data))
    for name in kwargs:
        if not isinstance(name, str):
            raise ConfigError(f"{section}.{name}: keys must be strings")
    name = kwargs.pop(key, default)
    if not isinstance(name, str) or not name:
        raise bad_value(f"{section}.{key}", allowed, name)
    return name, kwargs


def set_nested(kwargs: dict[str, Any], section: str, path: list[str], value: Any) -> dict[str, Any]:
    """A deep copy of ``kwargs`` with ``path`` (one or more keys) set to ``value``."""
    out = copy.deepcopy(kwargs)
    assign(out, path, value, prefix=f"{section}.")
    return out

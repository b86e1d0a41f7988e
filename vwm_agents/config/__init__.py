"""Run configuration: the schema, loading and ``--set`` overrides, the original format.

- :mod:`~vwm_agents.config.schema`: the five sections, their keys, defaults (the reference
  model's) and checks; :class:`Config` is validated once and then immutable.
- :mod:`~vwm_agents.config.loading`: :func:`load_config` (a file, or the shipped
  ``configs/default.yaml`` when no path is given, plus ``section.key=value`` overrides).
- :mod:`~vwm_agents.config.original`: the original code's four-section format, mapped both ways.
- :mod:`~vwm_agents.config.kwargs`: env and agent kwargs checked against their constructors.

Nothing here imports torch at import time (the agent registry is imported when an agent name is
resolved).
"""

from vwm_agents.config.kwargs import check_kwargs, resolve_env_class
from vwm_agents.config.loading import (
    DEFAULT_CONFIG,
    apply_overrides,
    load_config,
    parse_override,
    yaml_load,
)
from vwm_agents.config.original import (
    ORIGINAL_SECTIONS,
    from_original,
    is_original_format,
    map_original,
    to_original,
)
from vwm_agents.config.schema import (
    COMPILE_MODES,
    DISTRIBUTED_BACKENDS,
    ERROR_DEFS,
    SECTIONS,
    AgentConfig,
    Config,
    LoggingConfig,
    Section,
    TaskConfig,
    TrainingConfig,
)
from vwm_agents.config.specs import ConfigError

__all__ = [
    "COMPILE_MODES",
    "DEFAULT_CONFIG",
    "DISTRIBUTED_BACKENDS",
    "ERROR_DEFS",
    "ORIGINAL_SECTIONS",
    "SECTIONS",
    "AgentConfig",
    "Config",
    "ConfigError",
    "LoggingConfig",
    "Section",
    "TaskConfig",
    "TrainingConfig",
    "apply_overrides",
    "check_kwargs",
    "from_original",
    "is_original_format",
    "load_config",
    "map_original",
    "parse_override",
    "resolve_env_class",
    "to_original",
    "yaml_load",
]

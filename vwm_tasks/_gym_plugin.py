"""Gymnasium plugin hook: registers our task ids when gymnasium is imported.

Runs while ``gymnasium`` itself is half-imported, so it may import only
``gymnasium.envs.registration`` and nothing that imports neurogym (neurogym imports
``gymnasium.make`` at import time, which does not exist yet at that point).
"""

from __future__ import annotations

TASKS: dict[str, str] = {
    "VWMRecall-v0": "vwm_tasks.recall:VWMRecall",
    "VWMRecallCued-v0": "vwm_tasks.recall_cued:VWMRecallCued",
}


def register_envs() -> None:
    """Register every vwm_tasks id with gymnasium (idempotent)."""
    # Imported here, not at module level: importing gymnasium runs its plugin loader, which
    # imports this module; a module-level import would hand it a half-initialised module.
    from gymnasium.envs.registration import register, registry

    for env_id, entry_point in TASKS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point)

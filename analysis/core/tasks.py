"""What an analysis asks of the task: its name, and whether it is a VWM recall task.

A VWM recall task draws batches of items with set sizes (``sample_batch``, ``set_sizes``,
``max_items``) and builds a trial from given angles (``trial_vectors``): the behavioural analyses
need the first, the neural ones force trials with the second. Analyses that need one say so in
one line through :func:`needs_vwm_recall` / :func:`needs_vwm_task`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["task_name", "is_vwm_task", "needs_vwm_task", "needs_vwm_recall"]

_VWM_TASK_ATTRIBUTES = ("sample_batch", "set_sizes", "max_items", "trial_vectors")


def _base(env: Any) -> Any:
    return getattr(env, "unwrapped", env)


def task_name(env: Any) -> str:
    """The env's gymnasium id when it has one, else its class name."""
    base = _base(env)
    for candidate in (getattr(env, "spec", None), getattr(base, "spec", None)):
        if candidate is not None and getattr(candidate, "id", None):
            return str(candidate.id)
    return type(base).__name__


def is_vwm_task(env: Any) -> bool:
    """Whether ``env`` is a VWM recall task (see the module docstring)."""
    base = _base(env)
    return all(hasattr(base, name) for name in _VWM_TASK_ATTRIBUTES)


def needs_vwm_recall(model: Any, env: Any) -> str | None:
    """``unavailable`` hook of the analyses that need items, set sizes and reported angles."""
    if is_vwm_task(env):
        return None
    return f"needs a VWM recall task; this run trained {task_name(env)}"


def needs_vwm_task(analysis: str, env: Any, min_items: int = 1) -> str | None:
    """A one-line reason, naming ``analysis``, when ``env`` is not a VWM recall task with
    ``min_items`` slots; else None."""
    reason = needs_vwm_recall(None, env)
    if reason is not None:
        return f"{analysis}: {reason}"
    if int(_base(env).max_items) < min_items:
        return f"{analysis}: needs max_items >= {min_items}; this task has {_base(env).max_items}"
    return None

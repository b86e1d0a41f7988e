"""The run directory: its layout, its name, and the files in it (written atomically or appended).

A run directory (written by :func:`vwm_agents.trainer.train`)::

    runs/<name>/
        config.yaml            the resolved config (our schema)
        history.jsonl          one JSON record per logging step, appended (never rewritten)
        metrics.json           final evaluation of best.pt on the fixed test batch
        training_history.png
        checkpoints/latest.pt  everything needed to resume exactly
        checkpoints/best.pt    weights with the lowest validation error

Runs written before the history became JSON lines have ``history.yaml`` (a YAML list) instead;
:func:`read_history` reads both. An ensemble (``training.num_models: S``) writes ``config.yaml``
of the whole run and one such directory per member, ``seed_<s>/``.

This module builds nothing (no env, no model): a sweep can name and inspect its trials' run
directories from their configs alone.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vwm_agents.config import Config

__all__ = [
    "CONFIG_FILE",
    "HISTORY_FILE",
    "LEGACY_HISTORY_FILE",
    "METRICS_FILE",
    "PLOT_FILE",
    "CHECKPOINT_DIR",
    "TENSORBOARD_DIR",
    "LATEST_CHECKPOINT",
    "BEST_CHECKPOINT",
    "RunDirError",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_history",
    "append_history",
    "truncate_history",
    "run_name",
    "member_dir",
    "check_new_run",
    "check_resumable",
    "check_same_config",
    "saved_config",
    "RESUMABLE_CHANGES",
]

CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.jsonl"
LEGACY_HISTORY_FILE = "history.yaml"
METRICS_FILE = "metrics.json"
PLOT_FILE = "training_history.png"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
LATEST_CHECKPOINT = f"{CHECKPOINT_DIR}/latest.pt"
BEST_CHECKPOINT = f"{CHECKPOINT_DIR}/best.pt"

# Keys that may differ between the saved config and the one given to --resume: they change how
# the run is executed or how long it goes on, not what it computes up to where it stopped.
RESUMABLE_CHANGES: tuple[str, ...] = (
    "training.num_iterations",
    "training.device",
    "training.threads",
    "logging.progress",
    "logging.out_dir",
    "logging.tensorboard",
    "analysis",
)


class RunDirError(ValueError):
    """A run directory that is missing, incomplete, corrupt, or exists where a new run should go."""


# ----------------------------------------------------------------------------------------------
# Writing files


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------------------------
# The history


def append_history(run_dir: str | Path, record: Mapping[str, Any]) -> None:
    """Append one record (a line of JSON) to the run's history.

    A crash can leave at most a partial last line, which :func:`read_history` drops and a resume
    cuts away (:func:`truncate_history`).
    """
    line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
    with open(Path(run_dir) / HISTORY_FILE, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's history records, oldest first (``[]`` when none was written yet).

    Reads ``history.jsonl``, or ``history.yaml`` of runs written by older versions. A partial
    last line (a crash while appending) is dropped.

    Raises:
        RunDirError: a corrupt record other than the last, or a history that is not a list.
    """
    run_dir = Path(run_dir)
    path = run_dir / HISTORY_FILE
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                if number == len(lines):  # a crash while appending
                    break
                raise RunDirError(f"{path}: corrupt history at line {number}: {exc}") from None
            if not isinstance(record, dict):
                raise RunDirError(f"{path}: corrupt history at line {number}: not a record")
            records.append(record)
        return records
    legacy = run_dir / LEGACY_HISTORY_FILE
    if legacy.exists():
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            records = yaml.load(legacy.read_text(encoding="utf-8"), Loader=loader) or []
        except yaml.YAMLError as exc:
            raise RunDirError(f"{legacy}: corrupt history: {' '.join(str(exc).split())}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RunDirError(f"{legacy}: corrupt history: expected a list of records")
        return [_legacy_names(record) for record in records]
    return []


def _legacy_names(record: dict[str, Any]) -> dict[str, Any]:
    """Old histories called the rate ``activation`` and the held-out error ``heldout_error``."""
    renames = {"activation": "rate", "heldout_error": "val_error"}
    out = {renames.get(key, key): value for key, value in record.items()}
    if isinstance(out.get("per_set_size"), dict):
        out["per_set_size"] = {size: {renames.get(k, k): v for k, v in group.items()}
                               for size, group in out["per_set_size"].items()}
    return out


def truncate_history(run_dir: str | Path, iteration: int) -> None:
    """Keep only the records up to ``iteration`` (a resume from the checkpoint of that iteration:
    the records a killed run appended after its last checkpoint will be written again)."""
    run_dir = Path(run_dir)
    path, legacy = run_dir / HISTORY_FILE, run_dir / LEGACY_HISTORY_FILE
    if not path.exists() and not legacy.exists():
        return
    # A run from before history.jsonl continues in the new file (its records renamed).
    kept = [record for record in read_history(run_dir) if int(record["iteration"]) <= iteration]
    atomic_write_text(path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept))
    legacy.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# Names and policy


def run_name(config: Config, *, agent_class: type | None = None) -> str:
    """The run directory name, the reference's pattern where its fields apply.

    ``{run_name}_n{N}item{K}PI{0|1}{noise_type[:5]}{k}{error_def}``, e.g.
    ``EasyTask1_n256item10PI1gamma0.05rad``. Each piece appears only when it applies: ``n`` for
    agents with ``n_neurons``, ``n_hidden`` or ``hidden_size``, ``item`` for tasks with
    ``max_items``, ``PI`` for agents with ``positive_input``, the noise for agents with
    ``spike_noise_type``. VWM tasks (those with ``sample_batch``) end in the error definition,
    other tasks in ``xent`` (cross-entropy). Values not set in the config are the defaults of the
    agent's and the env's signatures: nothing is built. ``agent_class``: the class of
    ``agent.name`` when the caller resolved it already.
    """
    if agent_class is None:
        agent_class = config.agent_class()
    agent = _defaults(agent_class.__init__, config.agent.kwargs)
    env_class = config.task.env_class()
    task = _defaults(env_class.__init__, config.task.kwargs) if env_class is not None else {}
    parts = [config.logging.run_name, "_"]
    for key in ("n_neurons", "n_hidden", "hidden_size"):
        if key in agent:
            parts.append(f"n{agent[key]}")
            break
    if "max_items" in task:
        parts.append(f"item{task['max_items']}")
    if "positive_input" in agent:
        parts.append(f"PI{int(bool(agent['positive_input']))}")
    if "spike_noise_type" in agent:
        parts.append(f"{str(agent['spike_noise_type']).lower()[:5]}{agent.get('spike_noise_factor', '')}")
    is_vwm = env_class is not None and hasattr(env_class, "sample_batch")
    parts.append(config.training.error_def if is_vwm else "xent")
    return "".join(parts)


def _defaults(function: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """``function``'s keyword defaults, updated with ``given``."""
    settings = {name: p.default for name, p in inspect.signature(function).parameters.items()
                if p.default is not inspect.Parameter.empty}
    settings.update(given)
    return settings


def member_dir(run_dir: str | Path, seed: int) -> Path:
    """``runs/<name>/seed_<s>/``: the run directory of the ensemble member with seed ``s``."""
    return Path(run_dir) / f"seed_{seed}"


def check_new_run(run_dir: Path, members: Sequence[Path] = ()) -> None:
    """Refuse to start a run where one exists (its config or a checkpoint is there).

    Raises:
        RunDirError: the run (or one of its ensemble ``members``) exists.
    """
    for directory in (run_dir, *members):
        if (directory / CONFIG_FILE).exists() or (directory / LATEST_CHECKPOINT).exists():
            raise RunDirError(
                f"{run_dir}: a run of this name exists; continue it with --resume or choose "
                "another logging.run_name / --out"
            )


def check_resumable(run_dir: Path) -> Path | None:
    """The ``latest.pt`` a resume of ``run_dir`` starts from; None for a run killed before its
    first checkpoint (its ``config.yaml`` is there): it starts afresh, which is exact too.

    Raises:
        RunDirError: no such directory, or neither a checkpoint nor a config in it.
    """
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: nothing to resume (no such run directory)")
    latest = run_dir / LATEST_CHECKPOINT
    if latest.exists():
        return latest
    if (run_dir / CONFIG_FILE).exists():
        return None
    raise RunDirError(f"{run_dir}: nothing to resume (no {LATEST_CHECKPOINT})")


def saved_config(run_dir: Path) -> dict[str, Any]:
    """The plain data of ``run_dir/config.yaml``."""
    import yaml

    path = run_dir / CONFIG_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RunDirError(f"{path}: unreadable config: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: not a config (expected a mapping of sections)")
    return data


def check_same_config(run_dir: Path, saved: Mapping[str, Any], config: Config) -> None:
    """Refuse to resume ``run_dir`` (started with ``saved``) with a config that differs from it in
    anything but :data:`RESUMABLE_CHANGES`.

    Raises:
        RunDirError: naming the first key that differs.
    """
    from vwm_agents.config import Config, ConfigError

    try:
        saved_data = Config.from_dict(saved).to_dict()
    except ConfigError as exc:
        raise RunDirError(f"{run_dir}: the run's saved config is invalid: {exc}") from None
    difference = _first_difference(saved_data, config.to_dict())
    if difference is not None:
        raise RunDirError(
            f"{run_dir}: cannot resume with a different {difference} than the run was started "
            f"with (only {', '.join(RESUMABLE_CHANGES)} may change)"
        )


def _first_difference(saved: Mapping, current: Mapping, prefix: str = "") -> str | None:
    for key in sorted(set(saved) | set(current)):
        name = f"{prefix}{key}"
        if name in RESUMABLE_CHANGES:
            continue
        a, b = saved.get(key), current.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found = _first_difference(a, b, name + ".")
            if found is not None:
                return found
        elif a != b:
            return name
    return None

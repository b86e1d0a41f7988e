"""The run directory: its layout, its name, and every read and write of the files in it.

A run directory (written by :func:`vwm_agents.train`)::

    runs/<name>/
        config.yaml            the resolved config (our schema)
        history.jsonl          one JSON record per logging step, appended (never rewritten)
        metrics.json           final evaluation of best.pt on the fixed test batch
        training_history.png
        tensorboard/           with logging.tensorboard: true
        analysis/              what ``python -m analysis RUN_DIR`` writes
        checkpoints/latest.pt  everything needed to resume exactly
        checkpoints/best.pt    weights with the lowest validation error

Runs written before the history became JSON lines have ``history.yaml`` (a YAML list) instead;
:meth:`RunDir.read_history` reads both. An ensemble (``training.num_models: S``) writes
``config.yaml`` of the whole run and one such directory per member, ``seed_<s>/``.

:class:`RunDir` owns this layout: the trainers write, and :func:`vwm_agents.load_run`, the
analyses and the sweep results read, only through it. Importing this module builds nothing and
loads no torch (a sweep names and inspects its trials' run directories from their configs alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vwm_agents.training.files import atomic_write_bytes, atomic_write_text
from vwm_agents.training.run_name import run_name

if TYPE_CHECKING:
    from vwm_agents.config import Config
    from vwm_agents.training.tensorboard_log import TensorBoardLog

__all__ = [
    "CONFIG_FILE",
    "HISTORY_FILE",
    "LEGACY_HISTORY_FILE",
    "METRICS_FILE",
    "PLOT_FILE",
    "CHECKPOINT_DIR",
    "TENSORBOARD_DIR",
    "ANALYSIS_DIR",
    "LATEST_CHECKPOINT",
    "BEST_CHECKPOINT",
    "RESUMABLE_CHANGES",
    "RunDir",
    "RunDirError",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_history",
    "run_name",
]

CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.jsonl"
LEGACY_HISTORY_FILE = "history.yaml"
METRICS_FILE = "metrics.json"
PLOT_FILE = "training_history.png"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
ANALYSIS_DIR = "analysis"  # where ``python -m analysis RUN_DIR`` writes
LATEST_CHECKPOINT = f"{CHECKPOINT_DIR}/latest.pt"
BEST_CHECKPOINT = f"{CHECKPOINT_DIR}/best.pt"
CHECKPOINT_KINDS = ("best", "latest")

# Keys that may differ between the saved config and the one given to --resume: they change how
# the run is executed or how long it goes on, not what it computes up to where it stopped.
RESUMABLE_CHANGES: tuple[str, ...] = (
    "training.num_iterations",
    "training.device",
    "training.threads",
    "training.distributed_backend",
    "training.distributed_timeout_s",
    "logging.progress",
    "logging.out_dir",
    "logging.tensorboard",
    "analysis",
)


class RunDirError(ValueError):
    """A run directory that is missing, incomplete, corrupt, or exists where a new run should go."""


@dataclass(frozen=True)
class RunDir:
    """One run directory (or an ensemble member's): where each file of a run lives, and how
    it is read and written.

    >>> from vwm_agents import RunDir
    >>> run = RunDir("runs/demo")
    >>> run.member(3).checkpoint("best").as_posix()
    'runs/demo/seed_3/checkpoints/best.pt'
    >>> run.read_history()  # nothing written yet
    []
    """

    path: Path

    def __init__(self, path: str | Path):
        object.__setattr__(self, "path", Path(path))

    @classmethod
    def for_config(cls, config: Config, *, agent_class: type | None = None) -> RunDir:
        """``logging.out_dir/<run_name(config)>``."""
        return cls(Path(config.logging.out_dir) / run_name(config, agent_class=agent_class))

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # -- the layout -------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def history_file(self) -> Path:
        return self.path / HISTORY_FILE

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def plot_file(self) -> Path:
        return self.path / PLOT_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def analysis_dir(self) -> Path:
        return self.path / ANALYSIS_DIR

    def checkpoint(self, kind: str) -> Path:
        """``checkpoints/<kind>.pt`` for ``kind`` ``"best"`` or ``"latest"``."""
        if kind not in CHECKPOINT_KINDS:
            raise ValueError(f"checkpoint must be 'best' or 'latest', got {kind!r}")
        return self.checkpoint_dir / f"{kind}.pt"

    def member(self, seed: int) -> RunDir:
        """``<run>/seed_<s>/``: the run directory of the ensemble member with seed ``s``."""
        return RunDir(self.path / f"seed_{seed}")

    def members(self) -> list[RunDir]:
        """The ensemble members written so far (those with a config), by name."""
        return [RunDir(p) for p in sorted(self.path.glob("seed_*")) if (p / CONFIG_FILE).is_file()]

    # -- reading ----------------------------------------------------------------------------
    def read_history(self) -> list[dict[str, Any]]:
        """The run's history records, oldest first (``[]`` when none was written yet).

        Reads ``history.jsonl``, or ``history.yaml`` of runs written by older versions. A partial
        last line (a crash while appending) is dropped.

        Raises:
            RunDirError: a corrupt record other than the last, or a history that is not a list.
        """
        path = self.history_file
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
        legacy = self.path / LEGACY_HISTORY_FILE
        if legacy.exists():
            import yaml

            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            try:
                records = yaml.load(legacy.read_text(encoding="utf-8"), Loader=loader) or []
            except yaml.YAMLError as exc:
                raise RunDirError(
                    f"{legacy}: corrupt history: {' '.join(str(exc).split())}"
                ) from None
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise RunDirError(f"{legacy}: corrupt history: expected a list of records")
            return [_legacy_names(record) for record in records]
        return []

    def saved_config(self) -> dict[str, Any]:
        """The plain data of ``config.yaml``.

        Raises:
            RunDirError: unreadable, or not a mapping of sections.
        """
        import yaml

        path = self.config_file
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise RunDirError(f"{path}: unreadable config: {' '.join(str(exc).split())}") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{path}: not a config (expected a mapping of sections)")
        return data

    def check_trusted(self, *, trust_code: bool = False) -> None:
        """Refuse a ``config.yaml`` that would import code from outside the toolkit, unless
        ``trust_code``: an ``agent.name`` or ``task.id`` of the form ``package.module:Name``
        (see :func:`foreign_code`). Read as plain data; nothing is imported.

        Raises:
            RunDirError: the config names such code (one line naming it and ``trust_code``).
        """
        found = foreign_code(self.saved_config())
        if found and not trust_code:
            raise RunDirError(
                f"{self.config_file}: {found[0]} would import code from outside vwm-rnn; if you "
                "trust whoever wrote this run, pass trust_code=True (--trust-code)"
            )

    def read_metrics(self) -> Any:
        """The parsed ``metrics.json`` (ValueError/OSError as ``json`` and ``open`` raise them)."""
        return json.loads(self.metrics_file.read_text(encoding="utf-8"))

    def load_checkpoint(self, kind: str, *, map_location: Any = "cpu") -> dict[str, Any]:
        """The payload of ``checkpoints/<kind>.pt`` (see :mod:`vwm_agents.training.checkpoint`).

        Raises:
            CheckpointError: missing, truncated, foreign, or of another kind.
        """
        from vwm_agents.training.checkpoint import load_checkpoint

        return load_checkpoint(self.checkpoint(kind), kind=kind, map_location=map_location)

    # -- writing ----------------------------------------------------------------------------
    def prepare(self, config: Config, iteration: int) -> None:
        """Make the directory, write ``config.yaml`` and cut the history back to ``iteration``
        (the records a killed run appended after its last checkpoint will be written again)."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.truncate_history(iteration)  # first: a corrupt history fails before any write
        self.write_config(config)

    def write_config(self, config: Config) -> None:
        """``config.yaml`` of ``config`` (the directory is made if needed)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_file, config.to_yaml())

    def append_history(self, record: Mapping[str, Any]) -> None:
        """Append one record (a line of JSON) to the run's history.

        A crash can leave at most a partial last line, which :meth:`read_history` drops and a
        resume cuts away (:meth:`truncate_history`).
        """
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        with open(self.history_file, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()

    def truncate_history(self, iteration: int) -> None:
        """Keep only the records up to ``iteration``."""
        path, legacy = self.history_file, self.path / LEGACY_HISTORY_FILE
        if not path.exists() and not legacy.exists():
            return
        # A run from before history.jsonl continues in the new file (its records renamed).
        kept = [record for record in self.read_history() if int(record["iteration"]) <= iteration]
        atomic_write_text(path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept))
        legacy.unlink(missing_ok=True)

    def save_checkpoint(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Atomically write ``checkpoints/<kind>.pt``."""
        from vwm_agents.training.checkpoint import save_checkpoint

        save_checkpoint(self.checkpoint(kind), payload)

    def write_metrics(self, metrics: Mapping[str, Any]) -> None:
        """``metrics.json``: indented JSON, one trailing newline."""
        atomic_write_text(self.metrics_file, json.dumps(metrics, indent=2) + "\n")

    def write_history_plot(self) -> None:
        """``training_history.png`` of the history (nothing when there is none yet)."""
        history = self.read_history()
        if history:
            from vwm_agents.training.plotting import plot_training_history

            plot_training_history(history, self.plot_file)

    def tensorboard_log(self, iteration: int) -> TensorBoardLog:
        """A TensorBoard writer into ``tensorboard/``, continuing at ``iteration``."""
        from vwm_agents.training.tensorboard_log import TensorBoardLog

        return TensorBoardLog(self.tensorboard_dir, iteration)

    # -- one training at a time -------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, *, fresh: bool, keep: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """Hold the run directory for one training: a lock, and no half-made directory.

        The directory is made (for a ``fresh`` start) and locked (``flock`` on the directory
        itself, where the OS has it): a second training into the same directory fails at once
        with one line. If the body fails on a fresh start before the first checkpoint, with an
        exception not in ``keep``, what the start created is removed (the directory, and the
        output folders above it that it made); a checkpoint, once there, is kept.

        Raises:
            RunDirError: another training holds the directory.
        """
        created = _first_missing(self.path) if fresh else None
        if fresh:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError:  # e.g. a name too long: the folders above it were made
                if created is not None:
                    shutil.rmtree(created, ignore_errors=True)
                raise
        handle = _lock(self.path) if self.path.is_dir() else None
        try:
            yield
        except BaseException as exc:
            if (
                created is not None
                and not isinstance(exc, keep)
                and not any(self.path.glob(f"**/{LATEST_CHECKPOINT}"))
            ):
                shutil.rmtree(created, ignore_errors=True)
            raise
        finally:
            if handle is not None:
                os.close(handle)  # closing the descriptor releases the lock

    # -- fresh or resume --------------------------------------------------------------------
    def start(
        self, config: Config, members: Sequence[tuple[RunDir, Config]] = (), *, resume: bool
    ) -> list[dict[str, Any] | None]:
        """Decide fresh or resume, once for a single run and an ensemble alike.

        A single run passes no ``members`` and gets ``[payload]``; an ensemble passes its
        members' directories and configs and gets one payload per member. A payload is the
        ``latest.pt`` a resume continues from, or None: start afresh (a new run, or a run killed
        before its first checkpoint, which is exact too). Nothing is written.

        Raises:
            RunDirError: a new run where one exists (its config or a checkpoint is there), or a
                resume with nothing to resume or with a config that differs from the saved one
                in anything but :data:`RESUMABLE_CHANGES`.
            CheckpointError: a ``latest.pt`` that cannot be used.
        """
        if not resume:
            self._check_new([directory for directory, _ in members])
            return [None] * max(len(members), 1)
        if not members:
            return [self._latest_state(config)]
        if not self.config_file.is_file():
            raise RunDirError(f"{self.path}: nothing to resume (no {CONFIG_FILE})")
        self._check_same_config(self.saved_config(), config)
        # a member killed before its first checkpoint starts afresh
        return [
            directory._latest_state(member) if directory.config_file.exists() else None
            for directory, member in members
        ]

    def _check_new(self, members: Sequence[RunDir]) -> None:
        for directory in (self, *members):
            if directory.config_file.exists() or directory.checkpoint("latest").exists():
                raise RunDirError(
                    f"{self.path}: a run of this name exists; continue it with --resume or "
                    "choose another logging.run_name / --out"
                )

    def _latest_state(self, config: Config) -> dict[str, Any] | None:
        """The ``latest.pt`` payload a resume continues from (None: killed before the first
        checkpoint, its ``config.yaml`` is there), checked against ``config``."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: nothing to resume (no such run directory)")
        if not self.checkpoint("latest").exists():
            if not self.config_file.exists():
                raise RunDirError(f"{self.path}: nothing to resume (no {LATEST_CHECKPOINT})")
            self._check_same_config(self.saved_config(), config)
            return None
        payload = self.load_checkpoint("latest")
        self._check_same_config(payload["config"], config)
        return payload

    def _check_same_config(self, saved: Mapping[str, Any], config: Config) -> None:
        from vwm_agents.config import Config, ConfigError

        # Code the saved config would import is compared as text first: a resume imports only
        # what the user's own config names.
        for key in foreign_code(saved):
            name = key.split(":", 1)[0]
            if key not in foreign_code(config.to_dict()):
                raise RunDirError(
                    f"{self.path}: cannot resume with a different {name} than the run was "
                    f"started with (its config names {key.split(': ', 1)[1]}; not imported)"
                )
        try:
            saved_data = Config.from_dict(saved).to_dict()
        except ConfigError as exc:
            raise RunDirError(f"{self.path}: the run's saved config is invalid: {exc}") from None
        difference = _first_difference(saved_data, config.to_dict())
        if difference is not None:
            raise RunDirError(
                f"{self.path}: cannot resume with a different {difference} than the run was "
                f"started with (only {', '.join(RESUMABLE_CHANGES)} may change)"
            )


def foreign_code(config: Mapping[str, Any]) -> list[str]:
    """``"key: value"`` for each entry of a config's plain data that names code to import from
    outside the toolkit: ``agent.name`` or ``task.id`` of the form ``package.module:Name``
    (the registered agents and gymnasium ids need no import of foreign code)."""
    found = []
    for section, key in (("agent", "name"), ("task", "id")):
        data = config.get(section) if isinstance(config, Mapping) else None
        value = data.get(key) if isinstance(data, Mapping) else data
        if isinstance(value, str) and ":" in value:
            found.append(f"{section}.{key}: {value!r}")
    return found


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` (or itself) that does not exist yet, or None."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _lock(path: Path) -> int | None:
    """An exclusive ``flock`` on the directory ``path`` (its descriptor), or None where the OS
    has no ``flock``. Raises RunDirError if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        return None
    handle = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        raise RunDirError(
            f"{path}: another training is writing to this run directory; wait for "
            "it to end, or choose another logging.run_name / --out"
        ) from None
    return handle


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """:meth:`RunDir.read_history` of the directory ``run_dir``."""
    return RunDir(run_dir).read_history()


def _legacy_names(record: dict[str, Any]) -> dict[str, Any]:
    """Old histories called the rate ``activation`` and the held-out error ``heldout_error``."""
    renames = {"activation": "rate", "heldout_error": "val_error"}
    out = {renames.get(key, key): value for key, value in record.items()}
    if isinstance(out.get("per_set_size"), dict):
        out["per_set_size"] = {
            size: {renames.get(k, k): v for k, v in group.items()}
            for size, group in out["per_set_size"].items()
        }
    return out


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

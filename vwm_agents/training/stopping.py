"""How a training stops other than by finishing: the errors it raises and Ctrl-C / SIGTERM.

Every error names the run directory and the iteration; each keeps the last good checkpoint, and
``--resume`` continues from it (:class:`TrainingDiverged` after fixing what diverged).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

__all__ = [
    "Diverged",
    "TrainingDiverged",
    "TrainingFailed",
    "TrainingInterrupted",
    "TrainingOutOfMemory",
    "TrainingRanksLost",
    "deferred_sigint",
]


class TrainingFailed(RuntimeError):
    """A training that stopped in ``iteration`` of the run in ``run_dir``; the last good
    checkpoint is kept."""

    def __init__(self, message: str, run_dir: Path, iteration: int):
        super().__init__(message)
        self.run_dir = run_dir
        self.iteration = iteration


class TrainingDiverged(TrainingFailed):
    """The loss or the rates became non-finite; the last good checkpoint is kept."""


class TrainingOutOfMemory(TrainingFailed):
    """An allocation failed during training; the last good checkpoint is kept."""


class TrainingRanksLost(TrainingFailed):
    """Under torchrun: another rank failed, was killed or hangs; the last good checkpoint is
    kept and the same command with ``--resume`` continues."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: a checkpoint of the last finished iteration was saved; ``--resume`` continues."""

    def __init__(self, message: str, run_dir: Path, iteration: int):
        super().__init__(message)
        self.run_dir = run_dir
        self.iteration = iteration


class Diverged(Exception):
    """Raised by :meth:`Trainer.update` for a non-finite loss or rates (nothing was updated)."""


class deferred_sigint:  # noqa: N801 (a context manager used like a function)
    """Turn Ctrl-C into a flag checked between iterations, so the saved state is consistent.

    Only in the main thread (signal handlers cannot be installed elsewhere); a second Ctrl-C
    interrupts at once. ``also_sigterm``: SIGTERM too (``torchrun`` stops its workers with it
    when it is interrupted itself, and waits before it kills them).
    """

    def __init__(self, flag: threading.Event, *, also_sigterm: bool = False):
        self.flag = flag
        self.signals = (signal.SIGINT, signal.SIGTERM) if also_sigterm else (signal.SIGINT,)
        self.previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.flag.is_set():
            raise KeyboardInterrupt
        self.flag.set()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        self.previous = {}
        return False

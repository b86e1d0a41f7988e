"""The epochs of a recall trial and their timing: specs checked, durations drawn and forced.

:class:`EpochTiming` is the timing half of :class:`vwm_tasks.recall.VWMRecall` (a mixin of the
env, which owns ``dt``, ``timing`` and neurogym's ``sample_time``); the module functions draw the
durations of a whole batch at once for the vectorised twin (:mod:`vwm_tasks.recall_batch`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from neurogym.utils.ngym_random import TruncExp

__all__ = ["EPOCHS", "DEFAULT_TIMING", "NONEMPTY_EPOCHS", "TIMING_DISTRIBUTIONS", "EpochTiming"]

EPOCHS: tuple[str, ...] = ("init", "stimulus", "delay", "decode")
DEFAULT_TIMING: dict[str, float] = {"init": 20, "stimulus": 500, "delay": 1000, "decode": 500}
# Epochs that would make the trial meaningless if empty: no item shown, or nothing to report.
NONEMPTY_EPOCHS: tuple[str, ...] = ("stimulus", "decode")
TIMING_DISTRIBUTIONS: tuple[str, ...] = (
    "uniform",
    "choice",
    "truncated_exponential",
    "constant",
    "until",
)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _timing_minimum(name: str, spec: Any) -> float | None:
    """The smallest duration (ms) ``spec`` can produce, or None when it cannot be known."""
    if _is_number(spec):
        return float(spec)
    if isinstance(spec, TruncExp):
        return float(min(spec.vmin, spec.vmax))
    if callable(spec):
        return None
    if isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) > 0:
        if all(_is_number(v) for v in spec):
            return float(min(spec))
        if len(spec) == 2 and isinstance(spec[0], str):
            dist, args = spec
            if dist not in TIMING_DISTRIBUTIONS:
                raise ValueError(
                    f"timing[{name!r}] distribution must be one of {TIMING_DISTRIBUTIONS}, "
                    f"got {dist!r}"
                )
            if dist == "constant":
                if not _is_number(args):
                    raise ValueError(f"timing[{name!r}] ('constant', x) needs a number x")
                return float(args)
            if dist == "until":
                if name == EPOCHS[0] or not _is_number(args):
                    raise ValueError(
                        f"timing[{name!r}] ('until', t) needs a number t and a preceding epoch"
                    )
                return None
            vals = list(args) if isinstance(args, Sequence) else []
            if not vals or not all(_is_number(v) for v in vals):
                raise ValueError(f"timing[{name!r}] ({dist!r}, args) needs a list of numbers")
            if dist == "uniform":
                if len(vals) != 2 or vals[1] < vals[0]:
                    raise ValueError(f"timing[{name!r}] ('uniform', (lo, hi)) needs lo <= hi")
                return float(vals[0])
            if dist == "choice":
                return float(min(vals))
            # truncated_exponential: (mean, [min, [max]])
            if vals[0] <= 0:
                raise ValueError(f"timing[{name!r}] truncated_exponential mean must be > 0")
            vmin = vals[1] if len(vals) > 1 else 0.0
            vmax = vals[2] if len(vals) > 2 else math.inf
            return float(min(vmin, vmax))
    raise ValueError(
        f"timing[{name!r}] must be a number, a list of numbers, a callable or (dist, args) with "
        f"dist in {TIMING_DISTRIBUTIONS}; got {spec!r}"
    )


def _truncated_exponential(
    rng: np.random.Generator, n: int, vmean: float, vmin: float = 0.0, vmax: float = math.inf
) -> np.ndarray:
    """``n`` draws of neurogym's truncated exponential, vectorised by rejection rounds."""
    if vmin >= vmax:
        return np.full(n, float(vmax))
    out = rng.exponential(vmean, n)
    bad = (out < vmin) | (out >= vmax)
    while bad.any():
        out[bad] = rng.exponential(vmean, int(bad.sum()))
        bad = (out < vmin) | (out >= vmax)
    return out


def _is_until(spec: Any) -> bool:
    return isinstance(spec, Sequence) and len(spec) == 2 and spec[0] == "until"


def _sample_timing(spec: Any, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` raw durations (ms) from a neurogym timing spec (before quantisation to dt).

    ``("until", t)`` depends on the preceding epochs and is resolved by the caller.
    """
    if _is_number(spec):
        return np.full(n, float(spec))
    if isinstance(spec, TruncExp):
        return _truncated_exponential(rng, n, spec.vmean, spec.vmin, spec.vmax)
    if callable(spec):
        # An arbitrary callable carries its own generator; it can only be asked one value at a time.
        return np.array([float(spec()) for _ in range(n)])
    if all(_is_number(v) for v in spec):
        return rng.choice(np.asarray(spec, dtype=float), n)
    dist, args = spec
    if dist == "uniform":
        return rng.uniform(args[0], args[1], n)
    if dist == "choice":
        return rng.choice(np.asarray(args, dtype=float), n)
    if dist == "truncated_exponential":
        return _truncated_exponential(rng, n, *args)
    return np.full(n, float(args))  # "constant"


def _epoch_bounds(durations: Mapping[str, np.ndarray], dt: float) -> tuple[dict, np.ndarray]:
    """Step indices ``[start, end)`` per epoch and trial lengths, with neurogym's float arithmetic.

    ``add_period`` chains epochs as ``start = end_t[previous]``, ``end = start + duration`` and
    converts with ``int(t / dt)``; repeating exactly those operations keeps the batch bit-identical
    to ``new_trial`` even for durations that are not whole numbers of ms.
    """
    start = np.zeros_like(np.asarray(durations[EPOCHS[0]], dtype=float))
    bounds = {}
    for epoch in EPOCHS:
        end = start + durations[epoch]
        bounds[epoch] = np.stack([(start / dt).astype(np.int64), (end / dt).astype(np.int64)], -1)
        start = end
    return bounds, (start / dt).astype(np.int64)


class EpochTiming:
    """Timing of the env's epochs (a mixin of the env: ``self.dt``, ``self.timing``,
    ``self.sample_time``)."""

    dt: float
    timing: dict[str, Any]

    def _set_timing(self, timing: Mapping[str, Any] | None) -> None:
        """``self.timing``: the defaults updated with ``timing``, every epoch's spec checked."""
        self.timing = dict(DEFAULT_TIMING)
        if timing is not None:
            unknown = set(timing) - set(EPOCHS)
            if unknown:
                raise ValueError(f"timing keys must be in {EPOCHS}, got {sorted(unknown)}")
            self.timing.update(timing)
        for epoch in EPOCHS:
            self._check_timing(epoch, self.timing[epoch])

    def _check_timing(self, epoch: str, spec: Any) -> None:
        minimum = _timing_minimum(epoch, spec)
        if minimum is None:
            return
        if minimum < 0:
            raise ValueError(f"timing[{epoch!r}] must be >= 0 ms, got {spec!r}")
        if epoch in NONEMPTY_EPOCHS and minimum < self.dt:
            raise ValueError(
                f"timing[{epoch!r}] must be at least one step (dt={self.dt} ms), got {spec!r}"
            )

    def _quantise(self, duration: float) -> float:
        return (duration // self.dt) * self.dt

    def _check_durations(self, durations: Mapping[str, float]) -> dict[str, float]:
        unknown = set(durations) - set(EPOCHS)
        if unknown:
            raise ValueError(f"durations keys must be in {EPOCHS}, got {sorted(unknown)}")
        for epoch, value in durations.items():
            if not _is_number(value) or value < 0:
                raise ValueError(f"durations[{epoch!r}] must be a number >= 0 ms, got {value!r}")
            if epoch in NONEMPTY_EPOCHS and self._quantise(value) <= 0:
                raise ValueError(f"durations[{epoch!r}] must last at least one step, got {value!r}")
        return {e: self._quantise(v) for e, v in durations.items()}

    def _sample_durations(self) -> dict[str, float]:
        """One trial's epoch durations (ms) from ``self.timing``, in epoch order.

        neurogym's ``sample_time`` resolves ``("until", t)`` against ``self.tmax``, which is only
        current inside ``add_period``; drawing all durations before building the trial (so they
        can be forced) needs the elapsed time tracked here instead.
        """
        durations, elapsed = {}, 0.0
        for epoch in EPOCHS:
            spec = self.timing[epoch]
            if _is_until(spec):
                durations[epoch] = self._until_duration(epoch, spec[1], np.float64(elapsed))
            else:
                durations[epoch] = self.sample_time(epoch)
            elapsed = elapsed + durations[epoch]
        return durations

    def _until_duration(self, epoch: str, end: float, elapsed: np.ndarray) -> np.ndarray:
        duration = ((end - elapsed) // self.dt) * self.dt
        if np.any(duration < 0):
            raise ValueError(
                f"timing[{epoch!r}] ('until', {end}) ends before the preceding epochs do "
                f"({np.max(elapsed)} ms)"
            )
        return duration

    def _resolve_durations(
        self, sampled: Mapping[str, float], forced: Mapping[str, float] | None
    ) -> dict[str, float]:
        if forced is None:
            return dict(sampled)
        if not isinstance(forced, Mapping):
            raise ValueError(f"durations must be a dict epoch -> ms, got {forced!r}")
        return {**sampled, **self._check_durations(forced)}

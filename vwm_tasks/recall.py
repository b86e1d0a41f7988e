"""The delayed multi-item orientation recall task (``VWMRecall-v0``) and its vectorised twin.

One trial is built two ways that must agree exactly:

* :meth:`VWMRecall._new_trial`, the neurogym way (``add_period``, ``add_ob``,
  ``set_groundtruth``), one trial at a time from the env's own ``self.rng``;
* :meth:`VWMRecall.sample_batch`, numpy over a whole batch with no per-trial Python loop, and
  :meth:`VWMRecall.batch_tensors`, which expands a compact batch into torch tensors directly on a
  device.

Both routes share the per-trial vectors (:meth:`VWMRecall.trial_vectors`: the input shown during
the stimulus, the cue shown during decode, the target and its mask) and differ only in how those
vectors are laid out over time.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from neurogym import spaces
from neurogym.core import TrialEnv
from neurogym.utils.ngym_random import TruncExp

from vwm_tasks.batch import TrialBatch
from vwm_tasks.encoding import (
    angles_to_targets,
    channels_per_item,
    check_encoding,
    encode_angles,
    targets_to_angles,
    wrap_angle,
)
from vwm_tasks.item_gain import ItemGain

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
TRIAL_KEYS: tuple[str, ...] = (
    "theta",
    "theta_input",
    "presence",
    "set_size",
    "probe",
    "durations",
    "item_gain",
)


@dataclass(frozen=True)
class TrialVectors:
    """What one trial (or a batch of them, leading axes ``...``) shows and asks for.

    Attributes:
        stimulus: ``(..., n_in)`` input held constant over the stimulus epoch.
        cue: ``(..., n_in)`` input held constant over the decode epoch, or ``None``.
        target: ``(..., n_out)`` ground truth held constant over the decode epoch.
        target_mask: ``(..., n_out)`` 1 where the target is scored.
    """

    stimulus: np.ndarray
    cue: np.ndarray | None
    target: np.ndarray
    target_mask: np.ndarray


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


def _epoch_array(out: np.ndarray, segments: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Fill ``out (B, T, n)`` with ``values (B, n)`` on each trial's ``[start, end)`` steps.

    ``segments`` are ``(values, bounds (B, 2))`` pairs on disjoint epochs; every other step is 0.
    When all trials share their boundaries (fixed timing), the array is written slice by slice,
    every byte once (faster than zero-filling first).
    """
    shared = all((bounds == bounds[0]).all() for _, bounds in segments)
    if not shared:
        out[:] = 0.0
        steps = np.arange(out.shape[1])[None, :]
        for values, bounds in segments:
            inside = (steps >= bounds[:, :1]) & (steps < bounds[:, 1:])
            np.copyto(out, values[:, None, :], where=inside[..., None])
        return out
    written = 0
    for values, bounds in sorted(segments, key=lambda segment: segment[1][0, 0]):
        start, end = bounds[0]
        out[:, written:start] = 0.0
        out[:, start:end] = values[:, None, :]
        written = max(written, end)
    out[:, written:] = 0.0
    return out


def _as_generator(rng: np.random.Generator | int | None, fallback: np.random.RandomState):
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(fallback.randint(0, 2**32, size=4, dtype=np.uint64))
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


class VWMRecall(TrialEnv):
    """Delayed recall of the orientations of several items, each bound to a slot (location).

    ## Description
    Up to ``max_items`` (K) slots can each hold an item with an orientation ``theta`` on the full
    circle. A trial runs through four epochs: ``init`` (blank), ``stimulus`` (every present item is
    shown in its slot's input channels), ``delay`` (blank) and ``decode`` (blank; the agent reports
    ``(cos theta, sin theta)`` of every present item on the output pair of its slot). Each trial
    draws a set size from ``set_sizes``, that many distinct slots, and an angle uniformly on
    ``[-pi, pi)`` for every slot. The angle shown is corrupted by item-location (ILC) noise: one
    Gaussian draw per trial and slot, constant over the stimulus epoch; the target uses the clean
    angle. There is no go cue and no fixation input. After ``new_trial()`` the env holds
    ``ob (T, n_in)``, ``gt (T, 2K)`` and ``mask (T, 2K)`` (1 on decode steps x present slots).

    ## Observation Space
    ``Box(n_in,)`` float32, ``n_in = 3K`` for ``input_encoding="positive"`` (slot k on channels
    ``3k..3k+2``: projections of (cos, sin) on three directions 120 degrees apart plus 1, in
    [0.184, 1.816], summing to 3) or ``2K`` for ``"cossin"`` (``[cos, sin]``). Channels are scaled
    by ``input_strength / K`` and are exactly 0 for absent slots and outside the stimulus epoch.

    ## Action Space
    ``Box(-1, 1, (2K,))`` float32, ``[cos0, sin0, cos1, sin1, ...]``: the reported orientation
    of each slot. Only the decode epoch and present slots are scored.

    ## Rewards
    On each decode step, ``rewards["error"]`` (default -1) times the mean squared error over the
    scored outputs; 0 elsewhere. At the end of a trial ``info["performance"]`` is
    ``1 - mean|angular error| / pi`` over the scored items, the angle decoded from the mean action
    over the decode epoch (1: perfect, 0.5: chance).

    ## Arguments
    - ``dt`` (ms, default 10): time step.
    - ``timing``: per-epoch neurogym timing spec (number, list = choice, ``("uniform", (lo, hi))``,
      ``("choice", [...])``, ``("truncated_exponential", (mean, min, max))``, ``("constant", x)``,
      ``("until", t)``, or a callable such as ``neurogym.utils.TruncExp``); defaults
      ``{"init": 20, "stimulus": 500, "delay": 1000, "decode": 500}``. Durations are floored to
      multiples of dt; ``stimulus`` and ``decode`` must last at least one step.
    - ``max_items`` (K, default 10), ``set_sizes`` (default ``1..K``).
    - ``ilc_noise`` (rad, default 0.01): SD of the ILC noise.
    - ``input_encoding`` (``"positive"`` or ``"cossin"``), ``input_strength`` (default 120).
    - ``rewards``: ``{"error": -1.0}``.
    - ``item_gain`` (default None: off): variable precision, a gamma gain per item and trial on
      its stimulus channels, ``{"scale": s, "total": 1.0, "normalise": true}``
      (:mod:`vwm_tasks.item_gain`); drawn from the env's generator after the other draws.

    ``new_trial(**kwargs)`` forces any of ``theta``, ``theta_input``, ``presence``,
    ``set_size``, ``probe`` and ``durations`` (ms per epoch).

    ## Version History
    - v0: initial version (re-creation of the vwm_rnn task: Dong et al.).
    """

    metadata = {
        "paper_link": "https://github.com/derek1909/vwm_rnn",
        "paper_name": "Biologically plausible recurrent networks for visual working memory "
        "(vwm_rnn, D. J. Dong)",
        "tags": [
            "working memory",
            "delayed response",
            "perceptual",
            "continuous action space",
            "multidimensional action space",
            "supervised",
        ],
        "render_modes": [],
    }

    def __init__(
        self,
        dt: float = 10,
        rewards: Mapping[str, float] | None = None,
        timing: Mapping[str, Any] | None = None,
        max_items: int = 10,
        set_sizes: Sequence[int] | None = None,
        ilc_noise: float = 0.01,
        input_encoding: str = "positive",
        input_strength: float = 120.0,
        item_gain: Mapping[str, Any] | None = None,
    ) -> None:
        if not _is_number(dt) or not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be a positive number of ms, got {dt!r}")
        if not isinstance(max_items, numbers.Integral) or isinstance(max_items, bool) or max_items < 1:
            raise ValueError(f"max_items must be an integer >= 1, got {max_items!r}")
        max_items = int(max_items)
        sizes = list(range(1, max_items + 1)) if set_sizes is None else list(set_sizes)
        if not sizes or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and 1 <= n <= max_items
            for n in sizes
        ):
            raise ValueError(
                f"set_sizes must be a non-empty list of integers in [1, max_items={max_items}], "
                f"got {set_sizes!r}"
            )
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"set_sizes must not repeat a value, got {set_sizes!r}")
        if not _is_number(ilc_noise) or not math.isfinite(ilc_noise) or ilc_noise < 0:
            raise ValueError(f"ilc_noise must be a finite number >= 0 (rad), got {ilc_noise!r}")
        check_encoding(input_encoding)
        if not _is_number(input_strength) or not math.isfinite(input_strength) or input_strength <= 0:
            raise ValueError(f"input_strength must be a finite number > 0, got {input_strength!r}")

        super().__init__(dt=dt)
        self.max_items = max_items
        self.set_sizes = np.asarray(sizes, dtype=np.int64)
        self.ilc_noise = float(ilc_noise)
        self.input_encoding = input_encoding
        self.input_strength = float(input_strength)
        self.item_gain = ItemGain.from_spec(item_gain)

        self.rewards = {"error": -1.0}
        if rewards is not None:
            unknown = set(rewards) - set(self.rewards)
            if unknown:
                raise ValueError(f"rewards keys must be in {sorted(self.rewards)}, got {sorted(unknown)}")
            self.rewards.update(rewards)

        self.timing = dict(DEFAULT_TIMING)
        if timing is not None:
            unknown = set(timing) - set(EPOCHS)
            if unknown:
                raise ValueError(f"timing keys must be in {EPOCHS}, got {sorted(unknown)}")
            self.timing.update(timing)
        for epoch in EPOCHS:
            self._check_timing(epoch, self.timing[epoch])

        n_stim = max_items * channels_per_item(input_encoding)
        n_in = n_stim + self.n_cue_channels
        scale = self.input_strength / max_items
        # Positive channels lie in [0.184, 1.816] * scale; 2 * scale bounds them with float slack.
        low = 0.0 if input_encoding == "positive" else -scale
        obs_low = np.full(n_in, low, dtype=np.float32)
        obs_high = np.full(n_in, 2.0 * scale, dtype=np.float32)
        obs_low[n_stim:], obs_high[n_stim:] = 0.0, 1.0
        names = {"stimulus": range(n_stim)}
        if self.n_cue_channels:
            names["cue"] = range(n_stim, n_in)
        self.observation_space = spaces.Box(obs_low, obs_high, dtype=np.float32, name=names)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.n_outputs,), dtype=np.float32)
        self.mask: np.ndarray | None = None
        self._decode_action_sum: np.ndarray | None = None

    # ------------------------------------------------------------------ variant hooks
    n_cue_channels: int = 0

    @property
    def n_outputs(self) -> int:
        return 2 * self.max_items

    def _choose_probe(self, pick: np.ndarray, order: np.ndarray, set_size: np.ndarray) -> np.ndarray:
        """Probed slot per trial from a uniform ``pick`` and slots ``order`` (present ones first)."""
        return np.full(np.shape(pick), -1, dtype=np.int64)

    def _check_probe(self, probe: Any, presence: np.ndarray) -> int:
        if probe != -1:
            raise ValueError(f"probe must be -1 in {type(self).__name__} (every slot is reported)")
        return -1

    def trial_vectors(
        self, theta: np.ndarray, theta_input: np.ndarray, presence: np.ndarray, probe: np.ndarray
    ) -> TrialVectors:
        """Inputs and targets of trials (leading axes ``...``, K slots last), float32."""
        stimulus = encode_angles(
            theta_input,
            presence,
            encoding=self.input_encoding,
            strength=self.input_strength,
            max_items=self.max_items,
        )
        target = angles_to_targets(theta, presence)
        target_mask = np.repeat(presence, 2, axis=-1)
        return TrialVectors(
            stimulus.astype(np.float32), None, target.astype(np.float32), target_mask.astype(np.float32)
        )

    def _with_gain(self, vectors: TrialVectors, gain: np.ndarray | None) -> TrialVectors:
        """``vectors`` with each slot's stimulus channels times its ``item_gain`` (None: as is)."""
        if gain is None:
            return vectors
        per_channel = np.repeat(gain, channels_per_item(self.input_encoding), axis=-1)
        n_stim = per_channel.shape[-1]
        stimulus = vectors.stimulus.copy()
        stimulus[..., :n_stim] *= per_channel.astype(np.float32)
        return TrialVectors(stimulus, vectors.cue, vectors.target, vectors.target_mask)

    def _check_gain(self, value: Any) -> np.ndarray:
        gain = np.asarray(value, dtype=float)
        if gain.shape != (self.max_items,) or not np.isfinite(gain).all() or (gain < 0).any():
            raise ValueError(f"item_gain must be {self.max_items} finite gains >= 0, got {value!r}")
        return gain

    # ------------------------------------------------------------------ validation
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

    def _check_angles(self, name: str, value: Any) -> np.ndarray:
        arr = np.asarray(value, dtype=float)
        if arr.shape != (self.max_items,) or not np.isfinite(arr).all():
            raise ValueError(f"{name} must be {self.max_items} finite angles (rad), got {value!r}")
        return arr

    # ------------------------------------------------------------------ one trial (neurogym)
    def _new_trial(self, **kwargs: Any) -> dict:
        unknown = set(kwargs) - set(TRIAL_KEYS)
        if unknown:
            raise ValueError(f"new_trial keys must be in {TRIAL_KEYS}, got {sorted(unknown)}")
        k, rng = self.max_items, self.rng
        # Draw everything every trial, in a fixed order, so the random stream does not depend on
        # which values a caller forces.
        trial = {"durations": self._sample_durations(), "set_size": int(rng.choice(self.set_sizes))}
        slot_order = rng.permutation(k)
        trial["theta"] = rng.uniform(-np.pi, np.pi, k)
        draws = {"slot_order": slot_order, "ilc": rng.standard_normal(k), "pick": rng.uniform()}
        sampled_durations = trial["durations"]
        trial.update(kwargs)
        trial["durations"] = self._resolve_durations(sampled_durations, kwargs.get("durations"))
        trial.update(self._read_back(trial, set(kwargs), **draws))
        if self.item_gain is not None:
            gain = self.item_gain.draw(rng, trial["presence"])
            trial["item_gain"] = self._check_gain(kwargs["item_gain"]) if "item_gain" in kwargs else gain
        elif "item_gain" in kwargs:
            raise ValueError("item_gain: this env has no item_gain option (task.item_gain is null)")
        self._build_trial(trial)
        return trial

    def _read_back(
        self, trial: dict, forced: set[str], slot_order: np.ndarray, ilc: np.ndarray, pick: float
    ) -> dict:
        """Trial values after forcing: validated, with the dependent ones derived from them."""
        k = self.max_items
        theta = self._check_angles("theta", trial["theta"])
        if "presence" in forced:
            presence = np.asarray(trial["presence"])
            if presence.shape != (k,) or not np.isin(presence, (0, 1)).all() or not presence.any():
                raise ValueError(f"presence must be {k} booleans with at least one True")
            presence = presence.astype(bool)
            if "set_size" in forced and trial["set_size"] != presence.sum():
                raise ValueError(
                    f"set_size={trial['set_size']!r} disagrees with presence ({presence.sum()} present)"
                )
            slot_order = np.concatenate([np.flatnonzero(presence), np.flatnonzero(~presence)])
        else:
            set_size = trial["set_size"]
            if not isinstance(set_size, numbers.Integral) or not 1 <= set_size <= k:
                raise ValueError(f"set_size must be an integer in [1, {k}], got {set_size!r}")
            presence = np.zeros(k, dtype=bool)
            presence[slot_order[:set_size]] = True
        set_size = int(presence.sum())
        if "theta_input" in forced:
            theta_input = self._check_angles("theta_input", trial["theta_input"])
        else:
            theta_input = wrap_angle(theta + self.ilc_noise * ilc)
        if "probe" in forced:
            probe = self._check_probe(trial["probe"], presence)
        else:
            probe = int(self._choose_probe(np.array([pick]), slot_order[None], np.array([set_size]))[0])
        return {"theta": theta, "theta_input": theta_input, "presence": presence,
                "set_size": set_size, "probe": probe}

    def _build_trial(self, trial: dict) -> None:
        """Epochs, ``ob``, ``gt`` and ``mask`` of a resolved trial, with neurogym's builders."""
        durations = trial["durations"]
        self.add_period(list(EPOCHS), duration=[durations[e] for e in EPOCHS])
        vectors = self._with_gain(self.trial_vectors(
            trial["theta"], trial["theta_input"], trial["presence"], np.asarray(trial["probe"])
        ), trial.get("item_gain"))
        self.add_ob(vectors.stimulus, "stimulus")
        if vectors.cue is not None:
            self.add_ob(vectors.cue, "decode")
        self.set_groundtruth(0.0)
        self.set_groundtruth(vectors.target, "decode")
        self.mask = np.zeros_like(self.gt)
        self.mask[self.start_ind["decode"] : self.end_ind["decode"]] = vectors.target_mask
        self._decode_action_sum = np.zeros(self.n_outputs)

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

    def _step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        t = self.t_ind
        reward = 0.0
        start, end = self.start_ind["decode"], self.end_ind["decode"]
        if start <= t < end:
            action = np.asarray(action, dtype=float)
            scored = self.mask[t]
            squared = (action - self.gt[t]) ** 2
            reward = self.rewards["error"] * float((scored * squared).sum() / max(scored.sum(), 1.0))
            self._decode_action_sum += action
            if t == end - 1:
                self.performance = self._trial_performance()
        return self.ob_now, reward, False, False, {"new_trial": False, "gt": self.gt_now}

    def _trial_performance(self) -> float:
        """``1 - mean|angular error| / pi`` of the decode-averaged action over scored items."""
        row = self.start_ind["decode"]
        scored = self.mask[row, 0::2] > 0
        reported = targets_to_angles(self._decode_action_sum)
        wanted = targets_to_angles(self.gt[row].astype(float))
        errors = np.abs(wrap_angle(reported - wanted))[scored]
        return float(1.0 - errors.mean() / np.pi)

    def reset(self, seed: int | None = None, options: dict | None = None):
        # neurogym's reset only seeds gymnasium's np_random; trials come from self.rng.
        if seed is not None:
            self.seed(seed)
        return super().reset(seed=seed, options=options)

    # ------------------------------------------------------------------ batches (vectorised)
    def sample_batch(
        self,
        batch_size: int,
        rng: np.random.Generator | int | None = None,
        *,
        dense: bool = True,
        balance_set_sizes: bool = False,
    ) -> TrialBatch:
        """``batch_size`` trials drawn at once, padded to the longest one.

        Args:
            batch_size: number of trials B.
            rng: a numpy ``Generator``, an int seed, or None to draw a seed from the env's ``rng``
                (so ``env.seed(s)`` makes batches reproducible).
            dense: build ``ob``/``gt``/``mask`` numpy arrays; False returns the compact form
                (trial parameters and epoch boundaries only, see :meth:`batch_tensors`).
            balance_set_sizes: split the batch evenly over ``set_sizes`` in contiguous blocks
                (the first ``B % len(set_sizes)`` blocks get one extra trial) instead of drawing
                each trial's set size at random.

        Each trial is exactly what ``new_trial`` gives for the same parameters
        (``theta``, ``theta_input``, ``presence``, ``probe`` and the epoch durations).
        """
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        gen = _as_generator(rng, self.rng)
        b, k = int(batch_size), self.max_items

        durations = {}
        elapsed = np.zeros(b)
        for epoch in EPOCHS:
            spec = self.timing[epoch]
            if _is_until(spec):
                durations[epoch] = self._until_duration(epoch, spec[1], elapsed)
            else:
                durations[epoch] = (_sample_timing(spec, gen, b) // self.dt) * self.dt
            elapsed = elapsed + durations[epoch]
        if balance_set_sizes:
            counts = np.full(len(self.set_sizes), b // len(self.set_sizes))
            counts[: b % len(self.set_sizes)] += 1
            set_size = np.repeat(self.set_sizes, counts)
        else:
            set_size = gen.choice(self.set_sizes, b)
        order = np.argsort(gen.random((b, k)), axis=1)
        theta = gen.uniform(-np.pi, np.pi, (b, k))
        ilc = gen.standard_normal((b, k))
        pick = gen.random(b)

        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(k)[None, :], axis=1)
        presence = rank < set_size[:, None]
        theta_input = wrap_angle(theta + self.ilc_noise * ilc)
        probe = self._choose_probe(pick, order, set_size)
        epochs, length = _epoch_bounds(durations, self.dt)
        batch = TrialBatch(
            ob=None,
            gt=None,
            mask=None,
            valid=np.arange(length.max())[None, :] < length[:, None],
            epochs=epochs,
            dt=self.dt,
            theta=theta,
            theta_input=theta_input,
            presence=presence,
            set_size=set_size.astype(np.int64),
            probe=probe,
            item_gain=None if self.item_gain is None else self.item_gain.draw(gen, presence),
        )
        if dense:
            batch.ob, batch.gt, batch.mask = self._dense_arrays(batch)
        return batch

    def _dense_arrays(self, batch: TrialBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        vectors = self._with_gain(self.trial_vectors(
            batch.theta, batch.theta_input, batch.presence, batch.probe), batch.item_gain)
        b, n_steps = batch.valid.shape
        n_in, n_out = self.observation_space.shape[0], self.n_outputs
        # One allocation for the three arrays: allocators hand a single large block back for
        # reuse on the next batch, where three separate ones tend to be unmapped and faulted in
        # again (the page faults otherwise cost more than the writes).
        block = np.empty(b * n_steps * (n_in + 2 * n_out), dtype=np.float32)
        ob = block[: b * n_steps * n_in].reshape(b, n_steps, n_in)
        gt = block[b * n_steps * n_in : b * n_steps * (n_in + n_out)].reshape(b, n_steps, n_out)
        mask = block[b * n_steps * (n_in + n_out) :].reshape(b, n_steps, n_out)
        stimulus, decode = batch.epochs["stimulus"], batch.epochs["decode"]
        inputs = [(vectors.stimulus, stimulus)]
        if vectors.cue is not None:
            inputs.append((vectors.cue, decode))
        _epoch_array(ob, inputs)
        _epoch_array(gt, [(vectors.target, decode)])
        _epoch_array(mask, [(vectors.target_mask, decode)])
        return ob, gt, mask

    def batch_tensors(self, batch: TrialBatch, device: Any = "cpu"):
        """``(ob, gt, mask)`` float32 torch tensors ``(B, T, .)`` on ``device``.

        Works on compact and dense batches and equals the dense numpy arrays. On an accelerator
        only the per-trial vectors (``B x n`` numbers) travel to the device and the time axis is
        expanded there; on the CPU the numpy arrays are shared with torch without a copy (numpy's
        slice fill is the faster CPU builder).
        """
        import torch

        if torch.device(device).type == "cpu":
            arrays = (batch.ob, batch.gt, batch.mask) if batch.is_dense else self._dense_arrays(batch)
            return tuple(torch.from_numpy(a) for a in arrays)
        return self._expand_on_device(batch, device)

    def _expand_on_device(self, batch: TrialBatch, device: Any):
        import torch

        vectors = self._with_gain(self.trial_vectors(
            batch.theta, batch.theta_input, batch.presence, batch.probe), batch.item_gain)
        b, t = batch.valid.shape
        steps = torch.arange(t, device=device)[None, :]

        def inside(epoch: str):
            bounds = torch.as_tensor(batch.epochs[epoch], device=device)
            return ((steps >= bounds[:, :1]) & (steps < bounds[:, 1:]))[..., None]

        def spread(values: np.ndarray, where) -> Any:
            values = torch.as_tensor(values, device=device)[:, None, :]
            return torch.where(where, values, torch.zeros((), device=device))

        stimulus, decode = inside("stimulus"), inside("decode")
        ob = spread(vectors.stimulus, stimulus)
        if vectors.cue is not None:
            ob = ob + spread(vectors.cue, decode)
        return ob, spread(vectors.target, decode), spread(vectors.target_mask, decode)


def replay_kwargs(batch: TrialBatch, index: int) -> dict:
    """The ``new_trial`` kwargs that rebuild trial ``index`` of a VWM batch exactly."""
    gain = {} if batch.item_gain is None else {"item_gain": batch.item_gain[index]}
    return {**gain,
        "theta": batch.theta[index],
        "theta_input": batch.theta_input[index],
        "presence": batch.presence[index],
        "probe": int(batch.probe[index]),
        "durations": {
            epoch: float(bounds[index, 1] - bounds[index, 0]) * batch.dt
            for epoch, bounds in batch.epochs.items()
        },
    }


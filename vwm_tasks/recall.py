"""The delayed multi-item orientation recall task (``VWMRecall-v0``) and its vectorised twin.

One trial is built two ways that must agree exactly:

* :meth:`VWMRecall._new_trial`, the neurogym way (``add_period``, ``add_ob``,
  ``set_groundtruth``), one trial at a time from the env's own ``self.rng``;
* :meth:`VWMRecall.sample_batch`, numpy over a whole batch with no per-trial Python loop, and
  :meth:`VWMRecall.batch_tensors`, which expands a compact batch into torch tensors directly on a
  device (the vectorised twin, :mod:`vwm_tasks.recall_batch`).

Both routes share the per-trial vectors (:meth:`VWMRecall.trial_vectors`: the input shown during
the stimulus, the cue shown during decode, the target and its mask) and differ only in how those
vectors are laid out over time.

The epochs' timing (specs, drawn and forced durations) lives in :mod:`vwm_tasks.timing`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from neurogym import spaces
from neurogym.core import TrialEnv

from vwm_tasks.encoding import (
    angles_to_targets,
    channels_per_item,
    check_encoding,
    encode_angles,
    targets_to_angles,
    wrap_angle,
)
from vwm_tasks.item_gain import ItemGain, apply_item_gain
from vwm_tasks.recall_batch import RecallBatches, replay_kwargs
from vwm_tasks.timing import EPOCHS, EpochTiming, _is_number

__all__ = ["VWMRecall", "TrialVectors", "TRIAL_KEYS", "EPOCHS", "replay_kwargs"]

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


class VWMRecall(EpochTiming, RecallBatches, TrialEnv):
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
        sizes = _check_arguments(
            dt, max_items, set_sizes, ilc_noise, input_encoding, input_strength
        )
        max_items = int(max_items)
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
                raise ValueError(
                    f"rewards keys must be in {sorted(self.rewards)}, got {sorted(unknown)}"
                )
            self.rewards.update(rewards)

        self._set_timing(timing)

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

    def _choose_probe(
        self, pick: np.ndarray, order: np.ndarray, set_size: np.ndarray
    ) -> np.ndarray:
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
            stimulus.astype(np.float32),
            None,
            target.astype(np.float32),
            target_mask.astype(np.float32),
        )

    def gained_vectors(
        self,
        theta: np.ndarray,
        theta_input: np.ndarray,
        presence: np.ndarray,
        probe: np.ndarray,
        item_gain: np.ndarray | None,
    ) -> TrialVectors:
        """:meth:`trial_vectors` with each slot's stimulus times its ``item_gain`` (None: as is)."""
        vectors = self.trial_vectors(theta, theta_input, presence, probe)
        if item_gain is None:
            return vectors
        channels = channels_per_item(self.input_encoding)
        return replace(vectors, stimulus=apply_item_gain(vectors.stimulus, item_gain, channels))

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
            trial["item_gain"] = (
                ItemGain.check(kwargs["item_gain"], k) if "item_gain" in kwargs else gain
            )
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
            probe = int(
                self._choose_probe(np.array([pick]), slot_order[None], np.array([set_size]))[0]
            )
        return {
            "theta": theta,
            "theta_input": theta_input,
            "presence": presence,
            "set_size": set_size,
            "probe": probe,
        }

    def _build_trial(self, trial: dict) -> None:
        """Epochs, ``ob``, ``gt`` and ``mask`` of a resolved trial, with neurogym's builders."""
        durations = trial["durations"]
        self.add_period(list(EPOCHS), duration=[durations[e] for e in EPOCHS])
        vectors = self.gained_vectors(
            trial["theta"],
            trial["theta_input"],
            trial["presence"],
            np.asarray(trial["probe"]),
            trial.get("item_gain"),
        )
        self.add_ob(vectors.stimulus, "stimulus")
        if vectors.cue is not None:
            self.add_ob(vectors.cue, "decode")
        self.set_groundtruth(0.0)
        self.set_groundtruth(vectors.target, "decode")
        self.mask = np.zeros_like(self.gt)
        self.mask[self.start_ind["decode"] : self.end_ind["decode"]] = vectors.target_mask
        self._decode_action_sum = np.zeros(self.n_outputs)

    def _step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        t = self.t_ind
        reward = 0.0
        start, end = self.start_ind["decode"], self.end_ind["decode"]
        if start <= t < end:
            action = np.asarray(action, dtype=float)
            scored = self.mask[t]
            squared = (action - self.gt[t]) ** 2
            reward = self.rewards["error"] * float(
                (scored * squared).sum() / max(scored.sum(), 1.0)
            )
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


def _check_arguments(
    dt: Any,
    max_items: Any,
    set_sizes: Any,
    ilc_noise: Any,
    input_encoding: Any,
    input_strength: Any,
) -> list[int]:
    """One clear ValueError per bad constructor argument; returns the set sizes."""
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
    return sizes

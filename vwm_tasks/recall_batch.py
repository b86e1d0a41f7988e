"""The vectorised twin of :class:`vwm_tasks.recall.VWMRecall`: whole batches with numpy.

:class:`RecallBatches` (a mixin of the env) draws the trial parameters of a batch with no
per-trial Python loop (:meth:`~RecallBatches.sample_batch`) and lays them out over time, as
dense numpy arrays or directly as torch tensors on a device (:meth:`~RecallBatches.batch_tensors`).
The per-trial vectors come from the env's ``trial_vectors``, shared with ``_new_trial``, so the
two paths give identical arrays for the same trial parameters; :func:`replay_kwargs` rebuilds one
trial of a batch through ``new_trial``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from vwm_tasks.batch import TrialBatch
from vwm_tasks.encoding import wrap_angle
from vwm_tasks.timing import EPOCHS, _epoch_bounds, _is_until, _sample_timing

__all__ = ["RecallBatches", "replay_kwargs"]


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
    raise ValueError(
        f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}"
    )


class RecallBatches:
    """``sample_batch`` and ``batch_tensors`` of the recall env (a mixin of the env)."""

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
        if (
            not isinstance(batch_size, numbers.Integral)
            or isinstance(batch_size, bool)
            or batch_size < 1
        ):
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
        vectors = self.gained_vectors(
            batch.theta, batch.theta_input, batch.presence, batch.probe, batch.item_gain
        )
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
            arrays = (
                (batch.ob, batch.gt, batch.mask) if batch.is_dense else self._dense_arrays(batch)
            )
            return tuple(torch.from_numpy(a) for a in arrays)
        return self._expand_on_device(batch, device)

    def _expand_on_device(self, batch: TrialBatch, device: Any):
        import torch

        vectors = self.gained_vectors(
            batch.theta, batch.theta_input, batch.presence, batch.probe, batch.item_gain
        )
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
    return {
        **gain,
        "theta": batch.theta[index],
        "theta_input": batch.theta_input[index],
        "presence": batch.presence[index],
        "probe": int(batch.probe[index]),
        "durations": {
            epoch: float(bounds[index, 1] - bounds[index, 0]) * batch.dt
            for epoch, bounds in batch.epochs.items()
        },
    }

"""Checkpoints that hold only tensors and plain data, written atomically.

A checkpoint is a dict ``{"format": "vwm-rnn-checkpoint", "version": 1, "kind": ..., ...}`` saved
with :func:`torch.save` and read with ``torch.load(..., weights_only=True)``, so loading a
checkpoint someone else shared cannot run code. Writes go to a temporary file in the same
directory that then replaces the target (``os.replace`` is atomic), so a crash mid-write leaves
the previous checkpoint intact.

Two kinds: ``"latest"`` (everything needed to continue exactly: model, optimiser, scheduler,
early stopping, curriculum, every RNG state, the metrics buffered since the last history record;
the history itself is appended to ``history.jsonl``, not copied here) and ``"best"`` (model
weights, iteration and validation error only). Atomic writes live in :mod:`vwm_agents.training.files`.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vwm_agents.training.files import atomic_write_bytes, atomic_write_text

__all__ = [
    "CheckpointError",
    "FORMAT",
    "VERSION",
    "atomic_write_bytes",
    "atomic_write_text",
    "save_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "numpy_rng_state",
    "set_numpy_rng_state",
]

FORMAT = "vwm-rnn-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, foreign, or not matching the model."""


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Atomically save ``payload`` (tensors and plain data) with the format header."""
    import io

    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(
    path: str | Path, *, kind: str | None = None, map_location: Any = "cpu"
) -> dict:
    """Load and sanity-check a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing, unreadable (e.g. truncated), not one of ours, from a
            newer format version, or of another ``kind`` than asked for.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a vwm-rnn checkpoint (it holds objects other than tensors and plain "
            f"data, refused by weights_only loading: {first_line})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: unreadable checkpoint (truncated or corrupt?): {first_line}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a vwm-rnn checkpoint (no '{FORMAT}' header)")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {payload.get('version')!r}, this code reads {VERSION}"
        )
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{path}: a {payload.get('kind')!r} checkpoint, expected {kind!r}")
    if not isinstance(payload.get("model"), dict):
        raise CheckpointError(f"{path}: checkpoint has no model weights")
    return payload


def load_model_state(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str | Path
) -> None:
    """Load weights into ``model``, with one clear line when they do not fit its configuration."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        detail = []
        if missing:
            detail.append("missing " + ", ".join(missing[:5]))
        if unexpected:
            detail.append("unexpected " + ", ".join(unexpected[:5]))
        raise CheckpointError(
            f"{source}: weights do not match the configured model ({'; '.join(detail)})"
        )
    for key, tensor in expected.items():
        got = state[key]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(tensor.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise CheckpointError(
                f"{source}: weights do not match the configured model: {key} has shape {shape} "
                f"in the checkpoint, {tuple(tensor.shape)} in the model (check agent/task sizes)"
            )
    model.load_state_dict(state)


def numpy_rng_state(rng: np.random.Generator) -> str:
    """The bit generator's state as a JSON string (its 128-bit integers do not fit int64)."""
    return json.dumps(rng.bit_generator.state)


def set_numpy_rng_state(rng: np.random.Generator, state: str) -> None:
    rng.bit_generator.state = json.loads(state)

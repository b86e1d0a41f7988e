"""Helpers shared by the tests of vwm_agents (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import torch
import yaml

# Training settings small enough for a sweep trial to take a second or two on one core.
TINY_SWEEP_TRAINING = {
    "agent.n_neurons": 16,
    "task.max_items": 2,
    "task.timing": {"stimulus": 100, "delay": 200, "decode": 100},
    "training.num_iterations": 20,
    "training.batch_size": 16,
    "training.eval_batch_size": 32,
    "logging.period": 10,
}


# The training a small test starts from: a few neurons, one core, the CPU, a record every
# iteration, no progress bar. Tests change what they are about with tiny_overrides(changes).
TINY_TRAINING = {
    "task.max_items": 2,
    "agent.n_neurons": 16,
    "training.batch_size": 4,
    "training.eval_batch_size": 8,
    "training.threads": 1,
    "training.device": "cpu",
    "logging.period": 1,
    "logging.progress": False,
}


# Every file a finished training writes into its run directory (no TensorBoard, no analysis).
TRAINED_RUN_FILES = [
    "checkpoints/best.pt",
    "checkpoints/latest.pt",
    "config.yaml",
    "history.jsonl",
    "metrics.json",
    "training_history.png",
]


def tiny_overrides(changes: dict | None = None) -> list[str]:
    """``key=value`` overrides (values as YAML flow) of TINY_TRAINING updated with ``changes``."""
    return [
        f"{key}={json.dumps(value)}" for key, value in {**TINY_TRAINING, **(changes or {})}.items()
    ]


def assert_same_tree(a, b, where: str = "checkpoint") -> None:
    """Equal tensor for tensor (and value for value) everywhere in two checkpoint payloads
    (except where the runs were written to: ``config.logging.out_dir``)."""
    if where.endswith(".config.logging.out_dir"):
        return
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_tree(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, where


def write_sweep(folder: Path, **body) -> Path:
    """``folder/sweep.yaml``: the default base, tiny training, output in ``folder/out`` unless
    ``body`` says otherwise."""
    body = {"base": "default", "set": TINY_SWEEP_TRAINING, "output": str(folder / "out"), **body}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))

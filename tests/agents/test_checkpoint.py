"""Checkpoints: weights-only loading, atomic writes, clear errors for bad files, load_run."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
import torch
import yaml

from vwm_agents import RunDirError, load_run, train
from vwm_agents.config import Config
from vwm_agents.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    numpy_rng_state,
    save_checkpoint,
    set_numpy_rng_state,
)

TINY = {
    "task": {
        "id": "VWMRecall-v0",
        "max_items": 2,
        "timing": {"init": 20, "stimulus": 50, "delay": 50, "decode": 50},
    },
    "agent": {"name": "dale_rnn", "n_neurons": 8, "spike_noise_type": "none"},
    "training": {
        "num_iterations": 4,
        "batch_size": 4,
        "eval_batch_size": 8,
        "device": "cpu",
        "threads": 1,
    },
    "logging": {"run_name": "ck", "period": 2, "progress": False},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train(Config.from_dict(TINY), tmp_path_factory.mktemp("runs"))


def test_round_trip_with_weights_only_and_big_rng_ints(tmp_path):
    rng = np.random.default_rng(123)
    rng.random(5)
    path = tmp_path / "c.pt"
    save_checkpoint(
        path,
        {
            "kind": "latest",
            "model": {"w": torch.arange(3.0)},
            "rng": numpy_rng_state(rng),
            "history": [{"a": 1.5, "b": None}],
        },
    )
    payload = load_checkpoint(path, kind="latest")
    assert torch.equal(payload["model"]["w"], torch.arange(3.0))
    assert payload["history"] == [{"a": 1.5, "b": None}]
    restored = np.random.default_rng(0)
    set_numpy_rng_state(restored, payload["rng"])
    assert np.array_equal(restored.random(4), rng.random(4))
    assert not (tmp_path / ".c.pt.tmp").exists()  # the temporary file was renamed into place


def test_missing_truncated_foreign_and_unsafe_files(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"kind": "best", "model": {"w": torch.zeros(100)}})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="not a vwm-rnn checkpoint"):
        load_checkpoint(foreign)
    unsafe = tmp_path / "unsafe.pt"  # a pickled class instance: refused, never executed
    torch.save({"format": "vwm-rnn-checkpoint", "x": argparse.Namespace(a=1)}, unsafe)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(unsafe)
    with pytest.raises(CheckpointError, match="a 'best' checkpoint, expected 'latest'"):
        load_checkpoint(good, kind="latest")


def test_load_run(run_dir):
    best = load_run(run_dir)
    latest = load_run(run_dir, "latest")
    assert best.checkpoint == "best" and latest.checkpoint == "latest"
    assert latest.iteration == 4
    assert not best.model.training
    assert best.env.max_items == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["iteration"] == best.iteration


def test_load_run_errors(run_dir, tmp_path):
    with pytest.raises(RunDirError, match="run directory not found"):
        load_run(tmp_path / "nothing")
    with pytest.raises(RunDirError, match="no config.yaml"):
        load_run(tmp_path)
    with pytest.raises(ValueError, match="'best' or 'latest'"):
        load_run(run_dir, "final")

    copy = tmp_path / "copy"
    (copy / "checkpoints").mkdir(parents=True)
    (copy / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    with pytest.raises(RunDirError, match="no checkpoint best.pt"):
        load_run(copy)
    data = (run_dir / "checkpoints" / "latest.pt").read_bytes()
    (copy / "checkpoints" / "latest.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(RunDirError, match="unreadable checkpoint"):
        load_run(copy, "latest")
    (copy / "checkpoints" / "latest.pt").write_bytes(data)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["agent"]["n_neurons"] = 16
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(
        RunDirError, match=r"weights do not match the configured model: .* \(8, 8\)"
    ):
        load_run(copy, "latest")
    (copy / "config.yaml").write_text("training: {learning_rate: -1}\n")
    with pytest.raises(RunDirError, match="training.learning_rate: must be a positive number"):
        load_run(copy, "latest")


def test_resume_from_a_corrupt_checkpoint_is_a_clear_error(run_dir, tmp_path):
    out = tmp_path / "out"
    clone = out / run_dir.name
    (clone / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "checkpoints/latest.pt"):
        (clone / name).write_bytes((run_dir / name).read_bytes())
    latest = clone / "checkpoints" / "latest.pt"
    os.truncate(latest, 100)
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        train(Config.from_dict(TINY), out, resume=True)

"""kill -9 at several points of a run: each ``--resume`` ends in the uninterrupted run's checkpoint.

The interrupted run is the real CLI in a subprocess, killed with SIGKILL (no handler runs, files
may be half-written) once its history holds a given number of records; the uninterrupted run
trains in this process, whose global random state differs from a fresh process's, which the
trainer must not depend on. Equal means tensor for tensor in ``latest.pt`` (weights, Adam,
schedules, every saved RNG state) and ``best.pt``, record for record in the history, and byte
for byte in ``metrics.json``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from agent_test_support import assert_same_tree

from vwm_agents import train
from vwm_agents.config import Config
from vwm_agents.training.checkpoint import load_checkpoint
from vwm_agents.training.rundir import read_history

pytestmark = pytest.mark.slow  # trains models or starts Ray: minutes of the suite

CONFIG = {
    "task": {
        "id": "VWMRecall-v0",
        "max_items": 2,
        "timing": {"init": 40, "stimulus": 100, "delay": 100, "decode": 100},
    },
    "agent": {
        "name": "dale_rnn",
        "n_neurons": 16,
        "spike_noise_type": "gamma",
        "spike_noise_factor": 0.05,
    },
    "training": {
        "seed": 3,
        "num_iterations": 24,
        "batch_size": 16,
        "learning_rate": 0.01,
        "eval_batch_size": 16,
        "device": "cpu",
        "threads": 1,
        "checkpoint_period": 3,
        "noise_stages": 2,
        "lr_patience": 2,
    },
    "logging": {"run_name": "kill", "period": 2, "progress": False},
}
# Kill once the history holds this many records (a record every 2 iterations, a checkpoint
# every 3): iteration 2 is before the first checkpoint, 8 and 16 between two checkpoints.
KILL_AFTER_RECORDS = (1, 4, 8)


def _cli(config_path, out_dir, *, resume: bool) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "vwm_agents.train",
        "--config",
        str(config_path),
        "--out",
        str(out_dir),
        "--no-progress",
        *(["--resume"] if resume else []),
    ]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _records(run_dir) -> int:
    try:
        return (run_dir / "history.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_after(process: subprocess.Popen, run_dir, records: int) -> int:
    """SIGKILL ``process`` as soon as the run's history holds ``records`` records."""
    deadline = time.monotonic() + 600  # a safety net against a hung child, not a speed check
    while process.poll() is None and time.monotonic() < deadline:
        if _records(run_dir) >= records:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    _, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    return process.returncode


def test_kill_9_at_several_points_then_resume_equals_the_uninterrupted_run(tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    torch.manual_seed(12345)  # this process's global generator is not a fresh one
    straight = train(Config.from_dict(CONFIG), tmp_path / "straight")

    run_dir = tmp_path / "killed" / straight.name
    resumed_from = []
    for index, records in enumerate(KILL_AFTER_RECORDS):
        process = _cli(config_path, tmp_path / "killed", resume=index > 0)
        _kill_after(process, run_dir, records)
        latest = run_dir / "checkpoints" / "latest.pt"
        resumed_from.append(load_checkpoint(latest)["iteration"] if latest.exists() else 0)
    # the kills left the run at different points (at least two distinct checkpoints)
    assert len(set(resumed_from)) >= 2, resumed_from
    assert resumed_from == sorted(resumed_from)
    final = _cli(config_path, tmp_path / "killed", resume=True)
    stdout, stderr = final.communicate(timeout=600)
    assert final.returncode == 0, stderr.decode()
    assert stdout.decode().strip() == str(run_dir)

    for name in ("latest", "best"):
        a = load_checkpoint(straight / "checkpoints" / f"{name}.pt")
        b = load_checkpoint(run_dir / "checkpoints" / f"{name}.pt")
        assert_same_tree(a, b, name)
    assert read_history(run_dir) == read_history(straight)
    assert [r["iteration"] for r in read_history(run_dir)] == list(range(2, 25, 2))
    assert (run_dir / "metrics.json").read_text() == (straight / "metrics.json").read_text()

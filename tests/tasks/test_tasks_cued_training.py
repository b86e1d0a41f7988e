"""The cued task can be learned: a small Dale RNN reads the cue (docs/model.md, section Task).

A network that ignores the cue can at best report one of the n present items at random: the
probed one with probability 1/n (error: its encoding error e_n), another one otherwise, whose
angle is independent of the probed one (|error| uniform on [0, pi], mean pi/2). Its mean absolute
error is therefore

    cue_blind(n) = e_n / n + (n - 1) / n * pi / 2   >=   (n - 1) / n * pi / 2,

pi/4 at n = 2 and pi/3 at n = 3 even with perfect encoding. With the cue at amplitude 1 (before it
had the stimulus scale) the same training reached 0.84 / 1.00 rad at n = 2 / 3: cue-blind.

Training passes through that cue-blind plateau before it reads the cue, and not every seed leaves
it within this budget: of seeds 0-5 at this size, seed 3 stayed cue-blind even after 800
iterations, the others reached 0.12-0.23 rad at n = 2. The seed is fixed (0), so the test is
deterministic; it shows that the network can learn the task, not that every seed does.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

pytestmark = pytest.mark.slow  # trains models or starts Ray: minutes of the suite

TINY_CUED = {
    "task": {
        "id": "VWMRecallCued-v0",
        "max_items": 3,
        "set_sizes": [1, 2, 3],
        "dt": 20,
        "timing": {"init": 20, "stimulus": 200, "delay": 200, "decode": 200},
    },
    "agent": {"name": "dale_rnn", "n_neurons": 48, "spike_noise_factor": 0.05},
    "training": {
        "seed": 0,
        "num_iterations": 400,
        "batch_size": 64,
        "learning_rate": 3.0e-3,
        "grad_clip": 1.0,
        "error_def": "rad",
        "eval_batch_size": 300,
        "threads": 1,
    },
    "logging": {"run_name": "cued_tiny", "period": 50, "progress": False},
}
N_EVAL = 1000  # fresh test trials per set size, none of them seen in training or selection
MARGIN_SE = 5.0


def cue_blind_error(encoding_error: float, set_size: int) -> float:
    """MAE of a network that reports a random present item with encoding error ``encoding_error``."""
    return encoding_error / set_size + (set_size - 1) / set_size * math.pi / 2


def test_cue_blind_level_matches_a_simulated_cue_blind_observer():
    # The formula, checked on an observer that encodes every item with von Mises noise and
    # reports a random present one.
    rng = np.random.default_rng(0)
    m = 200_000
    for n in (2, 3):
        theta = rng.uniform(-np.pi, np.pi, (m, n))
        reported = theta[np.arange(m), rng.integers(0, n, m)] + rng.vonmises(0.0, 20.0, m)
        probe = theta[:, 0]  # the probe is uniform over present items: the first one will do
        errors = np.abs(np.angle(np.exp(1j * (reported - probe))))
        encoding = np.abs(rng.vonmises(0.0, 20.0, m)).mean()
        se = errors.std() / math.sqrt(m)
        assert abs(errors.mean() - cue_blind_error(encoding, n)) < 4 * se


@pytest.fixture(scope="module")
def trained_cued_run(tmp_path_factory):
    from vwm_agents import load_run

    root = tmp_path_factory.mktemp("cued")
    config = root / "cued_tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_CUED))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vwm_agents.train",
            "--config",
            str(config),
            "--out",
            str(root / "runs"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_dirs = [p for p in (root / "runs").iterdir() if p.is_dir()]
    assert len(run_dirs) == 1
    return load_run(run_dirs[0], checkpoint="latest")


def _probed_errors(run, set_size: int, seed: int) -> np.ndarray:
    """|error| of the probed item on N_EVAL fresh trials of one set size."""
    from vwm_agents.training.losses import angular_errors

    env = run.env
    env.set_sizes = np.array([set_size])
    batch = env.sample_batch(N_EVAL, rng=seed)
    ob, gt, mask = env.batch_tensors(batch)
    torch.manual_seed(seed)
    with torch.no_grad():
        outputs = run.model(ob)
    outputs = outputs[0] if isinstance(outputs, tuple) else outputs
    errors, present = angular_errors(outputs, gt, mask)
    assert present.all() and errors.shape == (N_EVAL, 1)  # one reported (probed) item per trial
    return np.abs(errors[:, 0].numpy())


def test_dale_rnn_learns_the_cued_task(trained_cued_run):
    encoding = _probed_errors(trained_cued_run, 1, seed=101)
    e1, se1 = encoding.mean(), encoding.std() / math.sqrt(N_EVAL)
    for n in (2, 3):
        errors = _probed_errors(trained_cued_run, n, seed=100 + n)
        mae, se = errors.mean(), errors.std() / math.sqrt(N_EVAL)
        # The level with the network's own one-item error as its encoding error (encoding does
        # not get better with more items), and the floor with perfect encoding.
        level = cue_blind_error(e1, n)
        floor = cue_blind_error(0.0, n)
        assert mae + MARGIN_SE * math.hypot(se, se1 / n) < level, (n, mae, se, level)
        assert mae + MARGIN_SE * se < floor, (n, mae, se, floor)

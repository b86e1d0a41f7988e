"""Shared fixtures: a small model trained briefly, once per test session.

The trained run is cached between sessions under pytest's cache directory, keyed by a hash of its
config and of the source of the packages that produce it, so a code change retrains it.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# Small enough to train in ~20 s of one CPU core, large enough to show the set-size effect
# (measured: MAE 0.06 / 0.14 / 0.18 rad at set sizes 1 / 2 / 3 after 250 iterations).
TRAINED_CONFIG = {
    "task": {
        "id": "VWMRecall-v0",
        "max_items": 3,
        "dt": 20,
        "timing": {"init": 20, "stimulus": 200, "delay": 200, "decode": 200},
    },
    "agent": {
        "name": "dale_rnn",
        "n_neurons": 48,
        "dt": 20,
        "tau_min": 40,
        "tau_max": 200,
        "spike_noise_factor": 0.1,
    },
    "training": {
        "seed": 0,
        "num_iterations": 300,
        "batch_size": 96,
        "learning_rate": 3.0e-3,
        "grad_clip": 1.0,
        "eval_batch_size": 300,
        "threads": 1,
        "device": "cpu",
    },
    "logging": {"run_name": "fixture", "period": 50, "progress": False},
}


def _source_hash() -> str:
    digest = hashlib.sha256(yaml.safe_dump(TRAINED_CONFIG, sort_keys=True).encode())
    for package in ("vwm_tasks", "vwm_agents"):
        for path in sorted((REPO / package).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def trained_run_dir(request, tmp_path_factory) -> Path:
    """Run directory of a briefly trained 3-item DaleRNN (cached across sessions)."""
    from vwm_agents.config import Config
    from vwm_agents.trainer import train

    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cached = None if cache is None else Path(cache.mkdir("vwm_trained_model")) / _source_hash()
    if cached is not None and (cached / "metrics.json").exists():
        return cached
    run_dir = train(Config.from_dict(TRAINED_CONFIG), tmp_path_factory.mktemp("trained"),
                    progress=False)
    if cached is None:
        return run_dir
    shutil.rmtree(cached, ignore_errors=True)
    shutil.copytree(run_dir, cached)
    return cached


@pytest.fixture(scope="session")
def trained_run(trained_run_dir):
    from vwm_agents.run import load_run

    return load_run(trained_run_dir, checkpoint="best", device="cpu")


@pytest.fixture(scope="session")
def untrained_run(trained_run):
    """The same architecture and env with freshly initialised weights (seeded)."""
    import torch

    from vwm_agents.run import build_model

    torch.manual_seed(1)
    model = build_model(trained_run.config, trained_run.env).eval()
    return trained_run.config, model, trained_run.env

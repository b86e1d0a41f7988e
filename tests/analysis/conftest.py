"""Shared fixtures of the analysis tests: small runs trained once per test session.

* ``trained_run_dir``: a 3-item DaleRNN on VWMRecall-v0 trained long enough to show the set-size
  effect (cached between sessions under pytest's cache, keyed by a hash of its config and of the
  source of the packages that produce it, so a code change retrains it);
* ``gru_vwm_run_dir`` and ``dale_dms_run_dir``: tiny runs (a few iterations, seconds) of a GRU on
  VWMRecall-v0 and of the DaleRNN on neurogym's DelayMatchSample-v0, for the CLI on any agent and
  any task (their behaviour does not matter, only that every analysis copes).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

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

_TINY_TRAINING = {
    "seed": 0,
    "num_iterations": 3,
    "batch_size": 8,
    "eval_batch_size": 16,
    "threads": 1,
    "device": "cpu",
}
_TINY_LOGGING = {"period": 1, "progress": False}

GRU_VWM_CONFIG = {
    "task": {
        "id": "VWMRecall-v0",
        "max_items": 3,
        "dt": 20,
        "timing": {"init": 20, "stimulus": 100, "delay": 100, "decode": 100},
    },
    "agent": {"name": "gru", "n_hidden": 16},
    "training": _TINY_TRAINING,
    "logging": {**_TINY_LOGGING, "run_name": "gru_vwm"},
}
"""A GRU on our task: every behavioural and neural analysis should run on it except ``dn``
(which is about the rates of rate networks)."""

DALE_DMS_CONFIG = {
    "task": {"id": "DelayMatchSample-v0", "dt": 100},
    "agent": {"name": "dale_rnn", "n_neurons": 16, "positive_input": False, "tau_min": 200},
    "training": _TINY_TRAINING,
    "logging": {**_TINY_LOGGING, "run_name": "dale_dms"},
}
"""Our agent on a neurogym task: the VWM-specific analyses must skip with a reason."""


def _source_hash(config: dict) -> str:
    digest = hashlib.sha256(yaml.safe_dump(config, sort_keys=True).encode())
    for package in ("vwm_tasks", "vwm_agents"):
        for path in sorted((REPO / package).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _train(config: dict, tmp_path_factory) -> Path:
    from vwm_agents import train
    from vwm_agents.config import Config

    return train(Config.from_dict(config), tmp_path_factory.mktemp("runs"), progress=False)


@pytest.fixture(scope="session")
def trained_run_dir(request, tmp_path_factory) -> Path:
    """Run directory of a briefly trained 3-item DaleRNN (cached across sessions)."""
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cached = (
        None
        if cache is None
        else Path(cache.mkdir("vwm_trained_model")) / _source_hash(TRAINED_CONFIG)
    )
    if cached is not None and (cached / "metrics.json").exists():
        return cached
    run_dir = _train(TRAINED_CONFIG, tmp_path_factory)
    if cached is None:
        return run_dir
    shutil.rmtree(cached, ignore_errors=True)
    shutil.copytree(run_dir, cached)
    return cached


@pytest.fixture(scope="session")
def trained_run(trained_run_dir):
    from vwm_agents import load_run

    return load_run(trained_run_dir, checkpoint="best", device="cpu")


@pytest.fixture(scope="session")
def untrained_run(trained_run):
    """The same architecture and env with freshly initialised weights (seeded)."""
    import torch

    from vwm_agents.training.run import build_model

    torch.manual_seed(1)
    model = build_model(trained_run.config, trained_run.env).eval()
    return trained_run.config, model, trained_run.env


@pytest.fixture(scope="session")
def gru_vwm_run_dir(tmp_path_factory) -> Path:
    """A GRU trained 3 iterations on a 3-item VWMRecall-v0 (seconds)."""
    return _train(GRU_VWM_CONFIG, tmp_path_factory)


@pytest.fixture(scope="session")
def dale_dms_run_dir(tmp_path_factory) -> Path:
    """The DaleRNN trained 3 iterations on neurogym's DelayMatchSample-v0 (seconds)."""
    return _train(DALE_DMS_CONFIG, tmp_path_factory)


@pytest.fixture
def add_row(monkeypatch):
    """``add_row(row)`` registers one more analysis for the test, the way a new analysis is
    added: one row of :data:`analysis.registry.ANALYSES`."""
    from types import MappingProxyType

    from analysis import registry

    def add(row) -> None:
        monkeypatch.setattr(
            registry, "ANALYSES", MappingProxyType({**registry.ANALYSES, row.name: row})
        )

    return add


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 3-item, 16-neuron run trained for 2 iterations (the CLI's plumbing, not its science)."""
    from vwm_agents import train
    from vwm_agents.config import load_config

    config = load_config(
        None,
        [
            "task.max_items=3",
            "agent.n_neurons=16",
            "training.num_iterations=2",
            "training.batch_size=8",
            "training.eval_batch_size=12",
            "logging.period=1",
            "logging.run_name=tiny",
        ],
    )
    return train(config, tmp_path_factory.mktemp("runs"), progress=False)

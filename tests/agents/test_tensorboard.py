"""logging.tensorboard: the scalars of a tiny run, read back from the event file."""

from __future__ import annotations

import importlib.util

import pytest

from vwm_agents import train
from vwm_agents.config import Config, ConfigError, apply_overrides
from vwm_agents.training.rundir import read_history

SHORT_TIMING = {"init": 40, "stimulus": 100, "delay": 100, "decode": 100}


def config(*overrides: str) -> Config:
    data = {
        "task": {"id": "VWMRecall-v0", "max_items": 2, "timing": SHORT_TIMING},
        "agent": {
            "name": "dale_rnn",
            "n_neurons": 16,
            "spike_noise_type": "gauss",
            "spike_noise_factor": 0.05,
        },
        "training": {
            "seed": 0,
            "num_iterations": 12,
            "batch_size": 8,
            "learning_rate": 0.01,
            "eval_batch_size": 16,
            "device": "cpu",
            "threads": 1,
            "noise_stages": 2,
            "lr_patience": 1,
        },
        "logging": {"run_name": "tb", "period": 4, "progress": False, "tensorboard": True},
    }
    return Config.from_dict(apply_overrides(data, overrides))


def read_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the tensorboard package (pip install 'vwm-rnn[tensorboard]') is not installed",
    )
    accumulator = event_accumulator.EventAccumulator(str(log_dir))
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def test_history_records_become_scalars(tmp_path):
    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("the tensorboard package (pip install 'vwm-rnn[tensorboard]') is not installed")
    run_dir = train(config(), tmp_path)
    scalars = read_scalars(run_dir / "tensorboard")
    history = read_history(run_dir)
    assert [r["iteration"] for r in history] == [4, 8, 12]
    expected = {
        "train/loss": "loss",
        "train/error": "error",
        "train/rate": "rate",
        "validation/error": "val_error",
        "schedule/lr": "lr",
        "schedule/noise_stage": "noise_stage",
        "schedule/noise_factor": "noise_factor",
    }
    for tag, key in expected.items():
        assert [step for step, _ in scalars[tag]] == [4, 8, 12], tag
        for (_, value), record in zip(scalars[tag], history, strict=True):
            assert value == pytest.approx(record[key], rel=1e-6), tag
    for size in ("1", "2"):
        got = [value for _, value in scalars[f"train/error_set_size_{size}"]]
        assert got == pytest.approx([r["per_set_size"][size]["error"] for r in history], rel=1e-6)
    # lr patience 1: the curriculum reached its second (final) stage
    assert scalars["schedule/noise_stage"][-1][1] == 1


def test_off_by_default_writes_no_events(tmp_path):
    run_dir = train(config("logging.tensorboard=false"), tmp_path)
    assert not (run_dir / "tensorboard").exists()
    assert Config.from_dict({}).logging.tensorboard is False


def test_requested_without_the_package_is_one_clear_line(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec

    def without_tensorboard(name, *args, **kwargs):
        return None if name == "tensorboard" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_tensorboard)
    with pytest.raises(
        ConfigError,
        match=r"^logging.tensorboard: true needs the tensorboard "
        r"package.*\[tensorboard\]",
    ) as info:
        train(config(), tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()

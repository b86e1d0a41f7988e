"""One noise stream per run, whatever the machine: ``training.random_numbers``.

A run resolves ``auto`` once (Philox on a CPU with the C kernels, else PyTorch's generator) and
records the source in ``config.yaml`` (hence in its checkpoints) and ``metrics.json``; a resume
keeps the recorded source on any machine, drawing Philox numbers with PyTorch integer ops where
the kernels are missing (``VWM_RNN_NATIVE=0``).
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import yaml
from agent_test_support import tiny_overrides

from vwm_agents import RunDirError, load_config, load_run, train
from vwm_agents.config import ConfigError
from vwm_agents.models import native, philox
from vwm_agents.models.noise import RandomStream, resolve_random_numbers
from vwm_agents.training.run import resolve_random_numbers as run_random_numbers

TINY = tiny_overrides(
    {
        "agent.spike_noise_factor": 0.3,
        "task.timing": {"init": 20, "stimulus": 50, "delay": 100, "decode": 50},
    }
)

needs_kernels = pytest.mark.skipif(
    native.kernels() is None, reason="the C kernels cannot be built here"
)


@pytest.fixture
def without_kernels(monkeypatch):
    """The process as on a machine without a C compiler (``VWM_RNN_NATIVE=0``)."""
    monkeypatch.setenv("VWM_RNN_NATIVE", "0")
    native.kernels.cache_clear()
    yield
    monkeypatch.undo()
    native.kernels.cache_clear()


def _config(*extra: str):
    return load_config(overrides=[*TINY, *extra])


def _weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["model"]


def _saved_source(run_dir) -> str:
    return yaml.safe_load((run_dir / "config.yaml").read_text())["training"]["random_numbers"]


@needs_kernels
def test_auto_is_recorded_in_config_checkpoint_and_metrics(tmp_path):
    run_dir = train(_config("training.num_iterations=2"), tmp_path)
    assert _saved_source(run_dir) == "philox"
    payload = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    assert payload["config"]["training"]["random_numbers"] == "philox"
    assert json.loads((run_dir / "metrics.json").read_text())["random_numbers"] == "philox"
    assert load_run(run_dir).model.random_numbers == "philox"


def test_auto_without_kernels_records_torch(tmp_path, without_kernels):
    run_dir = train(_config("training.num_iterations=1"), tmp_path)
    assert _saved_source(run_dir) == "torch"
    assert load_run(run_dir).model.random_numbers == "torch"


@needs_kernels
def test_resume_without_kernels_continues_the_recorded_stream(tmp_path, monkeypatch):
    whole = train(_config("training.num_iterations=4"), tmp_path / "whole")
    first = train(_config("training.num_iterations=2"), tmp_path / "split")
    other = train(
        _config("training.num_iterations=4", "training.random_numbers=torch"), tmp_path / "other"
    )
    monkeypatch.setenv("VWM_RNN_NATIVE", "0")
    native.kernels.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            resumed = train(_config("training.num_iterations=4"), tmp_path / "split", resume=True)
    finally:
        monkeypatch.undo()
        native.kernels.cache_clear()
    assert resumed == first and _saved_source(resumed) == "philox"
    assert any(philox.PORTABLE_WARNING in str(w.message) for w in caught)

    def losses(run_dir):
        return torch.tensor([record["loss"] for record in load_run(run_dir).rundir.read_history()])

    # The same numbers: the losses agree to float32 rounding (the eager ops round differently
    # from the C loops, and Adam's first steps turn a sign flip of a ~0 gradient into a
    # learning-rate-sized weight change, so weights are compared on average).
    torch.testing.assert_close(losses(resumed), losses(whole), rtol=1e-5, atol=0)
    assert float((losses(other) - losses(whole)).abs().max()) > 1e-2
    expected, got, switched = _weights(whole), _weights(resumed), _weights(other)
    for key in ("recurrent_weights", "input_weights", "readout_weights"):
        stream_gap = float((switched[key] - expected[key]).abs().mean())
        assert float((got[key] - expected[key]).abs().mean()) < stream_gap / 10, key


@needs_kernels
def test_resume_with_another_source_is_refused(tmp_path):
    train(_config("training.num_iterations=1"), tmp_path)
    with pytest.raises(RunDirError, match=r"different training\.random_numbers"):
        train(
            _config("training.num_iterations=2", "training.random_numbers=torch"),
            tmp_path,
            resume=True,
        )


def test_a_run_from_before_the_key_keeps_auto_on_resume(tmp_path):
    run_dir = train(_config("training.num_iterations=1"), tmp_path)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    del saved["training"]["random_numbers"]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved))
    assert run_random_numbers("auto", torch.device("cpu"), load_run(run_dir).rundir) == "auto"


def test_philox_is_refused_on_a_gpu():
    with pytest.raises(ConfigError, match=r"training\.random_numbers: philox .* CPU only"):
        run_random_numbers("philox", torch.device("cuda"))
    assert resolve_random_numbers("auto", "cuda") == "torch"


def test_portable_philox_draws_the_kernels_numbers(without_kernels):
    like = torch.empty(3, 50, dtype=torch.float32)
    portable = RandomStream(torch.Generator().manual_seed(5), "philox")
    with pytest.warns(RuntimeWarning, match="PyTorch integer ops"):
        normal = portable.normal(like)
    native.kernels.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VWM_RNN_NATIVE", "1")
        kernels = native.kernels()
        if kernels is None:
            pytest.skip("the C kernels cannot be built here")
        reference = RandomStream(torch.Generator().manual_seed(5), "philox").normal(like)
    native.kernels.cache_clear()
    torch.testing.assert_close(normal, reference)
    torched = RandomStream(torch.Generator().manual_seed(5), "torch").normal(like)
    assert not torch.allclose(normal, torched)


def test_bad_source_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"training\.random_numbers"):
        _config("training.random_numbers=mersenne")
    with pytest.raises(ConfigError, match=r"agent\.random_numbers: set training\.random_numbers"):
        train(_config("agent.random_numbers=torch"), tmp_path)

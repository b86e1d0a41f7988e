"""Resource limits checked before anything is built or written; out of memory during training.

The four sizes of issue 21 (each used to hang or end in a numpy traceback with a half-made run
directory) are refused within seconds with exit 2, one line naming the key, the estimate and what
the machine has, and nothing written; a config that fits trains. An allocation that fails during
training ends with one line naming the iteration and what to lower, the last good checkpoint
kept, and no half-made directory after a fresh start.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from agent_test_support import tiny_overrides

from vwm_agents import RunDir, RunDirError, TrainingOutOfMemory, load_config, train
from vwm_agents.training import resources
from vwm_agents.training.run import make_env
from vwm_agents.training.trainer import Trainer

SMALL = tiny_overrides({"training.num_iterations": 3})


def _cli(argv):
    from vwm_agents.train import main

    return main(argv)


@pytest.mark.parametrize(
    "setting, key",
    [
        ("agent.n_neurons=1000000000", "agent.n_neurons=1000000000"),
        ("task.max_items=1000000", "task.max_items=1000000"),
        ("training.batch_size=1000000000000", "training.batch_size=1000000000000"),
        ("training.eval_batch_size=10000000000", "training.eval_batch_size=10000000000"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_first(tmp_path, capsys, setting, key):
    out = tmp_path / "runs"
    start = time.monotonic()
    code = _cli(["--out", str(out), "--set", setting, "--no-progress"])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert key in err[0] and "needs about" in err[0] and "is available" in err[0], err[0]
    assert elapsed < 30
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_command_line_refuses_in_seconds(tmp_path):
    start = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vwm_agents.train",
            "--out",
            str(tmp_path / "o"),
            "--set",
            "agent.n_neurons=1000000000",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and time.monotonic() - start < 60
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_config_that_fits_trains(tmp_path):
    config = load_config(overrides=SMALL)
    estimate = resources.check_memory(config, make_env(config), "cpu")
    assert 0 < estimate.total < resources.available_memory("cpu")[0]
    assert estimate.n_steps > 0 and set(estimate.parts) >= {"weights", "training", "evaluation"}
    assert (train(config, tmp_path) / "metrics.json").is_file()


def test_the_estimate_grows_with_each_size():
    base = load_config(overrides=SMALL)
    total = resources.estimate_memory(base, make_env(base), "cpu").total
    for change in (
        "training.batch_size=400",
        "training.eval_batch_size=800",
        "agent.n_neurons=160",
        "training.num_models=3",
    ):
        config = load_config(overrides=[*SMALL, change])
        assert resources.estimate_memory(config, make_env(config), "cpu").total > total, change


def test_what_counts_as_out_of_memory():
    assert resources.is_out_of_memory(MemoryError())
    with pytest.raises(MemoryError) as caught:  # numpy's _ArrayMemoryError
        np.empty(2**62, dtype=np.uint8)
    assert resources.is_out_of_memory(caught.value)
    assert resources.is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert resources.is_out_of_memory(
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"
        )
    )
    assert not resources.is_out_of_memory(RuntimeError("shape mismatch"))
    if hasattr(torch.cuda, "OutOfMemoryError"):
        assert resources.is_out_of_memory(torch.cuda.OutOfMemoryError("x"))


def _fail_at(monkeypatch, iteration: int, error: BaseException) -> None:
    step = Trainer.step

    def failing(self):
        if self.iteration + 1 == iteration:
            raise error
        return step(self)

    monkeypatch.setattr(Trainer, "step", failing)


def test_out_of_memory_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    _fail_at(
        monkeypatch,
        3,
        RuntimeError(
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 80000000000 bytes"
        ),
    )
    code = _cli(
        ["--out", str(tmp_path), "--no-progress", *[a for s in SMALL for a in ("--set", s)]]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert "out of memory in iteration 3" in err[0] and "lower training.batch_size" in err[0]
    (run_dir,) = tmp_path.iterdir()
    assert RunDir(run_dir).load_checkpoint("latest")["iteration"] == 2
    assert "last good checkpoint" in err[0]


def test_out_of_memory_before_the_first_checkpoint_leaves_no_directory(tmp_path, monkeypatch):
    _fail_at(monkeypatch, 1, MemoryError("Unable to allocate 7.28 TiB"))
    with pytest.raises(TrainingOutOfMemory, match="out of memory in iteration 1"):
        train(load_config(overrides=SMALL), tmp_path / "new" / "runs")
    assert list(tmp_path.iterdir()) == []


def test_any_failure_of_a_fresh_start_leaves_no_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(
        Trainer,
        "begin",
        lambda self, payload: (_ for _ in ()).throw(OSError(28, "No space left on device")),
    )
    with pytest.raises(OSError, match="No space left"):
        train(load_config(overrides=SMALL), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_second_training_into_the_same_directory_is_refused(tmp_path):
    config = load_config(overrides=SMALL)
    holder = RunDir(tmp_path / "held")
    with holder.session(fresh=True):
        with pytest.raises(RunDirError, match="another training is writing"):
            with RunDir(tmp_path / "held").session(fresh=True):
                pass
    assert holder.path.is_dir()  # the refused second session removed nothing
    assert train(config, tmp_path)  # released: training goes on

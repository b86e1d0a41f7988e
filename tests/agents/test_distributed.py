"""One model on several processes (torchrun, gloo on the CPU): gradients, identical ranks,
rank-0-only writes, faults and exact resume. Each test launches real ``torchrun`` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from agent_test_support import TRAINED_RUN_FILES

from vwm_agents import load_config
from vwm_agents.training.run import resolve_run
from vwm_agents.training.trainer import Trainer

# Each test launches torchrun processes that train (seconds each, about 3 minutes in all).
pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("ddp_worker.py")
TINY = [
    "task.max_items=2",
    "task.set_sizes=[1, 2]",
    "training.batch_size=16",
    "training.eval_batch_size=16",
    "training.threads=1",
    "training.device=cpu",
    "logging.period=2",
    "logging.progress=false",
]


def one_thread_env() -> dict[str, str]:
    """This process's environment, one OpenMP thread per launched process (as torchrun sets)."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(
    *args: str, nproc: int = 2, timeout: float = 120, **kwargs
) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        *args,
    ]
    env = one_thread_env()
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )


def test_averaged_gradient_equals_the_gradient_on_the_union_of_the_batches(tmp_path):
    # Without spiking noise the forward pass is a function of the inputs alone, so the
    # single-process gradient on the two ranks' trials together is defined and comparable.
    overrides = [*TINY, "agent.n_neurons=16", "agent.spike_noise_type=none", "training.seed=3"]
    done = torchrun(str(WORKER), "gradient", str(tmp_path), *overrides)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert not torch.equal(ranks[0]["tensors"][0], ranks[1]["tensors"][0])  # own trials
    union = [torch.cat([ranks[0]["tensors"][i], ranks[1]["tensors"][i]]) for i in range(3)]
    run = resolve_run(load_config(overrides=overrides))
    trainer = Trainer(
        run.config,
        run.run_dir,
        run.env,
        run.model,
        run.device,
        discrete=run.discrete,
        final_noise=run.final_noise,
    )
    assert ranks[0]["readout_from"] == ranks[1]["readout_from"]
    loss, *_ = trainer.loss_step(*union, readout_from=ranks[0]["readout_from"])
    # the mean over 16 trials equals the mean of the two 8-trial means
    assert ranks[0]["summed_loss"] / 2 == pytest.approx(loss.item(), rel=1e-6)
    for rank in ranks:
        for averaged, param in zip(rank["grads"], trainer.loss_step.params, strict=True):
            scale = param.grad.abs().max().item() + 1e-12
            torch.testing.assert_close(averaged, param.grad, rtol=1e-5, atol=1e-6 * scale)


def _train_ranks(tmp_path: Path, name: str, *overrides: str, mode: str = "train"):
    if not any(o.startswith("agent.") for o in overrides):
        overrides = ("agent.n_neurons=16", *overrides)
    out = tmp_path / name
    done = torchrun(
        str(WORKER),
        mode,
        str(out / "results"),
        *TINY,
        f"logging.out_dir={tmp_path / 'runs'}",
        *overrides,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / "results" / f"rank{r}.pt") for r in range(2)]


SCHEDULES = (
    "training.noise_stages=2",
    "training.lr_patience=0",
    "training.early_stop_patience=1",
    "training.num_iterations=40",
)


@pytest.mark.parametrize("case", ["dale_rnn", "gru", "schedules"])
def test_a_two_rank_run_keeps_identical_parameters_and_only_rank_0_writes(tmp_path, case):
    # The Dale RNN on its fast path (hand-written backward, C kernels where built); the GRU
    # (autograd, no generator) stands for any other agent; "schedules": the noise curriculum,
    # learning-rate drops and early stopping fire within a few iterations, decided from the
    # all-reduced loss on every rank.
    agent = ("agent.n_neurons=16",)
    if case == "gru":
        gru = tmp_path / "gru.yaml"
        gru.write_text("agent: {name: gru, n_hidden: 16}\n")
        agent = (f"config={gru}", "agent.name=gru")
    lengths = SCHEDULES if case == "schedules" else ("training.num_iterations=5",)
    overrides = (*agent, "training.checkpoint_period=2", *lengths)
    ranks = _train_ranks(tmp_path, "a", *overrides)
    for mine, theirs in zip(ranks[0]["params"], ranks[1]["params"], strict=True):
        assert torch.equal(mine, theirs)
    assert ranks[1]["writes"] == []  # no file opened for writing, made, renamed or removed
    # The process group is gone once the training returns: a group kept alive past it dies
    # with the interpreter and now and then aborts a finished run (SIGABRT at exit).
    for rank in ranks:
        assert rank["gloo_threads"] in ([], None)
    (run_dir,) = (tmp_path / "runs").iterdir()
    names = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    assert names == TRAINED_RUN_FILES
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    latest = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)
    assert latest["distributed"]["world_size"] == 2
    assert len(latest["distributed"]["ranks"]) == 2
    if case == "schedules":
        assert history[-1]["noise_stage"] == 1  # the curriculum moved on
        assert history[-1]["lr"] < history[0]["lr"]
        assert latest["iteration"] < 40  # stopped early
    else:
        assert [record["iteration"] for record in history] == [2, 4, 5]  # each once


def test_a_resumed_two_rank_run_equals_an_uninterrupted_one(tmp_path):
    whole = tmp_path / "whole"
    first = _train_ranks(whole, "w", "training.num_iterations=6")
    split = tmp_path / "split"
    _train_ranks(split, "s1", "training.num_iterations=4")
    resumed = _train_ranks(split, "s2", "training.num_iterations=6", mode="resume")
    (a,) = (whole / "runs").iterdir()
    (b,) = (split / "runs").iterdir()
    assert (a / "history.jsonl").read_bytes() == (b / "history.jsonl").read_bytes()
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    for x, y in zip(first[0]["params"], resumed[0]["params"], strict=True):
        assert torch.equal(x, y)


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the worker of ``rank`` that the torchrun process ``launcher`` started."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == launcher and f"RANK={rank}".encode() in environ:
            return int(proc.name)
    return None


def _latest_iteration(run_dir: Path) -> int | None:
    latest = run_dir / "checkpoints" / "latest.pt"
    try:
        return int(torch.load(latest, weights_only=False)["iteration"])
    except (OSError, RuntimeError, EOFError, KeyError):
        return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc (Linux)")
def test_killing_one_rank_ends_the_job_with_one_line_and_a_resumable_checkpoint(tmp_path):
    out = tmp_path / "runs"
    train = ["-m", "vwm_agents.train", "--out", str(out)]
    overrides = [
        f"--set={o}"
        for o in (
            *TINY,
            "agent.n_neurons=48",
            "training.batch_size=64",
            "training.distributed_timeout_s=30",
        )
    ]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        *train,
        *overrides,
        "--set=training.num_iterations=100000",
    ]
    job = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=one_thread_env(),
    )
    try:
        run_dir, victim = None, None
        while victim is None:
            assert job.poll() is None, job.communicate()[1][-3000:]
            runs = list(out.glob("*")) if out.exists() else []
            if runs and _latest_iteration(runs[0]) is not None:
                run_dir, victim = runs[0], _rank_pid(job.pid, 1)
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        # ends on its own (a hang would run into this test's timeout), not by our hand
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    ours = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(ours) == 1, stderr[-3000:]
    assert "lost the other ranks" in ours[0] and "--resume" in ours[0]
    stopped_at = _latest_iteration(run_dir)
    assert stopped_at is not None  # the last good checkpoint loads
    final = f"--set=training.num_iterations={stopped_at + 4}"
    resumed = subprocess.run(
        [*command[:-1], final, "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
        env=one_thread_env(),
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole_out = tmp_path / "whole"
    whole = subprocess.run(
        [*command[:-1], final, "--out", str(whole_out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=one_thread_env(),
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    (reference,) = whole_out.iterdir()
    assert (run_dir / "history.jsonl").read_bytes() == (reference / "history.jsonl").read_bytes()
    assert (run_dir / "metrics.json").read_bytes() == (reference / "metrics.json").read_bytes()


def _cli(tmp_path: Path, *overrides: str, nproc: int | None = 2, resume: bool = False):
    args = ["-m", "vwm_agents.train", "--out", str(tmp_path / "runs"), "--no-progress"]
    args += [f"--set={o}" for o in (*TINY, "agent.n_neurons=16", *overrides)] + (
        ["--resume"] if resume else []
    )
    if nproc is None:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    return torchrun(*args, nproc=nproc, timeout=300)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("training.batch_size=0", "training.batch_size"),
        ("training.batch_size=15", "does not divide among 2 processes"),
        ("training.num_models=2", "cannot be combined with torchrun"),
    ],
)
def test_a_bad_config_is_reported_once_not_once_per_rank(tmp_path, override, says):
    done = _cli(tmp_path, override, "training.num_iterations=2")
    assert done.returncode != 0
    (line,) = _error_lines(done.stderr)
    assert says in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_resuming_on_another_number_of_processes_is_refused_in_one_line(tmp_path):
    assert _cli(tmp_path, "training.num_iterations=2").returncode == 0
    done = _cli(tmp_path, "training.num_iterations=4", nproc=None, resume=True)
    assert done.returncode == 2
    (line,) = _error_lines(done.stderr)
    assert "trained on 2 process(es) and is resumed on 1" in line


def test_two_launchers_meet_by_rendezvous_as_two_machines_would(tmp_path):
    # What `torchrun --nnodes=2 --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT` does on two
    # machines, here as two launchers on this one, one process each.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint=127.0.0.1:{port}",
        "--rdzv_id=vwm-test",
        "-m",
        "vwm_agents.train",
        "--out",
        str(tmp_path / "runs"),
        *[f"--set={o}" for o in (*TINY, "agent.n_neurons=16", "training.num_iterations=4")],
    ]
    env = one_thread_env()
    machines = [
        subprocess.Popen(
            launcher, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outputs = [machine.communicate(timeout=300) for machine in machines]
    assert [machine.returncode for machine in machines] == [0, 0], outputs[0][1][-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    latest = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)
    assert latest["distributed"]["world_size"] == 2
    assert sum(bool(out.strip()) for out, _ in outputs) == 1  # one rank 0 printed the run

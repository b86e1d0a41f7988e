"""More bad input (issue 21): resource sizes, unwritable or full output folders, checkpoints of
another layout version, foreign code in a run directory, Ctrl-C while a checkpoint is written,
and two trainings into one run directory.

The cases of :data:`CASES` are held to the rule of ``test_bad_inputs.py`` (exit 2, one line
naming the place, no traceback, nothing created or changed in the folder); the tests after them
check what they cannot express as one command (a second process, a signal) by the same
standard: one clear line, and nothing lost.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from test_bad_inputs import (
    TINY,
    TINY_SET,
    Case,
    _analysis,
    _copy_run,
    _sweep,
    _train,
    _write,
    check_case,
    option,
    resume_case,
    run_case,
    tiny_run,  # noqa: F401 (the fixture: a finished tiny run)
)

from vwm_agents import RunDir, load_run

# -- resource sizes: refused before anything is built, in seconds ------------------------------------

SIZES = [
    option(
        "n-neurons-1e9",
        ["--set", "agent.n_neurons=1000000000"],
        "agent.n_neurons=1000000000",
        "is available",
    ),
    option("n-neurons-1e7", ["--set", "agent.n_neurons=10000000"], "agent.n_neurons=10000000"),
    option(
        "batch-1e12",
        ["--set", "training.batch_size=1000000000000"],
        "training.batch_size=1000000000000",
    ),
    option(
        "eval-batch-1e10",
        ["--set", "training.eval_batch_size=10000000000"],
        "training.eval_batch_size=10000000000",
    ),
    option(
        "num-models-1e9",
        ["--set", "training.num_models=1000000000"],
        "training.num_models=1000000000",
    ),
    option("num-models-option-1e9", ["--num-models", "1000000000"], "needs about"),
    option("delay-1e9", ["--set", "task.timing.delay=1000000000"], "task.timing", "needs about"),
    option(
        "neurons-and-batch",
        ["--set", "agent.n_neurons=8192", "--set", "training.batch_size=100000"],
        "needs about",
        "is available",
    ),
    option(
        "eval-and-neurons",
        ["--set", "agent.n_neurons=4096", "--set", "training.eval_batch_size=10000000"],
        "training.eval_batch_size",
    ),
    option(
        "random-numbers-word",
        ["--set", "training.random_numbers=mersenne"],
        "training.random_numbers",
        "'mersenne'",
    ),
    option(
        "random-numbers-list",
        ["--set", "training.random_numbers=[philox]"],
        "training.random_numbers",
    ),
    option(
        "agent-random-numbers",
        ["--set", "agent.random_numbers=torch"],
        "agent.random_numbers: set training.random_numbers instead",
    ),
]


def sweep_sizes(name: str, key: str, values: list) -> Case:
    def make(folder: Path, _run: Path) -> list[str]:
        tiny = {k: v for k, v in TINY.items() if k != "logging.run_name"}
        data = {
            "base": "default",
            "set": {**tiny, "training.device": "cpu"},
            "grid": {key: values},
            "output": str(folder / "out"),
        }
        return [str(_write(folder, "sweep.yaml", yaml.safe_dump(data)))]

    return Case(f"sweep-{name}", _sweep, make, (key,))


SWEEP_SIZES = [
    sweep_sizes("n-neurons-1e9", "agent.n_neurons", [8, 1000000000]),
    sweep_sizes("batch-1e12", "training.batch_size", [4, 1000000000000]),
]


# -- output folders that cannot be written ----------------------------------------------------------


def _mount_tmpfs(folder: Path, options: str) -> Path:
    """A small tmpfs at ``folder/name`` (unmounted by :func:`_unmount_all` after the test)."""
    target = folder / "disk"
    target.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        target.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not permitted'})")
    return target


def out_case(name: str, out: Callable[[Path], Path], *says: str, extra: tuple = ()) -> Case:
    def make(folder: Path, _run: Path) -> list[str]:
        return ["--out", str(out(folder)), "--device", "cpu", "--no-progress", *TINY_SET, *extra]

    return Case(f"out-{name}", _train, make, says)


def _file(folder: Path) -> Path:
    return _write(folder, "a_file.txt", "not a folder\n")


OUTPUTS = [
    out_case(
        "read-only-tmpfs",
        lambda folder: _mount_tmpfs(folder, "ro,size=64k") / "runs",
        "Read-only file system",
    ),
    out_case(
        "read-only-tmpfs-itself",
        lambda folder: _mount_tmpfs(folder, "ro,size=64k"),
        "Read-only file system",
    ),
    out_case(
        "full-tmpfs",
        lambda folder: _mount_tmpfs(folder, "size=16k") / "runs",
        "No space left on device",
        extra=("--set", "agent.n_neurons=48"),
    ),
    out_case("is-a-file", _file, "a_file.txt"),
    out_case(
        "under-a-file", lambda folder: _file(folder) / "runs", "a_file.txt", "Not a directory"
    ),
    out_case("name-too-long", lambda folder: folder / ("x" * 300), "File name too long"),
    out_case(
        "run-name-too-long",
        lambda folder: folder / "runs",
        "File name too long",
        extra=("--set", f"logging.run_name={'r' * 250}"),
    ),
]


def _read_only_copy(folder: Path, run_dir: Path) -> None:
    """The run on a tmpfs remounted read-only, in ``folder/out``."""
    disk = _mount_tmpfs(folder, "size=4m")
    shutil.copytree(run_dir, disk / run_dir.name)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    (folder / "out").symlink_to(disk)


def _resume_read_only(folder: Path, run_dir: Path) -> list[str]:
    _read_only_copy(folder, run_dir)
    return [
        "--out",
        str(folder / "out"),
        "--device",
        "cpu",
        "--no-progress",
        "--resume",
        *TINY_SET,
        "--set",
        "training.num_iterations=4",
    ]


# -- checkpoints and run directories of another layout, or naming foreign code -----------------------


def _rewrite(kind: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / "checkpoints" / f"{kind}.pt"
        payload = torch.load(path, weights_only=True)
        replaced = change(payload)
        torch.save(payload if replaced is None else replaced, path)

    return damage


def _set(key: str, value) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        payload[key] = value

    return change


def _drop(key: str) -> Callable[[dict], None]:
    return lambda payload: payload.pop(key) and None


def _with_object(payload: dict) -> dict:
    """A payload holding an arbitrary Python object (a pickle that could run code)."""
    import argparse

    return {**payload, "extra": argparse.Namespace(x=1)}


def _saved_agent(name: str) -> Callable[[dict], None]:
    def change(payload: dict) -> None:
        payload["config"]["agent"]["name"] = name

    return change


def _config_yaml(section: str, key: str, value) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        data = yaml.safe_load((run / "config.yaml").read_text())
        data[section][key] = value
        (run / "config.yaml").write_text(yaml.safe_dump(data))

    return damage


def _legacy_history(run: Path) -> None:
    (run / "history.jsonl").unlink()
    (run / "history.yaml").write_text("- {iteration: 1\n")


def _other_random_numbers(run: Path) -> None:
    """Nothing to damage; the case asks the resume for the source the run did not record."""


def _recorded_source(run_dir: Path) -> str:
    return yaml.safe_load((run_dir / "config.yaml").read_text())["training"]["random_numbers"]


LAYOUTS = [
    resume_case(
        "latest-version-2", _rewrite("latest", _set("version", 2)), "latest.pt", "format version 2"
    ),
    resume_case(
        "latest-version-missing",
        _rewrite("latest", _drop("version")),
        "latest.pt",
        "format version None",
    ),
    resume_case(
        "latest-format-other",
        _rewrite("latest", _set("format", "other-tool")),
        "latest.pt",
        "not a vwm-rnn checkpoint",
    ),
    resume_case(
        "latest-kind-best",
        _rewrite("latest", _set("kind", "best")),
        "latest.pt",
        "'best' checkpoint",
    ),
    resume_case(
        "latest-no-model", _rewrite("latest", _drop("model")), "latest.pt", "no model weights"
    ),
    resume_case(
        "latest-no-optimizer",
        _rewrite("latest", _drop("optimizer")),
        "latest.pt",
        "incomplete or inconsistent training state",
    ),
    resume_case(
        "latest-config-list", _rewrite("latest", _set("config", [1, 2])), "saved config is invalid"
    ),
    resume_case(
        "latest-pickled-object",
        _rewrite("latest", _with_object),
        "latest.pt",
        "objects other than tensors",
    ),
    resume_case(
        "latest-foreign-agent",
        _rewrite("latest", _saved_agent("evil.module:Agent")),
        "different agent.name",
        "not imported",
    ),
    resume_case("legacy-history-corrupt", _legacy_history, "history.yaml", "corrupt history"),
    resume_case(
        "history-corrupt-middle",
        lambda run: (run / "history.jsonl").write_text('{garbage\n{"iteration": 2}\n'),
        "history.jsonl",
        "line 1",
    ),
    resume_case(
        "checkpoints-is-a-file",
        lambda run: (
            (shutil.rmtree(run / "checkpoints"), (run / "checkpoints").write_text("x")) and None
        ),
        "checkpoints",
    ),
    run_case("best-version-2", _rewrite("best", _set("version", 2)), "best.pt", "format version 2"),
    run_case(
        "best-pickled-object",
        _rewrite("best", _with_object),
        "best.pt",
        "objects other than tensors",
    ),
    run_case(
        "foreign-agent",
        _config_yaml("agent", "name", "evil.module:Agent"),
        "agent.name",
        "--trust-code",
    ),
    run_case(
        "foreign-task", _config_yaml("task", "id", "evil.envs:Env-v0"), "task.id", "--trust-code"
    ),
    run_case(
        "config-is-a-directory",
        lambda run: ((run / "config.yaml").unlink(), (run / "config.yaml").mkdir()) and None,
        "config.yaml",
    ),
    Case(
        "run-dir-is-a-file",
        _analysis,
        lambda folder, _run: [str(_write(folder, "run.txt", "x")), "--no-progress"],
        ("run.txt",),
    ),
    Case("resume-read-only", _train, _resume_read_only, ("Read-only file system",)),
]

CASES = [*SIZES, *SWEEP_SIZES, *OUTPUTS, *LAYOUTS]


def test_there_are_at_least_40_new_cases_and_their_names_are_unique():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.fixture
def unmount_after(tmp_path):
    yield
    for disk in sorted(tmp_path.glob("**/disk"), reverse=True):
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_new_bad_input_exits_2_with_one_line_and_writes_nothing(
    case,
    tiny_run,
    tmp_path,
    capsys,
    monkeypatch,
    unmount_after,
):
    start = time.monotonic()
    check_case(case, tiny_run, tmp_path, capsys, monkeypatch)
    assert time.monotonic() - start < 60  # refused in seconds, not after a hang


def test_resume_asking_for_another_noise_source_is_refused(
    tiny_run,
    tmp_path,
    capsys,
    monkeypatch,
):
    other = {"philox": "torch", "torch": "philox"}[_recorded_source(tiny_run)]
    case = resume_case(
        "other-random-numbers",
        _other_random_numbers,
        "training.random_numbers",
        extra=("--set", f"training.random_numbers={other}"),
    )
    check_case(case, tiny_run, tmp_path, capsys, monkeypatch)


# -- two trainings into one run directory ------------------------------------------------------------


def _cli_command(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vwm_agents.train",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
        *TINY_SET,
        *extra,
    ]


def test_a_second_training_into_the_same_run_directory_gets_one_line(tmp_path):
    out = tmp_path / "out"
    # The first run is far longer than the test (it is stopped with Ctrl-C below), so that it
    # still runs when the second starts, however slow the machine.
    first = subprocess.Popen(
        _cli_command(out, "--set", "training.num_iterations=1000000"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*/config.yaml")):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.2)
        second = subprocess.run(
            _cli_command(out, "--set", "training.num_iterations=400"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert first.poll() is None, "the first training ended before the second tried"
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert len(second.stderr.splitlines()) == 1, second.stderr
        assert "another training is writing" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)  # Ctrl-C: the first run saves and stops
        _, err = first.communicate(timeout=120)
    assert first.returncode in (0, 130, -signal.SIGINT), err
    (run_dir,) = out.iterdir()
    payload = RunDir(run_dir).load_checkpoint("latest")  # the first run lost nothing
    assert payload["iteration"] >= 1 and (run_dir / "config.yaml").is_file()


def test_a_resume_while_another_training_holds_the_run_is_refused(
    tiny_run,
    tmp_path,
    capsys,
    monkeypatch,
):
    folder = tmp_path / "work"
    folder.mkdir()
    target = _copy_run(folder, tiny_run)
    with RunDir(target).session(fresh=False):
        code = _train(
            [
                "--out",
                str(folder / "out"),
                "--no-progress",
                "--resume",
                *TINY_SET,
                "--set",
                "training.num_iterations=4",
            ]
        )
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and "another training is writing" in err[0], err
    assert RunDir(target).load_checkpoint("latest")["iteration"] == 2


# -- Ctrl-C while a checkpoint is written ------------------------------------------------------------


def _interrupting_saves(monkeypatch, on_call: int, interrupt: Callable[[], None]) -> None:
    """``interrupt()`` inside the ``on_call``-th checkpoint write, once its temporary file is
    written and before it replaces the checkpoint (at its ``fsync``)."""
    calls = {"n": 0}
    fsync = os.fsync

    def interrupted_fsync(fd: int) -> None:
        fsync(fd)
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".pt.tmp"):
            calls["n"] += 1
            if calls["n"] == on_call:
                interrupt()

    monkeypatch.setattr(os, "fsync", interrupted_fsync)


def _train_tiny(out: Path, *extra: str) -> int:
    return _train(
        [
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-progress",
            *TINY_SET,
            "--set",
            "training.num_iterations=6",
            "--set",
            "logging.period=1",
            *extra,
        ]
    )


def test_ctrl_c_during_a_checkpoint_write_finishes_the_write_and_stops(
    tmp_path, monkeypatch, capsys
):
    _interrupting_saves(monkeypatch, 3, lambda: os.kill(os.getpid(), signal.SIGINT))
    assert _train_tiny(tmp_path) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert "interrupted after iteration" in err[-1] and "Traceback" not in "".join(err), err
    (run_dir,) = tmp_path.iterdir()
    assert not list(run_dir.glob("checkpoints/.*.tmp"))
    stopped = RunDir(run_dir).load_checkpoint("latest")["iteration"]
    monkeypatch.undo()
    assert _train_tiny(tmp_path, "--resume") == 0
    assert RunDir(run_dir).load_checkpoint("latest")["iteration"] == 6 > stopped


def test_a_second_ctrl_c_during_a_checkpoint_write_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, capsys
):
    def second_ctrl_c() -> None:
        raise KeyboardInterrupt

    _interrupting_saves(monkeypatch, 3, second_ctrl_c)
    assert _train_tiny(tmp_path) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "continue with --resume" in err[-1], err
    (run_dir,) = tmp_path.iterdir()
    assert not list(run_dir.glob("checkpoints/.*.tmp"))  # the half-written file is gone
    kept = RunDir(run_dir).load_checkpoint("latest")  # the previous one, complete
    monkeypatch.undo()
    assert _train_tiny(tmp_path, "--resume") == 0
    assert RunDir(run_dir).load_checkpoint("latest")["iteration"] == 6 > kept["iteration"]


def test_ctrl_c_during_the_first_checkpoint_write_leaves_no_directory(
    tmp_path, monkeypatch, capsys
):
    def second_ctrl_c() -> None:
        raise KeyboardInterrupt

    _interrupting_saves(monkeypatch, 1, second_ctrl_c)
    assert _train_tiny(tmp_path / "runs") == 130
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    assert load_run  # the public loader stays importable after the interrupted run

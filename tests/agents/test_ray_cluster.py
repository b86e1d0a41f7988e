"""Sweeps on a real Ray cluster: a head started with ``ray start --head --block`` (token
authentication on, its own temp dir and home), and sweeps joining it with ``--address``.

The head is started once for the module and stopped by its own process id. Each sweep runs as a
separate ``python -m vwm_agents.sweep`` process, as a user would run it, so that Ray's
authentication settings (read from the environment) are those of that process alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

from agent_test_support import read_csv, write_sweep

from vwm_agents import sweep as sw  # noqa: E402
from vwm_agents.sweep.runner import CONNECT_TIMEOUT_S  # noqa: E402

pytestmark = pytest.mark.slow  # trains models or starts Ray: minutes of the suite

HEAD_START_S = 120  # how long the head may take to answer on a busy machine
SWEEP_S = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Ray address or authentication setting."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    }
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


@contextlib.contextmanager
def ray_head(mode: str) -> Iterator[dict]:
    """A one-node Ray cluster started with ``ray start --head --block`` and ``RAY_AUTH_MODE=mode``,
    in its own temp dir and home; with tokens, the token is in that home's default token file
    (where ``ray get-auth-token --generate`` puts it). Stopped by its own process id."""
    if shutil.which("ray") is None:
        pytest.skip("the ray command is not installed")
    # short: Ray's unix sockets live under it (paths of at most 107 bytes)
    base = Path(tempfile.mkdtemp(prefix="vwmray", dir="/tmp"))
    home = base / "home"
    (home / ".ray").mkdir(parents=True)
    token = secrets.token_hex(32)
    if mode == "token":
        (home / ".ray" / "auth_token").write_text(token)
    port = free_port()
    env = clean_env(HOME=str(home), RAY_TMPDIR=str(base), RAY_AUTH_MODE=mode)
    log = (base / "head.log").open("w")
    head = subprocess.Popen(
        [
            "ray",
            "start",
            "--head",
            f"--port={port}",
            "--block",
            "--num-cpus=2",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HEAD_START_S
        while True:
            if head.poll() is not None:
                pytest.fail(
                    f"ray start exited ({head.returncode}): "
                    f"{(base / 'head.log').read_text()[-2000:]}"
                )
            try:
                auth = sw.check_cluster(address, timeout=2)
                break
            except sw.SweepError as exc:
                if "token" in str(exc):  # it answers, and wants a token
                    auth = None
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not answer in {HEAD_START_S} s")
            time.sleep(1)
        assert (auth is None) == (mode == "token")  # the head refuses a driver without a token
        yield {"address": address, "token": token, "home": home, "base": base, "port": port}
    finally:
        # `ray start --block` stops the processes it started when it is stopped
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    """A cluster with token authentication, for the module."""
    with ray_head("token") as head:
        yield head


def run_sweep_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vwm_agents.sweep", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SWEEP_S,
    )


def test_sweep_on_a_token_cluster_finishes_and_resumes(cluster, tmp_path):
    path = write_sweep(
        tmp_path, grid={"agent.spike_noise_factor": [0.05, 0.2], "training.seed": [0]}
    )
    spec = sw.load_sweep(path)
    # the driver finds the token where the head put it: the default token file of its home
    done = run_sweep_cli(
        [str(path), "--address", cluster["address"], "--quiet"],
        clean_env(HOME=str(cluster["home"])),
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "InvalidAuthToken" not in done.stderr
    rows = read_csv(spec.output / sw.RESULTS_CSV)
    assert [row["trial"] for row in rows] == [plan.name for plan in spec.trials]
    for row, plan in zip(rows, spec.trials, strict=True):
        metrics = json.loads((plan.run_dir / "metrics.json").read_text())
        assert row["status"] == "ok", row["message"]
        assert row["checkpoint"] == metrics["checkpoint"]
        assert int(row["checkpoint_iteration"]) == metrics["iteration"]
        assert float(row["error"]) == metrics["error"]
        assert float(row["rate"]) == metrics["rate"]
        for size in ("1", "2"):
            assert float(row[f"error_ss{size}"]) == metrics["per_set_size"][size]["error"]

    # --resume on the same cluster, now with the token in $RAY_AUTH_TOKEN (home elsewhere): the
    # finished trial is skipped, the lost one runs again
    lost = spec.trials[1].run_dir
    shutil.rmtree(lost)
    kept = spec.trials[0].run_dir / "metrics.json"
    before = kept.stat().st_mtime_ns
    home = tmp_path / "driver_home"
    home.mkdir()
    done = run_sweep_cli(
        [str(path), "--address", cluster["address"], "--quiet", "--resume"],
        clean_env(HOME=str(home), RAY_AUTH_TOKEN=cluster["token"]),
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert kept.stat().st_mtime_ns == before
    assert (lost / "metrics.json").is_file()
    assert [row["status"] for row in read_csv(spec.output / sw.RESULTS_CSV)] == ["ok", "ok"]


def test_check_cluster_finds_the_token_where_ray_reads_it(cluster, tmp_path, monkeypatch):
    for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no default token file
    with pytest.raises(sw.SweepError, match="this machine has no token"):
        sw.check_cluster(cluster["address"])
    token_file = tmp_path / "token"
    token_file.write_text(cluster["token"] + "\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    assert sw.check_cluster(cluster["address"]).mode == "token"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "wrong")  # the variable comes before the file, as in Ray
    with pytest.raises(
        sw.SweepError, match="rejected the authentication token from RAY_AUTH_TOKEN;"
    ):
        sw.check_cluster(cluster["address"])


def test_a_wrong_token_ends_in_one_line_naming_what_to_set(cluster, tmp_path):
    path = write_sweep(tmp_path, grid={"training.seed": [0]})
    home = tmp_path / "driver_home"
    home.mkdir()
    done = run_sweep_cli(
        [str(path), "--address", cluster["address"], "--quiet"],
        clean_env(HOME=str(home), RAY_AUTH_TOKEN="not-the-token"),
        tmp_path,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"error: --address {cluster['address']}: the cluster rejected the "
        "authentication token from RAY_AUTH_TOKEN"
    )
    assert "RAY_AUTH_TOKEN_PATH" in lines[0] and "~/.ray/auth_token" in lines[0]
    assert not (tmp_path / "out").exists()
    # no token at all: the same, saying there is none
    done = run_sweep_cli(
        [str(path), "--address", cluster["address"], "--quiet"], clean_env(HOME=str(home)), tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "this machine has no token" in done.stderr


def test_an_unreachable_address_fails_in_one_line(tmp_path):
    path = write_sweep(tmp_path, grid={"training.seed": [0]})
    port = free_port()  # nothing listens there
    done = run_sweep_cli(
        [str(path), "--address", f"127.0.0.1:{port}", "--quiet"], clean_env(), tmp_path
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"error: --address 127.0.0.1:{port}: cannot reach 127.0.0.1:{port} "
        f"within {CONNECT_TIMEOUT_S:g} s (Connection refused); is `ray start "
        f"--head --port={port}` running there and the port open?\n"
    )
    assert not (tmp_path / "out").exists()


def test_sweep_on_a_cluster_without_authentication(tmp_path):
    """A driver that has a token (here in $RAY_AUTH_TOKEN) still joins a cluster that wants none:
    it takes the cluster's mode, not its own."""
    with ray_head("disabled") as head:
        assert sw.check_cluster(head["address"]).mode == "disabled"
        path = write_sweep(tmp_path, grid={"training.seed": [0]})
        done = run_sweep_cli(
            [str(path), "--address", head["address"], "--quiet"],
            clean_env(HOME=str(head["home"]), RAY_AUTH_TOKEN="unused"),
            tmp_path,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = read_csv(tmp_path / "out" / sw.RESULTS_CSV)
    plan = sw.load_sweep(path).trials[0]
    assert row["status"] == "ok"
    assert float(row["error"]) == json.loads((plan.run_dir / "metrics.json").read_text())["error"]

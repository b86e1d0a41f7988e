"""``python -m vwm_agents.train``: exit codes, one-line errors, nothing written on a bad config."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from vwm_agents.train import main

TINY_SET = [
    "--set",
    "task.max_items=2",
    "--set",
    "task.timing={init: 20, stimulus: 50, delay: 50, decode: 50}",
    "--set",
    "agent.n_neurons=8",
    "--set",
    "training.num_iterations=4",
    "--set",
    "training.batch_size=4",
    "--set",
    "training.eval_batch_size=8",
    "--set",
    "training.threads=1",
    "--set",
    "logging.period=2",
    "--set",
    "logging.run_name=cli",
]


def test_train_resume_and_refuse_overwrite(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["--out", str(out), "--device", "cpu", "--no-progress", *TINY_SET]) == 0
    run_dir = out / "cli_n8item2PI1gamma0.05rad"
    assert capsys.readouterr().out.strip() == str(run_dir)
    assert json.loads((run_dir / "metrics.json").read_text())["checkpoint"] == "best"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["training"]["device"] == "cpu"

    assert main(["--out", str(out), "--device", "cpu", "--no-progress", *TINY_SET]) == 2
    assert "exists; continue it with --resume" in capsys.readouterr().err

    more = [*TINY_SET, "--set", "training.num_iterations=6"]
    assert main(["--out", str(out), "--device", "cpu", "--no-progress", "--resume", *more]) == 0
    from vwm_agents.training.rundir import read_history

    assert [r["iteration"] for r in read_history(run_dir)] == [2, 4, 6]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "training.learning_rate=-1"],
            "error: training.learning_rate: must be a positive number, got -1",
        ),
        (
            ["--set", "agent.neurons=3"],
            "error: agent.neurons: unknown argument of dale_rnn; allowed:",
        ),
        (
            ["--num-models", "0"],
            "error: --num-models (training.num_models): must be an integer >= 1",
        ),
        (["--num-models", "two"], "error: argument --num-models: invalid int value: 'two'"),
        (
            ["--device", "tpu"],
            "error: --device (training.device): must be one of auto, cpu, cuda, cuda:<index>, got 'tpu'",
        ),
        (["--out", ""], "error: --out (logging.out_dir): must be a non-empty string, got ''"),
        (["--bogus"], "error: unrecognized arguments: --bogus"),
        (["--set", "task.timing={stimulus: 0}"], "error: task.timing: "),
        (["--config", "missing.yaml"], "error: config: cannot read missing.yaml"),
        (["--resume"], "error: "),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "runs"
    assert main(["--out", str(out), "--no-progress", *TINY_SET, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert err.count("\n") == 1
    assert not out.exists()


def test_original_format_config_file(tmp_path, capsys):
    original = {
        "model_params": {
            "max_item_num": 2,
            "num_neurons": 8,
            "T_init": 20,
            "T_stimi": 50,
            "T_delay": 50,
            "T_decode": 50,
            "spike_noise_type": "none",
        },
        "training_params": {"num_iterations": 2, "num_trials": 4, "logging_period": 2},
        "model_and_logging_params": {"rnn_name": "orig"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(original))
    out = tmp_path / "runs"
    assert (
        main(
            [
                "--config",
                str(path),
                "--out",
                str(out),
                "--no-progress",
                "--set",
                "training.eval_batch_size=8",
                "--set",
                "training.threads=1",
            ]
        )
        == 0
    )
    run_dir = out / "orig_n8item2PI1none0.05rad"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["agent"]["n_neurons"] == 8 and saved["training"]["grad_clip"] is None


def test_module_entry_point_exit_code(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vwm_agents.train",
            "--out",
            str(tmp_path / "runs"),
            "--set",
            "training.batch_size=zero",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "error: training.batch_size: must be an integer >= 1, got 'zero'\n"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("out", ["runs #1", "2024"])
def test_out_is_taken_as_written(tmp_path, monkeypatch, capsys, out):
    """Issue 11 item 10: --out is a typed value, not YAML ("runs #1" is not "runs", 2024 a name)."""
    monkeypatch.chdir(tmp_path)
    assert main(["--out", out, "--device", "cpu", "--no-progress", *TINY_SET]) == 0
    run_dir = tmp_path / out / "cli_n8item2PI1gamma0.05rad"
    assert (run_dir / "metrics.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [out]  # nothing in runs/ or elsewhere
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["logging"]["out_dir"] == out


@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="cuda:1 exists here")
def test_device_index_is_accepted_and_a_missing_device_is_one_line(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["--out", str(out), "--device", "cuda:1", "--no-progress", *TINY_SET]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --device (training.device): cuda:1 requested but "), err
    assert err.count("\n") == 1
    assert not out.exists()


def test_help_names_the_defaults(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "configs/default.yaml" in text and "reference model's values" in text

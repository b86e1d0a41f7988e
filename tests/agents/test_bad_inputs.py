"""Bad input, everywhere a user can give it: exit 2, one line naming the place and the key, nothing written.

Each case builds one bad input in a fresh folder (a config file in our schema or the original
format, a ``--set`` value or command-line option, a sweep file, a CSV file for
``python -m analysis.fit_table``, a truncated or foreign checkpoint or run directory for
``python -m analysis`` and ``--resume``) and runs the command line in-process (``main(argv)``),
a few also as a subprocess. Every case must end with exit status 2, exactly one line on stderr
that contains the place (file, key or option) as the user wrote it, no traceback, and no file
created or changed anywhere in the folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

TINY = {
    "task.max_items": 2,
    "task.timing": {"init": 20, "stimulus": 50, "delay": 50, "decode": 50},
    "agent.n_neurons": 8,
    "training.num_iterations": 2,
    "training.batch_size": 4,
    "training.eval_batch_size": 8,
    "training.threads": 1,
    "logging.period": 2,
    "logging.run_name": "fuzz",
}
TINY_SET = [
    arg
    for key, value in TINY.items()
    for arg in ("--set", f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}")
]
TINY_CONFIG = {
    "task": {"max_items": 2, "timing": TINY["task.timing"]},
    "agent": {"n_neurons": 8},
    "training": {"num_iterations": 2, "batch_size": 4, "eval_batch_size": 8, "threads": 1},
    "logging": {"period": 2, "run_name": "fuzz", "progress": False},
}
ORIGINAL = {
    "model_params": {
        "max_item_num": 2,
        "item_num": [1, 2],
        "num_neurons": 8,
        "dt": 10,
        "T_init": 20,
        "T_stimi": 50,
        "T_delay": 50,
        "T_decode": 50,
    },
    "training_params": {"num_iterations": 2, "num_trials": 4, "eta": 0.0001, "logging_period": 2},
    "model_and_logging_params": {"rnn_name": "fuzz", "cuda_device": 0},
    "fpf_params": {"fpf_bool": False},
}


def _train(argv):
    from vwm_agents.train import main

    return main(argv)


def _sweep(argv):
    from vwm_agents.sweep import main

    return main(argv)


def _analysis(argv):
    from analysis.__main__ import main

    return main(argv)


def _fit(argv):
    from analysis.fit_table import main

    return main(argv)


@dataclass(frozen=True)
class Case:
    """One bad input: ``make(folder, run_dir)`` writes it and returns the CLI's argv."""

    name: str
    cli: Callable[[list[str]], int]
    make: Callable[[Path, Path], list[str]]
    says: tuple[str, ...]  # what the one line must contain: the place and the key as written


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _merge(base: dict, changes: dict) -> dict:
    out = {section: dict(body) for section, body in base.items()}
    for section, body in changes.items():
        if isinstance(body, dict) and isinstance(out.get(section), dict):
            out[section].update(body)
        else:
            out[section] = body
    return out


# -- configs in our schema ------------------------------------------------------------------------


def ours(name: str, changes: dict, *says: str, drop: tuple[str, ...] = ()) -> Case:
    """``TINY_CONFIG`` with ``changes`` merged in and the dotted keys ``drop`` left out."""

    def make(folder: Path, _run: Path) -> list[str]:
        data = _merge(TINY_CONFIG, changes)
        for key in drop:
            section, name = key.split(".")
            del data[section][name]
        path = _write(folder, "cfg.yaml", yaml.safe_dump(data))
        return ["--config", str(path), "--out", str(folder / "out"), "--device", "cpu"]

    return Case(f"ours-{name}", _train, make, says)


def ours_text(name: str, file_name: str, text: str | bytes, *says: str) -> Case:
    def make(folder: Path, _run: Path) -> list[str]:
        path = _write(folder, file_name, text)
        return ["--config", str(path), "--out", str(folder / "out")]

    return Case(f"ours-{name}", _train, make, says)


OUR_CONFIGS = [
    ours("lr-negative", {"training": {"learning_rate": -1}}, "training.learning_rate", "got -1"),
    ours("lr-string", {"training": {"learning_rate": "fast"}}, "training.learning_rate", "'fast'"),
    ours("batch-float", {"training": {"batch_size": 2.5}}, "training.batch_size"),
    ours("error-def", {"training": {"error_def": "l1"}}, "training.error_def", "'l1'"),
    ours("device", {"training": {"device": "tpu"}}, "training.device", "cuda:<index>"),
    ours(
        "early-stop-zero", {"training": {"early_stop_patience": 0}}, "training.early_stop_patience"
    ),
    ours("section-list", {"training": [1, 2]}, "training: must be a mapping"),
    ours("unknown-section", {"optimizer": {"lr": 1}}, "optimizer: unknown section"),
    ours("unknown-key", {"training": {"lr": 0.1}}, "training.lr: unknown key"),
    ours("agent-name", {"agent": {"name": "lstm"}}, "agent.name", "'lstm'"),
    ours("agent-import", {"agent": {"name": "no_such_pkg:Agent"}}, "agent.name", "no_such_pkg"),
    ours("agent-kwarg", {"agent": {"neurons": 3}}, "agent.neurons: unknown argument"),
    ours("agent-type", {"agent": {"n_neurons": "many"}}, "agent.n_neurons", "'many'"),
    ours("agent-value", {"agent": {"n_neurons": -5}}, "agent.n_neurons", "-5"),
    ours("agent-noise", {"agent": {"spike_noise_type": "pink"}}, "agent.spike_noise_type", "pink"),
    ours("task-id", {"task": {"id": "NoSuchTask-v9"}}, "task.id", "NoSuchTask-v9"),
    ours("task-kwarg", {"task": {"items": 3}}, "task.items: unknown argument"),
    ours("task-set-sizes", {"task": {"set_sizes": [1, 2, 11]}}, "task.set_sizes", "11"),
    ours("task-timing", {"task": {"timing": {"stimulus": 0}}}, "task.timing"),
    ours("run-name", {"logging": {"run_name": "../x"}}, "logging.run_name", "'../x'"),
    ours("tensorboard", {"logging": {"tensorboard": "yes"}}, "logging.tensorboard", "'yes'"),
    ours(
        "fixed-points",
        {"analysis": {"fixed_points": {"max_iters": 0}}},
        "analysis.fixed_points.max_iters",
    ),
    ours(
        "noise-stages-gru",
        {"agent": {"name": "gru"}, "training": {"noise_stages": 3}},
        "training.noise_stages",
        drop=("agent.n_neurons",),
    ),
    ours(
        "gru-with-dale-kwarg",
        {"agent": {"name": "gru"}},
        "agent.n_neurons: unknown argument of gru",
    ),
    ours_text("yaml-syntax", "cfg.yaml", "training: {seed: [}\n", "cfg.yaml", "not valid YAML"),
    ours_text("json-syntax", "cfg.json", '{"training": {"seed": 1,}}', "cfg.json", "not valid"),
    ours_text("top-level-list", "cfg.yaml", "- 1\n- 2\n", "cfg.yaml", "mapping of sections"),
    ours_text("binary", "cfg.yaml", b"\xff\xfe\x00\x81garbage", "cfg.yaml"),
    ours("task-id-number", {"task": {"id": 5}}, "task.id", "got 5"),
    ours("agent-name-empty", {"agent": {"name": ""}}, "agent.name", "got ''"),
    ours("seed-huge", {"training": {"seed": 1e400}}, "training.seed", "inf"),
    ours(
        "mixed-formats",
        {"model_params": {"num_neurons": 8}},
        "agent: a section of our schema in a file of the original format",
    ),
    Case(
        "ours-directory",
        _train,
        lambda folder, _run: ["--config", str(folder), "--out", str(folder / "out")],
        (str(Path("work")), "cannot read"),
    ),
    Case(
        "ours-missing-file",
        _train,
        lambda folder, _run: ["--config", str(folder / "nope.yaml"), "--out", str(folder / "out")],
        ("nope.yaml", "cannot read"),
    ),
]


# -- configs in the original four-section format ---------------------------------------------------


def original(name: str, section: str, key: str, value, *says: str) -> Case:
    def make(folder: Path, _run: Path) -> list[str]:
        data = _merge(ORIGINAL, {})
        data[section][key] = value
        path = _write(folder, "config.yaml", yaml.safe_dump(data))
        return [
            "--config",
            str(path),
            "--out",
            str(folder / "out"),
            "--device",
            "cpu",
            "--no-progress",
            "--set",
            "training.eval_batch_size=8",
            "--set",
            "training.threads=1",
        ]

    return Case(f"original-{name}", _train, make, says)


ORIGINAL_CONFIGS = [
    original(
        "neurons-negative", "model_params", "num_neurons", -5, "model_params.num_neurons", "-5"
    ),
    original(
        "neurons-many", "model_params", "num_neurons", "many", "model_params.num_neurons", "'many'"
    ),
    original("item-num", "model_params", "item_num", [1, 2, 11], "model_params.item_num", "11"),
    original("eta", "training_params", "eta", -1, "training_params.eta", "-1"),
    original(
        "num-trials", "training_params", "num_trials", 0, "training_params.num_trials", "got 0"
    ),
    original("t-delay", "model_params", "T_delay", "long", "model_params.T_delay"),
    original("t-stimi", "model_params", "T_stimi", 0, "model_params.T_stimi"),
    original(
        "unknown-key", "model_params", "num_neuron", 3, "model_params.num_neuron: unknown key"
    ),
    original("bool", "training_params", "train_rnn", "yes", "training_params.train_rnn"),
    original(
        "cuda-device",
        "model_and_logging_params",
        "cuda_device",
        -1,
        "model_and_logging_params.cuda_device",
    ),
    original(
        "stages",
        "training_params",
        "multi_stage_training",
        {"stages": 2},
        "training_params.multi_stage_training",
    ),
    original("fpf-hps", "fpf_params", "fpf_hps", {"max_iter": 5}, "fpf_params.fpf_hps.max_iter"),
    original(
        "error-def", "training_params", "error_def", "l1", "training_params.error_def", "'l1'"
    ),
    original(
        "logging-period", "training_params", "logging_period", 0, "training_params.logging_period"
    ),
    original(
        "spike-noise", "model_params", "spike_noise_factor", -0.1, "model_params.spike_noise_factor"
    ),
    Case(
        "original-unknown-section",
        _train,
        lambda folder, _run: [
            "--config",
            str(_write(folder, "config.yaml", yaml.safe_dump({**ORIGINAL, "extra_params": {}}))),
            "--out",
            str(folder / "out"),
        ],
        ("extra_params: unknown section",),
    ),
]


# -- --set values and command-line options -----------------------------------------------------------


def option(name: str, args: list[str], *says: str) -> Case:
    def make(folder: Path, _run: Path) -> list[str]:
        return ["--out", str(folder / "out"), "--no-progress", *TINY_SET, *args]

    return Case(f"option-{name}", _train, make, says)


OPTIONS = [
    option("set-negative-seed", ["--set", "training.seed=-1"], "training.seed", "-1"),
    option("set-no-equals", ["--set", "training.seed"], "--set training.seed"),
    option("set-bad-section", ["--set", "train.seed=1"], "train.seed=1", "'train'"),
    option("set-bad-yaml", ["--set", "training.seed=[1"], "training.seed", "'[1'"),
    option("set-agent-type", ["--set", "agent.n_neurons=many"], "agent.n_neurons", "'many'"),
    option("set-timing", ["--set", "task.timing.delay=abc"], "task.timing"),
    option("set-through-value", ["--set", "training.seed.x=1"], "training.seed"),
    option("set-period", ["--set", "logging.period=0"], "logging.period"),
    option("num-models-zero", ["--num-models", "0"], "--num-models", "training.num_models"),
    option("num-models-word", ["--num-models", "two"], "--num-models", "'two'"),
    option("device-word", ["--device", "tpu"], "--device", "'tpu'"),
    option("device-missing", ["--device", "cuda:7"], "--device", "cuda:7"),
    option("unknown-option", ["--epochs", "3"], "--epochs"),
    Case(
        "option-empty-out",
        _train,
        lambda folder, _run: ["--out", "", "--no-progress", *TINY_SET],
        ("--out",),
    ),
]


# -- sweep files -------------------------------------------------------------------------------------


def sweep(name: str, body: dict | str, *says: str) -> Case:
    def make(folder: Path, _run: Path) -> list[str]:
        if isinstance(body, str):
            path = _write(folder, "sweep.yaml", body)
        else:
            tiny = {key: value for key, value in TINY.items() if key != "logging.run_name"}
            data = {"base": "default", "set": tiny, "output": str(folder / "out"), **body}
            path = _write(folder, "sweep.yaml", yaml.safe_dump(data))
        return [str(path)]

    return Case(f"sweep-{name}", _sweep, make, says)


SWEEPS = [
    sweep("grid-value", {"grid": {"task.ilc_noise": [0.0, -1]}}, "task.ilc_noise", "-1"),
    sweep(
        "grid-agent-value",
        {"grid": {"agent.spike_noise_factor": [0.1, -1]}},
        "agent.spike_noise_factor",
        "-1",
    ),
    sweep(
        "grid-unknown-key",
        {"grid": {"agent.spike_noise_factr": [0.1]}},
        "grid.agent.spike_noise_factr",
    ),
    sweep("grid-not-list", {"grid": {"training.seed": 3}}, "grid.training.seed"),
    sweep("unknown-top-key", {"grid": {"training.seed": [0]}, "grdi": {}}, "grdi"),
    sweep(
        "trials-value",
        {"trials": [{"training.learning_rate": -1}]},
        "trials[0].training.learning_rate",
    ),
    sweep(
        "resources", {"grid": {"training.seed": [0]}, "resources": {"cpus": 0}}, "resources.cpus"
    ),
    sweep("base", {"grid": {"training.seed": [0]}, "base": "no_such_config"}, "base"),
    sweep("no-trials", {"grid": {}}, "has no trials"),
    sweep("yaml-syntax", "grid: {training.seed: [0,\n", "sweep.yaml"),
    Case(
        "sweep-missing-file",
        _sweep,
        lambda folder, _run: [str(folder / "nope.yaml")],
        ("nope.yaml",),
    ),
    Case(
        "sweep-max-concurrent",
        _sweep,
        lambda folder, _run: [
            "delay_tiny",
            "--max-concurrent",
            "0",
            "--output",
            str(folder / "out"),
        ],
        ("--max-concurrent",),
    ),
]


# -- CSV files for python -m analysis.fit_table ------------------------------------------------------------


def csv(name: str, text: str | bytes, *says: str) -> Case:
    def make(folder: Path, _run: Path) -> list[str]:
        return [str(_write(folder, "data.csv", text)), "--out", str(folder / "fit")]

    return Case(f"csv-{name}", _fit, make, ("data.csv", *says))


GOOD_ROWS = "set_size,target,response\n1,0.1,0.2\n2,0.3,0.1\n"
CSVS = [
    csv("missing-column", "set_size,target\n1,0.1\n", "response"),
    csv("not-a-number", "set_size,target,response\n1,0.1,abc\n", "row", "response", "abc"),
    csv("set-size-zero", "set_size,target,response\n0,0.1,0.2\n", "set_size"),
    csv("set-size-float", "set_size,target,response\n1.5,0.1,0.2\n", "set_size"),
    csv("not-finite", "set_size,target,response\n1,0.1,inf\n", "response"),
    csv("empty", "", "empty"),
    csv("header-only", "set_size,target,response\n", "no data rows"),
    csv("nontarget-gap", "set_size,target,response,nontarget_2\n2,0.1,0.2,0.3\n", "nontarget"),
    csv("nontarget-missing", "set_size,target,response,nontarget_1\n2,0.1,0.2,\n", "nontarget_1"),
    csv(
        "binary",
        b"\xff\xfe\x00\x81\x00garbage",
    ),
    Case("csv-missing-file", _fit, lambda folder, _run: [str(folder / "nope.csv")], ("nope.csv",)),
    Case(
        "csv-bad-units",
        _fit,
        lambda folder, _run: [str(_write(folder, "data.csv", GOOD_ROWS)), "--units", "grad"],
        ("--units", "grad"),
    ),
]


# -- run directories and checkpoints: python -m analysis and --resume ---------------------------------


def _copy_run(folder: Path, run_dir: Path) -> Path:
    target = folder / "out" / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def run_case(name: str, damage: Callable[[Path], None], *says: str, args: tuple = ()) -> Case:
    def make(folder: Path, run_dir: Path) -> list[str]:
        target = _copy_run(folder, run_dir)
        damage(target)
        return [str(target), "--no-progress", *args]

    return Case(f"run-{name}", _analysis, make, says)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _foreign(path: Path) -> None:
    import torch

    torch.save({"state_dict": {"weight": torch.zeros(2)}}, path)


def _resized(run: Path) -> None:
    """The config says 16 neurons; the checkpoints hold 8."""
    data = yaml.safe_load((run / "config.yaml").read_text())
    data["agent"]["n_neurons"] = 16
    (run / "config.yaml").write_text(yaml.safe_dump(data))


def _set_config(key: str, value) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        data = yaml.safe_load((run / "config.yaml").read_text())
        section, name = key.split(".")
        data[section][name] = value
        (run / "config.yaml").write_text(yaml.safe_dump(data))

    return damage


RUN_DIRS = [
    Case("run-missing-dir", _analysis, lambda folder, _run: [str(folder / "nope")], ("nope",)),
    run_case("no-config", lambda run: (run / "config.yaml").unlink(), "config.yaml"),
    run_case(
        "config-syntax",
        lambda run: (run / "config.yaml").write_text("task: {id: [\n"),
        "config.yaml",
    ),
    run_case(
        "config-value",
        _set_config("training.learning_rate", -1),
        "config.yaml",
        "training.learning_rate",
    ),
    run_case(
        "config-agent-value", _set_config("agent.n_neurons", -5), "config.yaml", "agent.n_neurons"
    ),
    run_case("no-checkpoints", lambda run: shutil.rmtree(run / "checkpoints"), "checkpoint"),
    run_case("truncated-best", lambda run: _truncate(run / "checkpoints" / "best.pt"), "best.pt"),
    run_case("foreign-best", lambda run: _foreign(run / "checkpoints" / "best.pt"), "best.pt"),
    run_case(
        "garbage-best",
        lambda run: (run / "checkpoints" / "best.pt").write_bytes(b"\x00" * 64),
        "best.pt",
    ),
    run_case("resized", _resized, "best.pt"),
    run_case(
        "truncated-latest",
        lambda run: _truncate(run / "checkpoints" / "latest.pt"),
        "latest.pt",
        args=("--checkpoint", "latest"),
    ),
    run_case("only-unknown", lambda run: None, "--only", "bogus", args=("--only", "bogus")),
    run_case("trials-zero", lambda run: None, "--trials", args=("--trials", "0")),
    run_case(
        "human-data-missing",
        lambda run: None,
        "--human-data",
        args=("--human-data", "no_such_folder"),
    ),
    run_case(
        "checkpoint-choice",
        lambda run: None,
        "--checkpoint",
        "worst",
        args=("--checkpoint", "worst"),
    ),
]


def resume_case(name: str, damage: Callable[[Path], None], *says: str, extra: tuple = ()) -> Case:
    def make(folder: Path, run_dir: Path) -> list[str]:
        damage(_copy_run(folder, run_dir))
        return [
            "--out",
            str(folder / "out"),
            "--device",
            "cpu",
            "--no-progress",
            "--resume",
            *TINY_SET,
            *extra,
        ]

    return Case(f"resume-{name}", _train, make, says)


RESUMES = [
    Case(
        "resume-nothing",
        _train,
        lambda folder, _run: ["--out", str(folder / "out"), "--resume", "--no-progress", *TINY_SET],
        ("nothing to resume",),
    ),
    resume_case(
        "truncated-latest", lambda run: _truncate(run / "checkpoints" / "latest.pt"), "latest.pt"
    ),
    resume_case(
        "foreign-latest", lambda run: _foreign(run / "checkpoints" / "latest.pt"), "latest.pt"
    ),
    resume_case(
        "garbage-latest",
        lambda run: (run / "checkpoints" / "latest.pt").write_bytes(b"PK\x03\x04broken"),
        "latest.pt",
    ),
    resume_case(
        "other-config",
        lambda run: None,
        "training.learning_rate",
        extra=("--set", "training.learning_rate=0.5"),
    ),
]

CASES = [*OUR_CONFIGS, *ORIGINAL_CONFIGS, *OPTIONS, *SWEEPS, *CSVS, *RUN_DIRS, *RESUMES]


def test_there_are_at_least_50_cases_and_their_names_are_unique():
    assert len(CASES) >= 50
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished tiny run directory (best.pt and latest.pt) to damage copies of."""
    from vwm_agents.train import main

    out = tmp_path_factory.mktemp("fuzz_runs")
    assert main(["--out", str(out), "--device", "cpu", "--no-progress", *TINY_SET]) == 0
    (run_dir,) = out.iterdir()
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    return run_dir


def _snapshot(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every file and folder under ``folder`` with its size and modification time."""
    out: dict[str, tuple[int, int] | None] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), folder)] = None
        for name in files:
            stat = os.stat(os.path.join(root, name))
            out[os.path.relpath(os.path.join(root, name), folder)] = (
                stat.st_size,
                stat.st_mtime_ns,
            )
    return out


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    case, tiny_run, tmp_path, capsys, monkeypatch
):
    check_case(case, tiny_run, tmp_path, capsys, monkeypatch)


def check_case(case: Case, tiny_run: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """Run ``case`` in a fresh folder: exit 2, one line saying ``case.says``, nothing written."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)  # relative paths a CLI might write to land here too
    argv = case.make(folder, tiny_run)
    before = _snapshot(folder)
    capsys.readouterr()
    try:
        code = case.cli(argv)
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # a traceback is a failure of this test, reported as one
        pytest.fail(f"{case.name}: raised {type(exc).__name__}: {exc}")
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}, stderr: {err!r}"
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"expected one line, got {err!r}"
    for text in case.says:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    assert _snapshot(folder) == before, "files were created or changed"


@pytest.mark.parametrize(
    ("module", "argv", "says"),
    [
        ("vwm_agents.train", ["--set", "training.batch_size=zero"], "training.batch_size"),
        ("vwm_agents.train", ["--device", "cuda:7"], "--device"),
        ("analysis", ["no_such_run_dir"], "no_such_run_dir"),
    ],
)
def test_bad_input_as_a_subprocess(tmp_path, module, argv, says):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            module,
            *argv,
            *(["--out", "out"] if module.endswith("train") else []),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert says in result.stderr
    assert list(tmp_path.iterdir()) == []

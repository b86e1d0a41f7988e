"""Sweeps on Ray Tune: the sweep file, trial expansion, one trial, results, the human-distance
columns, and tiny sweeps under a local Ray (started once, with a stale cluster pointer around)."""

from __future__ import annotations

import json
import math
import os
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml
from agent_test_support import TINY_SWEEP_TRAINING, read_csv, write_sweep

from vwm_agents import sweep as sw
from vwm_agents.sweep import HumanTarget, SweepError, TrialPlan, TrialResult
from vwm_agents.sweep.names import trial_names
from vwm_agents.training.plotting import plot_sweep_error_vs_set_size
from vwm_agents.training.rundir import read_history

pytestmark = pytest.mark.slow  # trains models or starts Ray: minutes of the suite

SWEEPS = Path(str(resources.files("vwm_agents.configs").joinpath("sweeps")))

TINY = TINY_SWEEP_TRAINING


# ----------------------------------------------------------------------------------------------
# The sweep file


def test_grid_is_crossed_with_explicit_trials():
    grid = {"agent.spike_noise_factor": [0.05, 0.1], "training.seed": [0, 1, 2]}
    trials = [{"agent.n_neurons": 64}, {"agent.n_neurons": 128, "training.batch_size": 64}]
    params, sources = sw.expand_trials(grid, trials)
    assert len(params) == 2 * 2 * 3
    assert params[0] == {
        "agent.n_neurons": 64,
        "agent.spike_noise_factor": 0.05,
        "training.seed": 0,
    }
    assert params[1]["training.seed"] == 1  # the grid's last key varies fastest
    assert params[-1] == {
        "agent.n_neurons": 128,
        "training.batch_size": 64,
        "agent.spike_noise_factor": 0.1,
        "training.seed": 2,
    }
    assert sources[-1]["training.batch_size"] == "trials[1]."
    assert sources[-1]["training.seed"] == "grid."
    assert len({tuple(sorted(p.items())) for p in params}) == len(params)


def test_trial_names_are_readable_and_unique():
    params = [
        {"agent.spike_noise_factor": 0.1, "training.seed": 0},
        {"agent.spike_noise_factor": 1e-5, "training.seed": 1},
    ]
    names = trial_names(params, ["agent.spike_noise_factor", "training.seed"])
    assert names == ["spike_noise_factor-0.1_seed-0", "spike_noise_factor-1e-05_seed-1"]
    # two swept keys with the same last part keep their full names
    clash = [{"agent.dt": 10, "task.dt": 10}, {"agent.dt": 20, "task.dt": 20}]
    assert trial_names(clash, ["agent.dt", "task.dt"]) == [
        "agent.dt-10_task.dt-10",
        "agent.dt-20_task.dt-20",
    ]
    # values that sanitise to the same text get a hash to stay apart
    same = trial_names([{"a.b": "x/y"}, {"a.b": "xy"}], ["a.b"])
    assert len(set(same)) == 2 and all(name.startswith("b-xy") for name in same)


def test_sweep_file_resolves_every_trial_config(tmp_path):
    path = write_sweep(
        tmp_path, grid={"training.lambda_reg": [1e-6, 1e-5], "training.seed": [3, 4]}
    )
    spec = sw.load_sweep(path)
    assert spec.swept_keys == ("training.lambda_reg", "training.seed")
    assert [t.params["training.lambda_reg"] for t in spec.trials] == [1e-6, 1e-6, 1e-5, 1e-5]
    for trial in spec.trials:
        config = trial.config
        assert config["training"]["lambda_reg"] == trial.params["training.lambda_reg"]
        assert config["training"]["seed"] == trial.params["training.seed"]
        assert config["agent"]["n_neurons"] == 16  # from `set`
        # one core, one torch thread, no progress bar, the run directory named after the values
        assert config["training"]["threads"] == 1
        assert config["training"]["device"] == "cpu"
        assert config["logging"]["progress"] is False
        assert config["logging"]["run_name"] == trial.name
        assert trial.run_dir.parent == tmp_path / "out"
        assert trial.run_dir.name.startswith(trial.name)
    assert not (tmp_path / "out").exists()  # validating writes nothing


def test_exponent_floats_in_a_sweep_file_are_numbers(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "grid:\n  training.lambda_reg: [1e-6, 2.5E-4]\n"
        f"set: {json.dumps(TINY)}\noutput: {tmp_path / 'out'}\n"
    )
    spec = sw.load_sweep(path)
    assert [t.config["training"]["lambda_reg"] for t in spec.trials] == [1e-6, 2.5e-4]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"grid": {"training.seed": [0]}, "grdi": {}}, "grdi: unknown key of a sweep file"),
        (
            {"grid": {"agent.spike_noise_factr": [0.1, 0.2]}},
            "grid.agent.spike_noise_factr: unknown",
        ),
        ({"grid": {"training.seed": 3}}, "grid.training.seed: must be a non-empty list"),
        ({"grid": {"training.seed": [0, 0]}}, "grid.training.seed: lists 0 twice"),
        ({"grid": {"seed": [0, 1]}}, "grid.seed: must be a dotted config key"),
        (
            {"trials": [{"training.seed": 0}, {"training.learning_rate": -1}]},
            "trials[1].training.learning_rate: must be a positive number",
        ),
        ({"grid": {"training.batch_size": [8, 16]}}, "set.training.batch_size: is also swept"),
        (
            {"grid": {"training.seed": [0]}, "set": {"training.lr_factr": 0.5}},
            "set.training.lr_factr",
        ),
        (
            {"grid": {"training.seed": [0]}, "trials": [{"training.seed": 1}]},
            "trials[0].training.seed: is also swept by grid.training.seed",
        ),
        ({"grid": {"logging.run_name": ["a", "b"]}}, "grid.logging.run_name: is set by the sweep"),
        (
            {"grid": {"training.seed": [0]}, "resources": {"cpus": 0}},
            "resources.cpus: must be a positive",
        ),
        ({"grid": {"training.seed": [0]}, "resources": {"gpu": 1}}, "resources.gpu: unknown key"),
        ({"grid": {"training.seed": [0]}, "base": "no_such_config"}, "base: no config file"),
        ({"set": {"training.seed": 0}}, "sweep: has no trials"),
        # values only the env or the agent can judge are checked before anything runs
        ({"grid": {"task.ilc_noise": [0.0, -1]}}, "grid.task.ilc_noise: ilc_noise must be"),
        ({"grid": {"agent.tau_min": [50.0, 5.0]}}, "grid.agent.tau_min:"),
        (
            {"grid": {"training.seed": [0]}, "human": {"target": "no_such_data.csv"}},
            "human.target: no file or folder 'no_such_data.csv'",
        ),
        (
            {"grid": {"training.seed": [0]}, "human": {"trials": 0}},
            "human.trials: must be a positive",
        ),
        ({"grid": {"training.seed": [0]}, "human": {"traisl": 5}}, "human.traisl: unknown key"),
    ],
)
def test_invalid_sweep_file_is_rejected_naming_the_key(tmp_path, capsys, body, message):
    path = write_sweep(tmp_path, **body)
    with pytest.raises(SweepError) as info:
        sw.load_sweep(path)
    assert str(info.value).startswith(message.split(":")[0])
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    # the command line: exit code 2, the message on stderr, nothing written
    assert sw.main([str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_new_sweep_refuses_a_non_empty_output_folder(tmp_path, capsys):
    path = write_sweep(tmp_path, grid={"training.seed": [0]})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "something").write_text("x")
    assert sw.main([str(path)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["something"]


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_sweeps_are_valid(path, tmp_path):
    spec = sw.load_sweep(path.stem, output=tmp_path / "out")  # shipped sweeps resolve by name
    assert spec.name == path.stem
    assert len(spec.trials) >= (2 if path.stem.endswith("_tiny") else 4)
    assert "training.seed" in spec.swept_keys
    tiny = path.with_name(f"{path.stem}_tiny.yaml")
    assert path.stem.endswith("_tiny") or tiny.is_file(), f"{path.name} has no _tiny variant"


# ----------------------------------------------------------------------------------------------
# One trial, without Ray


def fake_plan(tmp_path: Path, name: str = "t") -> TrialPlan:
    spec = sw.load_sweep(write_sweep(tmp_path, grid={"training.seed": [0]}))
    return TrialPlan(name, {"training.seed": 0}, spec.trials[0].config, tmp_path / "out" / name)


def test_run_trial_resumes_from_a_checkpoint_and_records_failures(tmp_path):
    plan = fake_plan(tmp_path)
    calls = []

    def train_fn(config, out_dir, *, resume, device, callback, progress):
        calls.append(
            {"out_dir": Path(out_dir), "resume": resume, "device": device, "progress": progress}
        )
        if callback is not None:
            callback(
                {"iteration": 10, "error": 0.5, "per_set_size": {"1": {"error": 0.2}}, "note": "x"}
            )
        if config.training.seed == 0 and len(calls) == 1:
            raise ValueError("agent.tau_min: too small")
        return out_dir / plan.name

    reported = []
    assert sw.run_trial(plan, train_fn=train_fn, report=reported.append) is False
    assert calls[0] == {
        "out_dir": plan.run_dir.parent,
        "resume": False,
        "device": "cpu",
        "progress": False,
    }
    assert reported == [{"iteration": 10, "error": 0.5, "per_set_size": {"1": {"error": 0.2}}}]
    error_file = plan.run_dir.parent / sw.ERRORS_DIR / "t.yaml"
    record = yaml.safe_load(error_file.read_text())
    assert record["error"] == "ValueError: agent.tau_min: too small"
    assert record["retried_by_ray"] is False
    # with a checkpoint it resumes; success clears the failure record
    (plan.run_dir / "checkpoints").mkdir(parents=True)
    (plan.run_dir / "checkpoints" / "latest.pt").write_bytes(b"")
    assert sw.run_trial(plan, train_fn=train_fn) is True
    assert calls[1]["resume"] is True
    assert not error_file.exists()


def test_run_trial_reraises_only_failures_ray_should_retry(tmp_path):
    from vwm_agents.training.trainer import TrainingDiverged

    plan = fake_plan(tmp_path)
    error_file = plan.run_dir.parent / sw.ERRORS_DIR / "t.yaml"

    def crash(config, out_dir, **kwargs):
        raise RuntimeError("node lost")

    with pytest.raises(RuntimeError, match="node lost"):
        sw.run_trial(plan, train_fn=crash)
    assert yaml.safe_load(error_file.read_text())["retried_by_ray"] is True

    def diverge(config, out_dir, **kwargs):  # a RuntimeError too, but retrying cannot help
        raise TrainingDiverged("training diverged: loss is nan", plan.run_dir, 7)

    assert sw.run_trial(plan, train_fn=diverge) is False
    record = yaml.safe_load(error_file.read_text())
    assert record["error"] == "TrainingDiverged: training diverged: loss is nan"
    assert record["retried_by_ray"] is False


def test_a_failed_comparison_with_people_reruns_only_the_comparison(tmp_path, monkeypatch):
    from vwm_agents.sweep import trial

    plan = fake_plan(tmp_path)
    human = HumanTarget("shipped", 30)
    trained = []

    def train_fn(config, out_dir, **kwargs):
        trained.append(config.training.seed)
        write_metrics(plan.run_dir, 0.5)
        return plan.run_dir

    # a stand-in for `python -m analysis RUN_DIR --only human ...`: first it fails, then it works
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        f"if [ ! -e {tmp_path / 'works'} ]; then echo 'error: no data' >&2; exit 2; fi\n"
        'mkdir -p "$3/analysis"\n'
        'echo \'{"distance": {"total": 2.5, "components": {}}}\' > "$3/analysis/human_comparison.json"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setattr(trial.sys, "executable", str(fake))
    assert sw.run_trial(plan, human=human, train_fn=train_fn) is False
    record = yaml.safe_load((plan.run_dir.parent / sw.ERRORS_DIR / "t.yaml").read_text())
    assert record["error"] == "HumanAnalysisError: python -m analysis --only human: error: no data"
    assert record["stage"] == "human" and record["retried_by_ray"] is False
    assert not trial.is_finished(plan, human)
    (tmp_path / "works").write_text("")
    assert sw.run_trial(plan, human=human, train_fn=train_fn) is True
    assert trained == [0]  # trained once; the second call only compared
    assert calls.read_text().splitlines()[-1] == (
        f"-m analysis {plan.run_dir} --only human --no-progress --trials 30"
    )
    assert (
        trial.is_finished(plan, human)
        and not (plan.run_dir.parent / sw.ERRORS_DIR / "t.yaml").exists()
    )
    assert sw.read_human_distance(plan.run_dir / "analysis" / "human_comparison.json") == (2.5, {})


# ----------------------------------------------------------------------------------------------
# Results


def make_result(
    noise: float, seed: int, errors: dict[int, float], status: str = "ok"
) -> TrialResult:
    return TrialResult(
        trial=f"n{noise}s{seed}",
        run_dir="x",
        params={"agent.spike_noise_factor": noise, "training.seed": seed},
        status=status,
        final_iteration=20,
        error=float(np.mean(list(errors.values()))),
        error_std=0.1,
        rate=5.0,
        per_set_size={
            size: {"error": e, "error_std": 0.1, "rate": 5.0} for size, e in errors.items()
        },
    )


def test_error_vs_set_size_is_mean_and_sem_over_seeds(tmp_path):
    rng = np.random.default_rng(0)
    table = rng.uniform(0, 1, size=(2, 3, 4))  # noise x seed x set size
    results = [
        make_result(noise, seed, {size + 1: float(table[i, seed, size]) for size in range(4)})
        for i, noise in enumerate((0.05, 0.1))
        for seed in range(3)
    ]
    results.append(make_result(0.1, 9, {1: 99.0}, status="error"))  # failed trials are left out
    curves = sw.error_vs_set_size(results, ["agent.spike_noise_factor", "training.seed"])
    assert [c.setting for c in curves] == [
        {"agent.spike_noise_factor": 0.05},
        {"agent.spike_noise_factor": 0.1},
    ]
    for i, curve in enumerate(curves):
        assert curve.set_sizes == [1, 2, 3, 4]
        assert curve.n_seeds == [3, 3, 3, 3]
        np.testing.assert_allclose(curve.mean, table[i].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(
            curve.sem, table[i].std(axis=0, ddof=1) / math.sqrt(3), rtol=1e-12
        )
    single = sw.error_vs_set_size(results[:1], ["agent.spike_noise_factor", "training.seed"])
    assert math.isnan(single[0].sem[0])  # one seed: no spread to report
    [path] = plot_sweep_error_vs_set_size(curves, tmp_path, title="t")
    assert path == tmp_path / sw.FIGURE and path.stat().st_size > 0


# ----------------------------------------------------------------------------------------------
# The distance to people in the results


def write_comparison(
    run_dir: Path, total: float, mae: float, guess: float, kurtosis: float
) -> None:
    folder = run_dir / "analysis"
    folder.mkdir(parents=True, exist_ok=True)
    distance = {
        "total": total,
        "components": {"mae": mae, "guess_rate": guess, "excess_kurtosis": kurtosis},
        "per_set_size": [],
        "target": "shipped",
    }
    (folder / "human_comparison.json").write_text(json.dumps({"distance": distance}))


def write_metrics(run_dir: Path, error: float) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = {
        "checkpoint": "best",
        "iteration": 20,
        "error": error,
        "error_std": 0.1,
        "rate": 4.0,
        "per_set_size": {
            "1": {"error": error / 2, "rate": 4.0},
            "2": {"error": error, "rate": 4.0},
        },
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))


def test_results_rank_trials_by_distance_to_people(tmp_path):
    path = write_sweep(
        tmp_path,
        grid={"agent.spike_noise_factor": [0.05, 0.1, 0.2]},
        human={"target": "shipped", "trials": 50},
    )
    spec = sw.load_sweep(path)
    assert spec.human == HumanTarget("shipped", 50)
    assert spec.human.analysis_args() == ["--trials", "50"]
    distances = {0: (7.5, 5.0, 2.0, 0.5), 1: (1.25, 1.0, 0.125, 0.125)}  # trial 2: not compared
    for i, plan in enumerate(spec.trials):
        write_metrics(plan.run_dir, 0.5 + i)
        if i in distances:
            write_comparison(plan.run_dir, *distances[i])
    results = sw.collect_results(spec)
    sw.write_results(spec, results)
    rows = read_csv(spec.output / sw.RESULTS_CSV)
    # closest first; a trial without its comparison is an error, ranked last
    assert [row["trial"] for row in rows] == [spec.trials[i].name for i in (1, 0, 2)]
    assert [row["human_rank"] for row in rows] == ["1", "2", ""]
    for row, i in zip(rows[:2], (1, 0), strict=True):
        total, mae, guess, kurtosis = distances[i]
        assert row["status"] == "ok"
        assert float(row["human_distance"]) == total
        assert float(row["human_distance_mae"]) == mae
        assert float(row["human_distance_guess_rate"]) == guess
        assert float(row["human_distance_excess_kurtosis"]) == kurtosis
    assert rows[2]["status"] == "error" and "human_comparison.json" in rows[2]["message"]
    assert rows[2]["human_distance"] == ""
    # without a human section there are no such columns
    plain = sw.load_sweep(
        write_sweep(tmp_path, grid={"agent.spike_noise_factor": [0.05, 0.1, 0.2]})
    )
    sw.write_results(plain, sw.collect_results(plain))
    assert not set(sw.HUMAN_COLUMNS) & set(read_csv(plain.output / sw.RESULTS_CSV)[0])


def test_human_target_path_is_taken_from_the_sweep_files_folder(tmp_path):
    (tmp_path / "people.csv").write_text("x")
    spec = sw.load_sweep(
        write_sweep(tmp_path, grid={"training.seed": [0]}, human={"target": "people.csv"})
    )
    assert spec.human.target == str(tmp_path / "people.csv")
    assert spec.human.analysis_args() == ["--human-data", str(tmp_path / "people.csv")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"summary": {}}, "has no 'distance'"),
        ({"distance": {"total": "far"}}, "distance.total must be a number"),
        (
            {"distance": {"total": 1.0, "components": {"mae": None}}},
            "distance.components.mae must be",
        ),
    ],
)
def test_a_comparison_without_a_distance_is_named(tmp_path, content, message):
    path = tmp_path / "human_comparison.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        sw.read_human_distance(path)


def test_sweep_report_is_optional_and_its_failure_one_line(tmp_path, monkeypatch):
    import importlib.util

    from vwm_agents.sweep import results

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert (
        sw.write_report(tmp_path) == "no sweep_report.html: the analysis package is not installed"
    )
    monkeypatch.undo()
    # a report module that fails: its last error line, nothing else
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
        "echo 'ValueError: no trials' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(results.sys, "executable", str(fake))
    assert sw.write_report(tmp_path) == (
        "no sweep_report.html: python -m analysis.report failed: ValueError: no trials"
    )


# ----------------------------------------------------------------------------------------------
# Sweeps under a local Ray (started once for the module)

STALE_ADDRESS = "127.0.0.1:9"  # the discard port: nothing of Ray's answers there


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """The sweep's own local Ray, started where Ray's cluster pointer names a dead head (as after
    a head killed without ``ray stop``); sweeps in this module reuse it."""
    ray = pytest.importorskip("ray")
    from vwm_agents.sweep.runner import ray_session

    ray_tmp = tmp_path_factory.mktemp("raytmp")
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(STALE_ADDRESS)
    saved = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(ray_tmp)  # Ray's temp dir, pointer file included
    try:
        with ray_session(None, num_cpus=2):
            assert ray.is_initialized()
            assert ray.get_runtime_context().gcs_address != STALE_ADDRESS
            assert ray.cluster_resources()["CPU"] == 2  # ours, not some other cluster
            yield ray
    finally:
        if saved is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = saved


@pytest.fixture(scope="module")
def finished_sweep(local_ray, tmp_path_factory):
    """The shipped 2 x 2 tiny noise sweep, run once."""
    output = tmp_path_factory.mktemp("noise") / "out"
    code = sw.main(["noise_level_tiny", "--output", str(output), "--quiet"])
    return code, sw.load_sweep("noise_level_tiny", output=output)


def test_2x2_sweep_writes_one_row_per_trial(finished_sweep):
    code, spec = finished_sweep
    assert code == 0
    rows = read_csv(spec.output / sw.RESULTS_CSV)
    assert [row["trial"] for row in rows] == [t.name for t in spec.trials]
    assert [(float(r["agent.spike_noise_factor"]), int(r["training.seed"])) for r in rows] == [
        (0.05, 0),
        (0.05, 1),
        (0.2, 0),
        (0.2, 1),
    ]
    table = yaml.safe_load((spec.output / sw.RESULTS_YAML).read_text())["trials"]
    for row, entry, plan in zip(rows, table, spec.trials, strict=True):
        metrics = json.loads((plan.run_dir / "metrics.json").read_text())
        assert row["status"] == "ok" and row["message"] == ""
        assert int(row["final_iteration"]) == 20 == read_history(plan.run_dir)[-1]["iteration"]
        assert row["checkpoint"] == metrics["checkpoint"]
        assert int(row["checkpoint_iteration"]) == metrics["iteration"]
        assert float(row["error"]) == pytest.approx(metrics["error"], rel=1e-12)
        assert float(row["rate"]) == pytest.approx(metrics["rate"], rel=1e-12)
        for size in ("1", "2"):
            assert float(row[f"error_ss{size}"]) == pytest.approx(
                metrics["per_set_size"][size]["error"], rel=1e-12
            )
            assert entry["per_set_size"][int(size)]["rate"] == metrics["per_set_size"][size]["rate"]
        # an ordinary run directory, with the trial's values in its config
        config = yaml.safe_load((plan.run_dir / "config.yaml").read_text())
        assert config["agent"]["spike_noise_factor"] == plan.params["agent.spike_noise_factor"]
        assert config["training"]["seed"] == plan.params["training.seed"]
        assert (plan.run_dir / "checkpoints" / "latest.pt").is_file()
    assert (spec.output / sw.FIGURE).stat().st_size > 0


def test_resume_reruns_only_unfinished_trials(finished_sweep, tmp_path):
    code, spec = finished_sweep
    assert code == 0
    output = tmp_path / "out"
    shutil.copytree(spec.output, output, ignore=shutil.ignore_patterns(sw.RAY_DIR))
    copy = sw.load_sweep("noise_level_tiny", output=output)
    lost = copy.trials[1].run_dir  # never started: runs from scratch
    shutil.rmtree(lost)
    stopped = copy.trials[2].run_dir  # stopped after its last checkpoint: continues from it
    (stopped / "metrics.json").unlink()
    history = read_history(stopped)
    finished = [t.run_dir for t in copy.trials if t.run_dir not in (lost, stopped)]
    before = [(run_dir / "metrics.json").stat().st_mtime_ns for run_dir in finished]
    # one trial at a time: the second reuses the first one's worker (and its imports)
    assert (
        sw.main(
            [
                "noise_level_tiny",
                "--output",
                str(output),
                "--resume",
                "--quiet",
                "--max-concurrent",
                "1",
            ]
        )
        == 0
    )
    after = [(run_dir / "metrics.json").stat().st_mtime_ns for run_dir in finished]
    assert after == before  # finished trials were not run again
    assert (lost / "metrics.json").is_file()
    assert (stopped / "metrics.json").is_file()
    # continued at iteration 20 (of 20): no training step, so no new history record
    assert read_history(stopped) == history
    rows = read_csv(output / sw.RESULTS_CSV)
    assert [row["status"] for row in rows] == ["ok"] * 4
    # resuming a finished sweep runs nothing and rewrites the results
    (output / sw.RESULTS_CSV).unlink()
    assert sw.main(["noise_level_tiny", "--output", str(output), "--resume", "--quiet"]) == 0
    assert read_csv(output / sw.RESULTS_CSV) == rows


def test_a_failing_trial_is_recorded_and_the_others_finish(local_ray, tmp_path, capsys):
    path = write_sweep(tmp_path, grid={"training.seed": [0, 1]}, max_failures=0)
    spec = sw.load_sweep(path)
    # a file where the second trial's run directory goes: training fails on the worker (an
    # OSError, which Ray would retry: here max_failures is 0)
    spec.output.mkdir()
    spec.trials[1].run_dir.write_text("in the way")
    assert sw.main([str(path), "--max-concurrent", "1", "--resume"]) == 1
    # the progress bar counts the failed trial too
    assert f"sweep {spec.name}: 100%" in capsys.readouterr().err
    rows = read_csv(spec.output / sw.RESULTS_CSV)
    assert [(row["training.seed"], row["status"]) for row in rows] == [("0", "ok"), ("1", "error")]
    record = yaml.safe_load(
        (spec.output / sw.ERRORS_DIR / f"{spec.trials[1].name}.yaml").read_text()
    )
    assert record["retried_by_ray"] is True
    assert rows[1]["message"] == record["error"] and rows[1]["message"]
    assert rows[1]["error"] == "" and float(rows[0]["error"]) > 0


def test_human_fit_tiny_sweep_adds_the_distance_to_people(local_ray, tmp_path):
    """End to end: train each trial, run ``python -m analysis --only human`` on it, and read the
    distance back into the results, ranked."""
    output = tmp_path / "out"
    assert sw.main(["human_fit_tiny", "--output", str(output), "--quiet"]) == 0
    spec = sw.load_sweep("human_fit_tiny", output=output)
    rows = read_csv(output / sw.RESULTS_CSV)
    assert sorted(row["trial"] for row in rows) == sorted(t.name for t in spec.trials)
    by_name = {plan.name: plan for plan in spec.trials}
    distances = []
    for row in rows:
        comparison = json.loads(
            (by_name[row["trial"]].run_dir / "analysis" / "human_comparison.json").read_text()
        )["distance"]
        assert float(row["human_distance"]) == pytest.approx(comparison["total"], rel=1e-12)
        for name in ("mae", "guess_rate", "excess_kurtosis"):
            assert float(row[f"human_distance_{name}"]) == pytest.approx(
                comparison["components"][name], rel=1e-12
            )
        distances.append(float(row["human_distance"]))
    assert distances == sorted(distances)
    assert [row["human_rank"] for row in rows] == [str(i) for i in range(1, len(rows) + 1)]

"""The shipped human-fit config loads, validates and trains; the benchmark that scores it works.

The human-likeness criteria (:mod:`analysis.human.criteria`) are measured by
``benchmarks/human_fit.py`` on the fully trained model (minutes of CPU), not asserted here: this test trains the config shrunk to a few
iterations and checks that the benchmark scores that run end to end and that its criteria say
what they claim on hand-made values.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from analysis.human.criteria import criteria, split_scores
from vwm_agents.config import load_config
from vwm_agents.train import main as train_main
from vwm_agents.training.run import build_model, make_env

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "human_fit.yaml"
CONTROL = REPO / "configs" / "human_fit_resource.yaml"
BENCHMARK = REPO / "benchmarks" / "human_fit.py"

TINY = [
    "training.num_iterations=3",
    "training.batch_size=16",
    "training.eval_batch_size=16",
    "training.threads=1",
    "training.device=cpu",
    "logging.period=1",
    "logging.progress=false",
]


def _benchmark():
    spec = importlib.util.spec_from_file_location("human_fit_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", [CONFIG, CONTROL], ids=["human_fit", "human_fit_resource"])
def test_config_loads_and_builds_env_and_model(path):
    config = load_config(path)
    # people were tested at set sizes 1-8: the network must have (at least) 8 slots
    assert config.task.kwargs["max_items"] >= 8
    # the reference's step (the spiking noise's effect depends on dt)
    assert config.task.kwargs["dt"] == 10
    env = make_env(config)
    model = build_model(config, env)
    assert model.n_neurons == config.agent.kwargs["n_neurons"]
    assert env.unwrapped.dt == 10


def test_the_shipped_model_is_its_control_plus_the_item_loss_mechanisms():
    shipped, control = load_config(CONFIG), load_config(CONTROL)
    env = make_env(shipped)
    model = build_model(shipped, env)
    # inside the network: per-item stochastic input synapses; in the objective: a report cost
    assert model.item_synapse_noise > 0 and shipped.training.report_cost > 0
    control_model = build_model(control, make_env(control))
    assert control_model.item_synapse_noise is None and control.training.report_cost == 0
    # the task itself adds nothing: no item gain drawn by the env
    assert env.unwrapped.item_gain is None
    # what else differs from the control is size and noise only
    changed = {
        f"{section}.{key}"
        for section in ("task", "agent", "training")
        for key in {**shipped.to_dict()[section], **control.to_dict()[section]}
        if shipped.to_dict()[section].get(key) != control.to_dict()[section].get(key)
    }
    assert changed == {
        "agent.item_synapse_noise",
        "training.report_cost",
        "agent.n_neurons",
        "task.ilc_noise",
    }


def test_config_trains_a_few_iterations_and_the_benchmark_scores_it(tmp_path, capsys):
    args = ["--config", str(CONFIG), "--out", str(tmp_path / "runs"), "--no-progress"]
    for override in TINY:
        args += ["--set", override]
    assert train_main(args) == 0
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in history] == [1, 2, 3]
    capsys.readouterr()

    out = tmp_path / "human_fit.json"
    bench = _benchmark()
    assert bench.main([str(run_dir), "--trials", "20", "--bootstrap", "0", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["set_sizes"] == list(range(1, 9))
    # uncued task: every item of every trial is scored
    assert result["items_per_set_size"] == {str(n): 20 * n for n in range(1, 9)}
    for name in ("mae", "p_guess", "vm_sd", "excess_kurtosis"):
        assert len(result["model"][name]) == 8 and len(result["human"][name]) == 8
    assert set(result["criteria"]) == {
        "mae_within_25pct",
        "guess_rate_rise",
        "excess_kurtosis_positive",
    }
    assert "MAE within +-25% at every set size" in capsys.readouterr().out
    # selection (1, 2, 4, 8) and held-out (3, 5, 6, 7) set sizes split the distance exactly
    selection, held_out = split_scores(result, (1, 2, 4, 8)), split_scores(result, (3, 5, 6, 7))
    assert selection["distance"] + held_out["distance"] == pytest.approx(
        result["distance"]["total"]
    )
    assert held_out["mae_ratio"] == [
        result["criteria"]["mae_within_25pct"]["ratio"][i] for i in (2, 4, 5, 6)
    ]


PEOPLE = {
    "mae": [0.236, 0.350, 0.492, 0.652, 0.752, 0.884, 1.004, 1.062],
    "p_guess": [0.005, 0.028, 0.115, 0.235, 0.289, 0.392, 0.514, 0.554],
}


@pytest.mark.parametrize(
    "scale, met", [(1.0, True), (1.24, True), (0.76, True), (1.3, False), (0.7, False)]
)
def test_mae_criterion_is_plus_minus_25_percent_at_every_set_size(scale, met):
    model = {
        "mae": [m * scale for m in PEOPLE["mae"]],
        "p_guess": PEOPLE["p_guess"],
        "excess_kurtosis": [1.0] * 8,
    }
    assert criteria(model, PEOPLE)["mae_within_25pct"]["met"] is met


def test_mae_criterion_fails_when_one_set_size_is_out():
    mae = list(PEOPLE["mae"])
    mae[3] *= 1.3
    model = {"mae": mae, "p_guess": PEOPLE["p_guess"], "excess_kurtosis": [1.0] * 8}
    result = criteria(model, PEOPLE)["mae_within_25pct"]
    assert not result["met"] and result["n_met"] == 7


def test_guess_and_kurtosis_criteria():
    flat = {"mae": PEOPLE["mae"], "p_guess": [0.1] * 7 + [0.39], "excess_kurtosis": [1.0] * 8}
    rising = {**flat, "p_guess": [0.1] * 7 + [0.41]}
    assert not criteria(flat, PEOPLE)["guess_rate_rise"]["met"]
    assert criteria(rising, PEOPLE)["guess_rate_rise"]["met"]
    # set size 1 does not count; any set size >= 2 at or below 0 fails
    k1 = {**rising, "excess_kurtosis": [-1.0] + [0.5] * 7}
    k5 = {**rising, "excess_kurtosis": [0.5] * 4 + [0.0] + [0.5] * 3}
    assert criteria(k1, PEOPLE)["excess_kurtosis_positive"]["met"]
    assert not criteria(k5, PEOPLE)["excess_kurtosis_positive"]["met"]


def test_forgetting_criteria_each_can_fail():
    from analysis.human.criteria import item_loss_criteria

    people = {"mae": [0.2] * 8}
    good = {
        "mae": [0.2] * 8,
        "p_guess": [0.0] * 7 + [0.4],
        "vm_sd": [0.5] * 8,
        "excess_kurtosis": [0.0] + [2.0] * 7,
    }
    assert all(item_loss_criteria(good, people, 50.0).values())
    bad = {
        "mae_within_25pct": {"mae": [0.2] * 7 + [0.3]},
        "guess_rate_rise": {"p_guess": [0.1] * 7 + [0.39]},
        "vm_sd_at_8": {"vm_sd": [0.5] * 7 + [0.81]},
        "excess_kurtosis_positive": {"excess_kurtosis": [0.0] + [2.0] * 6 + [-0.1]},
        "excess_kurtosis_at_2_to_4": {"excess_kurtosis": [0.0, 2.0, 0.9] + [2.0] * 5},
    }
    for name, change in bad.items():
        met = item_loss_criteria({**good, **change}, people, 50.0)
        assert not met[name] and sum(met.values()) == 5, name
    assert not item_loss_criteria(good, people, 77.0)["distance_halved"]


def test_the_shipped_benchmark_meets_the_forgetting_criteria_and_the_control_does_not():
    """The recorded scores of configs/human_fit.yaml and its control (docs/human_fit/)."""
    from analysis.human.criteria import item_loss_criteria

    docs = Path(__file__).resolve().parents[2] / "docs" / "human_fit"
    shipped = json.loads((docs / "benchmark.json").read_text())
    control = json.loads((docs / "benchmark_resource.json").read_text())
    assert all(
        item_loss_criteria(
            shipped["model"], shipped["human"], shipped["distance"]["total"]
        ).values()
    )
    met = item_loss_criteria(control["model"], control["human"], control["distance"]["total"])
    assert not met["guess_rate_rise"] and not met["distance_halved"]

"""``python -m analysis RUN_DIR``, ``model_errors`` and ``error_statistics``.

Models with known behaviour replace trained ones where the science is asserted: an *oracle*
that reads the angles off its stimulus input (errors = the task's input noise), and a *swapper*
that reports each slot's neighbour (all responses are non-target responses). The end-to-end CLI
test uses a run directory trained for two iterations (a near-chance model).
"""

from __future__ import annotations

import json
import math
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import analysis.__main__ as cli
from analysis import registry
from analysis.behaviour import errors as errors_mod
from analysis.behaviour import mixture
from analysis.behaviour.errors import error_statistics
from analysis.core.jsonable import to_jsonable
from analysis.core.trials import model_errors
from analysis.registry import AnalysisRow
from vwm_tasks.encoding import channels_per_item, decode_input_angles

K = 3


class Oracle(nn.Module):
    """Reports the angles it was shown (rolled by ``shift`` slots), at every time step."""

    def __init__(
        self, max_items: int, encoding: str = "positive", shift: int = 0, cued: bool = False
    ) -> None:
        super().__init__()
        self.max_items, self.encoding, self.shift, self.cued = max_items, encoding, shift, cued
        self.dummy = nn.Parameter(torch.zeros(()))  # so that the model has a device

    def forward(self, ob: torch.Tensor) -> torch.Tensor:
        c = channels_per_item(self.encoding)
        shown = ob[..., : self.max_items * c].sum(1)  # stimulus epoch only carries these
        theta = torch.roll(decode_input_angles(shown, self.encoding), self.shift, dims=-1)
        if self.cued:
            probe = ob[..., self.max_items * c :].sum(1).argmax(-1)
            theta = theta.gather(1, probe[:, None])
        xy = torch.stack([torch.cos(theta), torch.sin(theta)], -1).flatten(1)
        return xy[:, None, :].expand(-1, ob.shape[1], -1)


def _env(env_id: str = "VWMRecall-v0", **kwargs):
    return gym.make(env_id, max_items=K, disable_env_checker=True, **kwargs).unwrapped


# ------------------------------------------------------------------ error statistics


def test_error_statistics_per_set_size():
    rng = np.random.default_rng(0)
    errors = np.concatenate([rng.uniform(-np.pi, np.pi, 20000), rng.vonmises(0, 8.0, 20000)])
    set_size = np.repeat([4, 1], 20000)
    stats = error_statistics(errors, set_size)
    assert stats.set_sizes == [1, 4]
    # Uniform: MAE pi/2 (SE 0.0064 at n = 2e4); von Mises: circular SD sqrt(-2 ln A1(8)).
    assert stats.per_set_size[4].mae == pytest.approx(math.pi / 2, abs=0.03)
    assert stats.per_set_size[1].circular_sd == pytest.approx(0.3659, rel=0.02)
    assert stats.per_set_size[1].n == 20000
    assert error_statistics(errors[:5], 2).set_sizes == [2]
    json.dumps(stats.to_dict(), allow_nan=False)


def test_error_statistics_rejects_bad_input():
    with pytest.raises(ValueError, match="set_size"):
        error_statistics(np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match="errors"):
        error_statistics(np.array([np.nan]), 1)


# ------------------------------------------------------------------ model_errors


def test_oracle_errors_are_the_input_noise():
    env = _env(ilc_noise=0.01)
    data = model_errors(Oracle(K), env, n_trials=200, seed=0)
    assert sorted(np.unique(data.set_size)) == [1, 2, 3]
    # One row per reported item: 200 trials of each set size hold 200 * (1 + 2 + 3) items.
    assert data.errors.size == 200 * 6
    # Errors are the ILC noise N(0, 0.01^2): MAE = 0.01 sqrt(2/pi) = 0.008.
    assert np.mean(np.abs(data.errors)) == pytest.approx(0.01 * math.sqrt(2 / math.pi), rel=0.15)
    # Non-target columns: set size N fills N - 1 of them.
    np.testing.assert_array_equal(np.isfinite(data.nontarget_errors).sum(1), data.set_size - 1)
    assert set(np.unique(data.set_size)) == {1, 2, 3}


def test_model_errors_is_seeded_and_selects_set_sizes():
    env = _env()
    a = model_errors(Oracle(K), env, n_trials=50, set_sizes=[3], seed=3)
    b = model_errors(Oracle(K), env, n_trials=50, set_sizes=[3], seed=3)
    np.testing.assert_array_equal(a.errors, b.errors)
    assert np.all(a.set_size == 3) and a.errors.size == 150
    with pytest.raises(ValueError, match="set_sizes"):
        model_errors(Oracle(K), env, n_trials=5, set_sizes=[7])


def test_swapper_is_all_nontarget_responses():
    env = _env(set_sizes=[K], ilc_noise=0.05)
    data = model_errors(Oracle(K, shift=1), env, n_trials=100, seed=1)
    fits = mixture.fit_by_set_size(data.errors, data.set_size, data.nontarget_errors).fits[K]
    assert fits.swap.p_nontarget > 0.95
    # Seen from the target alone, swaps look like chance: the VM + U density is ~flat.
    grid = np.linspace(-np.pi, np.pi, 101)
    assert np.max(np.abs(fits.vm_uniform.pdf(grid) - 1 / (2 * np.pi))) < 0.05
    # Each response is one of its non-targets plus the input noise (SD 0.05).
    assert np.max(np.min(np.abs(data.nontarget_errors), axis=1)) < 0.3


def test_cued_task_reports_the_probed_item():
    env = _env("VWMRecallCued-v0", ilc_noise=0.0)
    data = model_errors(Oracle(K, cued=True), env, n_trials=100, seed=2)
    assert data.errors.size == 300  # one report per trial
    assert np.max(np.abs(data.errors)) < 1e-4


def test_errors_result_serialises_histogram():
    result = errors_mod.run(Oracle(K), _env(), n_trials=20, seed=0)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert len(data["histogram"]["edges"]) == errors_mod.HISTOGRAM_BINS + 1
    assert set(data["per_set_size"]) == {"1", "2", "3"}


# ------------------------------------------------------------------ the run-directory CLI


def test_cli_writes_behaviour_results(tiny_run, capsys):
    # (errors.json is checked in the next test, which runs that analysis anyway)
    code = cli.main([str(tiny_run), "--only", "mixture,human", "--trials", "10", "--no-progress"])
    assert code == 0
    out = tiny_run / "analysis"
    mix = json.loads((out / "mixture.json").read_text())
    assert set(mix) == {"1", "2", "3"} and mix["1"]["n_trials"] == 10
    assert set(mix["3"]["swap"]) >= {"kappa", "p_target", "p_nontarget", "p_guess", "aic"}
    comparison = json.loads((out / "human_comparison.json").read_text())
    assert comparison["set_sizes"] == [1, 2, 3]
    assert set(comparison["ratio"]) == {"mae", "circular_variance", "p_guess"}
    assert set(comparison["distance"]["components"]) == {"mae", "guess_rate", "excess_kurtosis"}
    for png in (
        "mixture_parameters_vs_set_size.png",
        "mixture_fits_on_error_histograms.png",
        "human_statistics_model_vs_people.png",
        "human_error_histograms_model_vs_people.png",
    ):
        assert (out / png).stat().st_size > 0
    assert "results in" in capsys.readouterr().out


def test_cli_one_failing_analysis_does_not_stop_the_others(tiny_run, add_row, capsys):
    add_row(
        AnalysisRow(
            "broken",
            "analysis.no_such_module:run",
            "analysis.viz.behaviour:plot_errors",
            "Broken",
            "b.json",
            ("b",),
        )
    )
    (tiny_run / "analysis" / "errors.json").unlink(missing_ok=True)
    code = cli.main([str(tiny_run), "--only", "broken,errors", "--trials", "5", "--no-progress"])
    assert code == 1
    assert "error: broken: RuntimeError: module analysis.no_such_module" in capsys.readouterr().err
    errors = json.loads((tiny_run / "analysis" / "errors.json").read_text())
    assert set(errors["per_set_size"]) == {"1", "2", "3"}
    assert errors["per_set_size"]["3"]["n"] == 5 * 3  # every item of 5 trials is reported
    assert (tiny_run / "analysis" / "error_histograms_by_set_size.png").is_file()


def _one_line_error(capsys, fragment: str) -> None:
    err = capsys.readouterr().err.strip()
    assert fragment in err, err
    assert len(err.splitlines()) == 1, err


def test_cli_missing_run_dir(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nope")]) == 2
    _one_line_error(capsys, "not found")


def test_cli_not_a_run_dir(tmp_path, capsys):
    assert cli.main([str(tmp_path)]) == 2
    _one_line_error(capsys, "config.yaml")


def test_cli_corrupt_config(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("task: [unclosed\n")
    assert cli.main([str(tmp_path)]) == 2
    _one_line_error(capsys, "error:")


def test_cli_corrupt_checkpoint(tiny_run, tmp_path, capsys):
    broken = tmp_path / "run"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "config.yaml").write_text((tiny_run / "config.yaml").read_text())
    (broken / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    assert cli.main([str(broken)]) == 2
    _one_line_error(capsys, "error:")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--only", "errors,bogus"], "--only: unknown analysis 'bogus'"),
        (["--trials", "0"], "--trials: must be >= 1"),
        (["--human-data", "/no/such/folder"], "--human-data"),
    ],
)
def test_cli_bad_arguments(tiny_run, capsys, args, fragment):
    assert cli.main([str(tiny_run), *args, "--no-progress"]) == 2
    _one_line_error(capsys, fragment)


def test_only_accepts_the_one_name_of_each_analysis():
    assert cli._parse_only("dn,errors", source="--only") == ["dn", "errors"]
    with pytest.raises(
        ValueError, match="--only: unknown analysis 'normalization'; choose from errors, mixture"
    ):
        cli._parse_only("normalization", source="--only")  # the old second name of dn
    assert cli._parse_only(["weights", "errors"], source="analysis.only") == ["weights", "errors"]
    assert cli._parse_only(None, source="--only") == list(registry.ANALYSES)
    with pytest.raises(ValueError, match="analysis.only: unknown analysis 'bogus'"):
        cli._parse_only(["bogus"], source="analysis.only")


def test_to_jsonable():
    assert to_jsonable({"a": np.float32(1.5), 2: [np.nan, np.arange(2)]}) == {
        "a": 1.5,
        "2": [None, [0, 1]],
    }


def test_trial_counts_come_from_the_config_unless_given(tiny_run):
    from vwm_agents.config import load_config

    settings = load_config(tiny_run / "config.yaml").analysis
    fixed_points = cli._settings_for("fixed_points", settings)
    assert cli._trials_for(registry.ANALYSES["errors"], {}, settings, None) == {
        "n_trials": settings.trials
    }
    assert cli._trials_for(registry.ANALYSES["fixed_points"], fixed_points, settings, None) == {
        "n_trials": settings.fixed_points.trials
    }
    assert cli._trials_for(registry.ANALYSES["dn"], {}, settings, None) == {}
    assert cli._trials_for(registry.ANALYSES["dn"], {}, settings, 7) == {"n_trials": 7}


def test_every_fixed_point_setting_reaches_the_finder(tiny_run):
    """analysis.fixed_points.<key> -> run(..., key=value), under the config's own names."""
    import inspect

    from vwm_agents.config import load_config

    settings = load_config(tiny_run / "config.yaml").analysis
    forwarded = cli._settings_for("fixed_points", settings)
    assert set(forwarded) == set(settings.fixed_points.to_dict())
    parameters = inspect.signature(
        registry.resolve(registry.ANALYSES["fixed_points"].compute)
    ).parameters
    missing = [k for k in forwarded if k != "trials" and k not in parameters]
    assert not missing, f"fixed_points.run does not take {missing}"


# ------------------------------------------------------------------ the dispatch contract


class _FakeRun:
    """A loaded run whose config has an analysis section for the fake analysis."""

    def __init__(self, analysis: dict) -> None:
        from types import SimpleNamespace

        self.config = SimpleNamespace(analysis=analysis)
        self.model = self.env = None


def _fake_module(monkeypatch, add_row, calls: list) -> None:
    from types import ModuleType

    module = ModuleType("fake_analysis")

    class Result:
        def __init__(self, kwargs):
            self.kwargs = kwargs

        def to_dict(self):
            return {"kwargs": {k: v for k, v in self.kwargs.items() if k != "data"}}

    def run(model, env, *, n_trials: int, seed: int, alpha: float = 1.0, data=None):
        calls.append({"n_trials": n_trials, "seed": seed, "alpha": alpha, "data": data})
        return Result({"n_trials": n_trials, "alpha": alpha})

    def plot_fake(result, out_dir):
        return []

    module.run, module.plot_fake = run, plot_fake
    monkeypatch.setitem(sys.modules, "fake_analysis", module)
    add_row(
        AnalysisRow(
            "fake", "fake_analysis:run", "fake_analysis:plot_fake", "Fake", "fake.json", ("fake",)
        )
    )


def test_section_settings_reach_run_under_their_names(monkeypatch, add_row, tmp_path):
    calls: list = []
    _fake_module(monkeypatch, add_row, calls)
    session = cli._Session(
        _FakeRun({"trials": 5, "fake": {"alpha": 3.0, "trials": 7}}),
        tmp_path,
        seed=2,
        trials=None,
        human={},
    )
    written = session.run("fake")
    assert calls == [{"n_trials": 7, "seed": 2, "alpha": 3.0, "data": None}]
    assert json.loads(written[0].read_text()) == {"kwargs": {"n_trials": 7, "alpha": 3.0}}
    # --trials wins over the section; without a section, analysis.trials applies.
    cli._Session(
        _FakeRun({"trials": 5, "fake": {"alpha": 2.0, "trials": 7}}),
        tmp_path,
        seed=0,
        trials=9,
        human={},
    ).run("fake")
    cli._Session(_FakeRun({"trials": 5}), tmp_path, seed=0, trials=None, human={}).run("fake")
    assert [c["n_trials"] for c in calls[1:]] == [9, 5]


def test_a_setting_run_does_not_take_is_named(monkeypatch, add_row, tmp_path):
    _fake_module(monkeypatch, add_row, [])
    session = cli._Session(_FakeRun({"fake": {"beta": 1}}), tmp_path, seed=0, trials=3, human={})
    with pytest.raises(RuntimeError, match=r"analysis\.fake\.beta: not a setting"):
        session.run("fake")


def test_behavioural_analyses_share_one_simulation(tiny_run, monkeypatch, capsys):
    import analysis.core.trials

    calls = []
    original = analysis.core.trials.model_errors

    def counting(*args, **kwargs):
        calls.append(kwargs.get("n_trials"))
        return original(*args, **kwargs)

    monkeypatch.setattr(analysis.core.trials, "model_errors", counting)
    code = cli.main(
        [str(tiny_run), "--only", "errors,mixture,human", "--trials", "8", "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    assert calls == [8]
    errors = json.loads((tiny_run / "analysis" / "errors.json").read_text())
    mixture_json = json.loads((tiny_run / "analysis" / "mixture.json").read_text())
    # the same trials: as many errors at set size 3 in both files
    assert errors["per_set_size"]["3"]["n"] == mixture_json["3"]["n_trials"] == 8 * 3


def test_unavailable_analysis_is_skipped_with_its_reason(tiny_run, monkeypatch, add_row, capsys):
    calls: list = []
    _fake_module(monkeypatch, add_row, calls)
    sys.modules["fake_analysis"].unavailable = lambda model, env: "fake: needs a unicorn"
    code = cli.main([str(tiny_run), "--only", "fake", "--trials", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and not calls
    assert "fake: needs a unicorn (skipped)" in out.splitlines()


def test_report_is_written_when_the_module_exists(tiny_run, monkeypatch, capsys):
    from types import ModuleType

    report = ModuleType("analysis.report")
    report.write_report = lambda run_dir: run_dir / "report.html"
    monkeypatch.setitem(sys.modules, "analysis.report", report)
    assert cli.main([str(tiny_run), "--only", "errors", "--trials", "2", "--no-progress"]) == 0
    assert f"report: {tiny_run / 'report.html'}" in capsys.readouterr().out


def test_missing_report_module_is_tolerated(tiny_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "analysis.report", None)  # import raises ModuleNotFoundError
    assert cli.main([str(tiny_run), "--only", "errors", "--trials", "2", "--no-progress"]) == 0
    assert "report:" not in capsys.readouterr().out

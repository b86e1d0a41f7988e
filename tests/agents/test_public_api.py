"""The public API of vwm_agents: its runnable examples, the old module paths, old run directories.

The examples (``>>>``) of the functions a user calls first are run here with doctest; old
top-level module paths fail with one line naming the new place; a run directory written by
version 0.1 (``tests/fixtures/old_n6item1PI1gamma0.05rad``: config, history, metrics and both
checkpoints, written by the code before the models/ and training/ packages) loads and resumes.
"""

from __future__ import annotations

import doctest
import importlib
import shutil
import sys
from pathlib import Path

import pytest
import torch

import vwm_agents
from vwm_agents import RunDir, load_config, load_run, train
from vwm_agents.training import api, losses, rundir

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "old_n6item1PI1gamma0.05rad"


@pytest.mark.parametrize(
    "target",
    [
        vwm_agents,
        vwm_agents.load_config,
        api.train,
        vwm_agents.load_run,
        vwm_agents.build_agent,
        rundir.RunDir,
        losses.activity_penalty,
    ],
    ids=lambda t: getattr(t, "__qualname__", getattr(t, "__name__", "")),
)
def test_examples_run(target, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write go to temporary directories anyway
    finder = doctest.DocTestFinder(recurse=False)
    tests = finder.find(
        target, getattr(target, "__name__", "example"), globs={"__name__": "example"}
    )
    examples = [test for test in tests if test.examples]
    assert examples, f"{target} has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in examples:
        runner.run(test)
    assert runner.failures == 0


def test_public_names_are_the_functions_of_their_packages():
    from vwm_agents.config import load_config as config_load
    from vwm_agents.models import build_agent as models_build
    from vwm_agents.training.run import load_run as run_load

    assert load_config is config_load and vwm_agents.build_agent is models_build
    assert load_run is run_load
    assert set(vwm_agents.__all__) >= {"load_config", "train", "load_run", "build_agent", "RunDir"}


def test_train_is_the_command_line_module_and_the_function(tmp_path):
    """``python -m vwm_agents.train`` and ``vwm_agents.train(config)`` are one object."""
    import vwm_agents.train as cli

    assert train is cli and vwm_agents.train is cli and callable(cli.main)


@pytest.mark.parametrize("old", sorted(vwm_agents.MOVED_MODULES))
def test_old_module_paths_fail_with_one_line_naming_the_new_place(old):
    new = vwm_agents.MOVED_MODULES[old]
    assert importlib.util.find_spec(new) is not None
    with pytest.raises(ImportError) as info:
        importlib.import_module(f"vwm_agents.{old}")
    message = str(info.value)
    assert "\n" not in message and new in message and f"vwm_agents.{old}" in message
    with pytest.raises(ImportError, match=new.replace(".", r"\.")):
        exec(f"from vwm_agents import {old}", {})
    with pytest.raises(AttributeError, match=new.replace(".", r"\.")):
        getattr(vwm_agents, old)


def test_the_users_scripts_of_version_0_1_fail_in_one_line():
    for line, new in (
        ("from vwm_agents.run import load_run", "vwm_agents.training.run"),
        ("from vwm_agents.trainer import train", "vwm_agents.training.trainer"),
    ):
        with pytest.raises(ImportError, match=new.replace(".", r"\.")):
            exec(line, {})
    assert "vwm_agents.run" not in sys.modules and "vwm_agents.trainer" not in sys.modules


def test_run_directory_of_version_0_1_loads_through_the_public_loader():
    run = load_run(FIXTURE)
    assert (run.checkpoint, run.iteration) == ("best", 4)
    assert load_run(FIXTURE, checkpoint="latest").iteration == 4
    assert [r["iteration"] for r in RunDir(FIXTURE).read_history()] == [2, 4]
    assert RunDir(FIXTURE).read_metrics()["checkpoint"] == "best"
    # the weights as version 0.1 saw them: its outputs on a fixed input, noise off
    ob = torch.linspace(0, 1, 2 * 14 * 3).view(2, 14, 3)
    outputs, rates = run.model(ob, noise=False)
    assert outputs.double().sum().item() == pytest.approx(0.14396549121011049, rel=1e-5)
    assert rates.double().sum().item() == pytest.approx(1.2555127829546109, rel=1e-5)


def test_run_directory_of_version_0_1_resumes(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / FIXTURE.name)
    config = load_config(FIXTURE / "config.yaml", ["training.num_iterations=6"])
    run_dir = train(config, tmp_path, resume=True)
    assert run_dir == tmp_path / FIXTURE.name
    assert [r["iteration"] for r in RunDir(run_dir).read_history()] == [2, 4, 6]
    assert RunDir(run_dir).load_checkpoint("latest")["iteration"] == 6


def test_run_dir_decides_fresh_or_resume_once_for_runs_and_ensembles(tmp_path):
    from vwm_agents import RunDirError

    config = load_config(FIXTURE / "config.yaml")
    run = RunDir(tmp_path / "run")
    assert run.start(config, resume=False) == [None]
    with pytest.raises(RunDirError, match="nothing to resume \\(no such run directory\\)"):
        run.start(config, resume=True)
    members = [(run.member(seed), config) for seed in (0, 1)]
    assert run.start(config, members, resume=False) == [None, None]
    run.member(1).write_config(config)
    with pytest.raises(RunDirError, match="a run of this name exists"):
        run.start(config, members, resume=False)
    with pytest.raises(RunDirError, match="nothing to resume \\(no config.yaml\\)"):
        run.start(config, members, resume=True)
    run.write_config(config)
    # member 0 was killed before its first checkpoint: afresh; member 1 has only its config
    assert run.start(config, members, resume=True) == [None, None]
    with pytest.raises(RunDirError, match="cannot resume with a different training.seed"):
        run.start(config.with_value("training.seed", 7), members, resume=True)
    with pytest.raises(
        RunDirError,
        match=f"an ensemble run; load one of its members \\(seed_1\\), e.g. {run.member(1)}",
    ):
        load_run(run.path)

"""Opening a run directory imports only the toolkit's own code unless the user opts in.

A run trained with ``agent.name: package.module:Class`` (the user's own choice on the command
line: allowed) records that name; loading the directory later (``load_run``, ``python -m
analysis RUN``) refuses it with one line naming the key and ``trust_code`` / ``--trust-code``,
before anything is imported; a resume imports only what the user's own config names.
"""

from __future__ import annotations

import sys

import pytest
import yaml
from agent_test_support import tiny_overrides

from vwm_agents import RunDirError, load_config, load_run, train
from vwm_agents.training.rundir import foreign_code

MODULE = """
from pathlib import Path

from vwm_agents.models import DaleRNN

Path(__file__).with_name("imported.marker").write_text("the module ran")


class Agent(DaleRNN):
    pass
"""
SMALL = tiny_overrides({"agent.n_neurons": 8, "training.num_iterations": 2})


@pytest.fixture
def foreign_run(tmp_path, monkeypatch):
    """A run of ``shared_agent:Agent`` (a module that leaves a marker file when imported),
    with the module forgotten again, as in a fresh process of whoever receives the run."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "shared_agent.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(code))
    run_dir = train(
        load_config(overrides=[*SMALL, "agent.name=shared_agent:Agent"]), tmp_path / "runs"
    )
    marker = code / "imported.marker"
    assert marker.exists()  # training from the user's own config imported it: allowed
    marker.unlink()
    sys.modules.pop("shared_agent", None)
    yield run_dir, marker
    sys.modules.pop("shared_agent", None)


def test_load_run_refuses_foreign_code_without_importing_it(foreign_run):
    run_dir, marker = foreign_run
    with pytest.raises(
        RunDirError,
        match=r"agent\.name: 'shared_agent:Agent' would import code "
        r"from outside vwm-rnn.*trust_code=True \(--trust-code\)",
    ):
        load_run(run_dir)
    assert not marker.exists()
    loaded = load_run(run_dir, trust_code=True)
    assert type(loaded.model).__name__ == "Agent" and marker.exists()


def test_the_analysis_command_line_names_the_flag(foreign_run, capsys):
    from analysis.__main__ import main

    run_dir, marker = foreign_run
    assert main([str(run_dir), "--only", "performance", "--trials", "8", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--trust-code" in err[0] and "agent.name" in err[0], err
    assert not marker.exists()


def test_resume_imports_only_what_the_users_config_names(foreign_run):
    run_dir, marker = foreign_run
    own = load_config(overrides=[*SMALL, "training.num_iterations=3"])
    with pytest.raises(
        RunDirError, match=r"different agent\.name .*shared_agent:Agent.*not imported"
    ):
        train(own.with_value("logging.run_name", "default"), run_dir.parent, resume=True)
    # the same run under the name the user's config gives it: its saved config names other code
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    saved["agent"]["name"] = "dale_rnn"
    assert not foreign_code(saved) and foreign_code(
        yaml.safe_load((run_dir / "config.yaml").read_text())
    ) == ["agent.name: 'shared_agent:Agent'"]
    assert not marker.exists()


def test_toolkit_runs_load_without_the_flag(tmp_path):
    run_dir = train(load_config(overrides=SMALL), tmp_path)
    assert load_run(run_dir).iteration >= 1
    assert foreign_code({"agent": {"name": "gru"}, "task": {"id": "VWMRecall-v0"}}) == []
    assert foreign_code({"task": {"id": "pkg.envs:Env-v0"}}) == ["task.id: 'pkg.envs:Env-v0'"]

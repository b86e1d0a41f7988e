"""``python -m analysis RUN_DIR`` on any agent and any task: every analysis writes its results and
figures or says in one line why it cannot run; nothing ends in a traceback.

Runs (trained a few iterations in the session fixtures, seconds): a GRU on VWMRecall-v0, and our
DaleRNN on neurogym's DelayMatchSample-v0.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import analysis.__main__ as cli
from analysis import registry

pytestmark = pytest.mark.slow  # trains models or starts Ray: minutes of the suite

VWM_SPECIFIC = ("errors", "mixture", "human", "snr", "selectivity")
"""Analyses about items, set sizes and reported angles: skipped on other tasks."""


def _run_cli(run_dir: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    done = subprocess.run(
        [sys.executable, "-m", "analysis", str(copy), "--trials", "12", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return done, copy


def _lines(done: subprocess.CompletedProcess) -> dict[str, str]:
    """analysis name -> its one line (results, skip reason or error)."""
    out = {}
    for line in (done.stdout + done.stderr).splitlines():
        match = re.match(r"(?:error: )?([a-z_]+): (.*)$", line)
        if match and match.group(1) in registry.ANALYSES:
            assert match.group(1) not in out, f"two lines for {match.group(1)}: {line}"
            out[match.group(1)] = line
    return out


def _check_every_analysis(done: subprocess.CompletedProcess, run_dir: Path) -> dict[str, str]:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    lines = _lines(done)
    assert set(lines) == set(registry.ANALYSES), output
    for name, line in lines.items():
        assert not line.startswith("error:"), line
        if line.endswith("(skipped)"):
            continue
        data = json.loads((run_dir / "analysis" / registry.ANALYSES[name].json_name).read_text())
        assert data, name
        files = line.split(": ", 1)[1].rsplit(" (", 1)[0].split(", ")
        pngs = [f for f in files if f.endswith(".png")]
        assert pngs, f"{name} wrote no figure: {line}"
        for png in pngs:
            assert (run_dir / "analysis" / png).stat().st_size > 1000, png
    assert done.returncode == 0, output
    return lines


def test_gru_on_vwm_recall(gru_vwm_run_dir, tmp_path):
    done, run_dir = _run_cli(gru_vwm_run_dir, tmp_path)
    lines = _check_every_analysis(done, run_dir)
    for name in ("errors", "mixture", "human", "performance"):
        assert not lines[name].endswith("(skipped)"), lines[name]
    human = json.loads((run_dir / "analysis" / "human_comparison.json").read_text())
    assert human["distance"]["total"] > 0
    performance = json.loads((run_dir / "analysis" / "performance.json").read_text())
    assert performance["metric"] == "mse"


def test_dale_rnn_on_delay_match_sample(dale_dms_run_dir, tmp_path):
    done, run_dir = _run_cli(dale_dms_run_dir, tmp_path)
    lines = _check_every_analysis(done, run_dir)
    for name in VWM_SPECIFIC:
        assert lines[name] == (
            f"{name}: needs a VWM recall task; this run trained DelayMatchSample-v0 (skipped)"
        )
    performance = json.loads((run_dir / "analysis" / "performance.json").read_text())
    assert performance["task"] == "DelayMatchSample-v0"
    assert set(performance["by_condition"]["ground_truth"]) == {"1", "2"}
    assert 0.0 <= performance["score"] <= 1.0


@pytest.mark.parametrize("only", ["snr", "errors,performance"])
def test_explicitly_requested_analysis_is_skipped_not_failed(
    dale_dms_run_dir, tmp_path, only, capsys
):
    copy = tmp_path / "run"
    shutil.copytree(dale_dms_run_dir, copy)
    code = cli.main([str(copy), "--only", only, "--trials", "8", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    first = only.split(",")[0]
    assert (
        f"{first}: needs a VWM recall task; this run trained DelayMatchSample-v0 (skipped)"
        in out.splitlines()
    )

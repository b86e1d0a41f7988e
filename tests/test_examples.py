"""The examples run as written: the quickstart notebook (nbclient) and the plug-in script.

Both run shrunk to seconds (the notebook through ``VWM_QUICKSTART_TINY=1``, the script through
``--tiny``), so they never go stale without costing CI minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains models or starts Ray: minutes of the suite

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")
    shutil.copy(EXAMPLES / "quickstart.ipynb", tmp_path)
    notebook = nbformat.read(tmp_path / "quickstart.ipynb", as_version=4)
    monkeypatch.setenv("VWM_QUICKSTART_TINY", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any failure

    run_dir = tmp_path / "runs" / "quickstart"
    [run] = [p for p in run_dir.iterdir() if (p / "metrics.json").is_file()]
    assert (run / "report.html").is_file()
    for name in ("errors.json", "human_comparison.json", "snr.json"):
        assert (run / "analysis" / name).is_file(), name
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # figures were drawn inline (the task, the training curves, the set-size curve, two PNGs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "tiny test mode" in text and "set size 1: model" in text and "exit status 0" in text


def test_custom_agent_and_task_script_runs(tmp_path):
    out = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "custom_agent_and_task.py"), "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = {p.name.split("_n")[0]: p for p in out.iterdir() if p.is_dir()}
    assert set(runs) == {"lstm_on_vwm", "dale_on_comparison"}
    # the user's agent trained on our task, with the behavioural analyses and a report
    lstm = runs["lstm_on_vwm"]
    config = (lstm / "config.yaml").read_text()
    assert "__main__:LSTMAgent" in config
    assert set(json.loads((lstm / "metrics.json").read_text())["per_set_size"]) == {"1", "2", "3"}
    assert (lstm / "analysis" / "human_comparison.json").is_file()
    # our agent trained on the user's task (discrete actions: accuracy)
    dale = runs["dale_on_comparison"]
    metrics = json.loads((dale / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert "OrientationComparison-v0" in (dale / "config.yaml").read_text()
    for name in ("performance.json", "trajectories.json", "weights.json"):
        assert (dale / "analysis" / name).is_file(), name
    for run in runs.values():
        assert (run / "report.html").is_file()
        assert f"report: {run / 'report.html'}" in result.stdout
    # the set-size curve against people only where there are set sizes
    assert ">Set size: model against people</h2>" in (lstm / "report.html").read_text()
    assert "Set size" not in (dale / "report.html").read_text()

"""``python -m analysis.fit_table``: fits a CSV of behaviour; malformed files give one clear error."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis import fit_table as fit
from analysis.behaviour.synthetic import simulate_swap_responses
from analysis.human.data import read_behaviour_csv

KAPPA, P_SWAP, P_GUESS = 8.0, 0.15, 0.2


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def swap_csv(tmp_path_factory) -> Path:
    """Set sizes 1 and 3 from the swap model, as orientations in degrees (period 180)."""
    rng = np.random.default_rng(0)
    rows = []
    for set_size, n in ((1, 1000), (3, 1500)):
        errors, nontarget_errors = simulate_swap_responses(
            rng,
            n,
            kappa=KAPPA,
            p_nontarget=P_SWAP if set_size > 1 else 0.0,
            p_guess=P_GUESS,
            set_size=set_size,
        )
        target_full = rng.uniform(-np.pi, np.pi, n)
        response_full = target_full + errors
        nontarget_full = response_full[:, None] - nontarget_errors
        # Full circle -> orientation degrees in [0, 180): halve, then mod 180.
        to_deg = lambda a: np.mod(np.rad2deg(a) / 2.0, 180.0)  # noqa: E731
        for i in range(n):
            nts = [f"{v:.6f}" for v in to_deg(nontarget_full[i])] + [""] * (3 - set_size)
            rows.append(
                [
                    set_size,
                    f"{to_deg(target_full[i]):.6f}",
                    f"{to_deg(response_full[i]):.6f}",
                    *nts[:2],
                ]
            )
    return _write(
        tmp_path_factory.mktemp("fit") / "data.csv",
        ["set_size", "target", "response", "nontarget_1", "nontarget_2"],
        rows,
    )


def test_fit_cli_recovers_parameters(swap_csv, tmp_path, capsys):
    out = tmp_path / "out"
    code = fit.main([str(swap_csv), "--units", "deg", "--space", "orientation", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "mixture.json").read_text())
    assert set(result) == {"1", "3"}
    assert result["3"]["n_trials"] == 1500
    swap = result["3"]["swap"]
    # n = 1500: SEs ~ 0.02 on the weights, ~6% on kappa (test_mixture.py); allow ~3 SE.
    assert swap["kappa"] == pytest.approx(KAPPA, rel=0.2)
    assert swap["p_nontarget"] == pytest.approx(P_SWAP, abs=0.05)
    assert swap["p_guess"] == pytest.approx(P_GUESS, abs=0.05)
    assert result["1"]["swap"]["p_nontarget"] == 0.0
    # n = 1000: SE of g is 0.016 (SD over 20 seeds 0.026 at n = 400); 0.05 is ~3 SE.
    assert result["1"]["vm_uniform"]["p_guess"] == pytest.approx(P_GUESS, abs=0.05)
    for name in (
        "mixture_parameters_vs_set_size.png",
        "mixture_fits_on_error_histograms.png",
        "errors.json",
    ):
        assert (out / name).is_file()
    assert "VM kappa" in capsys.readouterr().out


def test_space_and_units_are_applied(tmp_path):
    # 10 degrees of orientation = 20 degrees on the full circle = 0.349 rad.
    path = _write(tmp_path / "d.csv", ["set_size", "target", "response"], [[1, 175, 5]])
    data = read_behaviour_csv(path, units="deg", space="orientation")
    assert data.errors[0] == pytest.approx(np.deg2rad(20.0))
    data = read_behaviour_csv(path, units="deg", space="circle")
    assert data.errors[0] == pytest.approx(np.deg2rad(-170.0))
    path = _write(tmp_path / "r.csv", ["set_size", "target", "response"], [[1, 3.0, -3.0]])
    data = read_behaviour_csv(path, units="rad")
    assert data.errors[0] == pytest.approx(-6.0 + 2 * np.pi)
    assert data.nontarget_errors is None


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (["set_size", "target"], [[1, 0.1]], "missing column 'response'"),
        (
            ["set_size", "target", "response"],
            [[1, 0.1, 0.2], [2, "abc", 0.1]],
            "row 2, column 'target': 'abc' is not a number",
        ),
        (
            ["set_size", "target", "response"],
            [[1.5, 0.1, 0.2]],
            "row 1, column 'set_size': must be an integer",
        ),
        (
            ["set_size", "target", "response", "nontarget_1"],
            [[3, 0.1, 0.2, 0.3]],
            "row 1, column 'set_size': set size 3 needs nontarget_1..nontarget_2",
        ),
        (
            ["set_size", "target", "response", "nontarget_1", "nontarget_2"],
            [[2, 0.1, 0.2, 0.3, 0.4]],
            "row 1, column 'nontarget_2': set size 2 has 1 non-targets",
        ),
        (
            ["set_size", "target", "response", "nontarget_1", "nontarget_2"],
            [[3, 0.1, 0.2, 0.3, ""]],
            "row 1, column 'nontarget_2': an empty cell is not a number",
        ),
        (["set_size", "target", "response", "nontarget_2"], [[1, 0.1, 0.2, ""]], "without gaps"),
        (["set_size", "target", "response"], [], "no data rows"),
        (
            ["participant", "set_size", "target", "response"],
            [["a", 1, 0.1, 0.2], ["", 1, 0, 0]],
            "row 2, column 'participant': empty cell",
        ),
    ],
)
def test_malformed_files(tmp_path, capsys, header, rows, message):
    path = _write(tmp_path / "bad.csv", header, rows)
    assert fit.main([str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "mixture.json").exists()


def test_missing_file(tmp_path, capsys):
    assert fit.main([str(tmp_path / "nope.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    path = _write(tmp_path / "bad.csv", ["set_size", "response"], [[1, 0.1]])
    run = subprocess.run(
        [sys.executable, "-m", "analysis.fit_table", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "missing column 'target'" in run.stderr


def _people_csv(tmp_path: Path, participants: int = 3, trials: int = 150) -> Path:
    """Participants of different precision at set sizes 1-3, orientations in degrees."""
    rng = np.random.default_rng(11)
    rows = []
    for p in range(participants):
        for set_size, kappa in ((1, 12.0), (2, 6.0), (3, 3.0)):
            errors = rng.vonmises(0.0, kappa * (1 + 0.3 * p), trials)
            target = rng.uniform(0, 180, trials)
            response = np.mod(target + np.rad2deg(errors) / 2, 180)
            rows += [
                [f"P{p}", set_size, f"{t:.5f}", f"{r:.5f}"]
                for t, r in zip(target, response, strict=True)
            ]
    return _write(tmp_path / "people.csv", ["participant", "set_size", "target", "response"], rows)


def test_participant_column_gives_participants(tmp_path):
    data = read_behaviour_csv(_people_csv(tmp_path), units="deg", space="orientation")
    trials = data.to_trials()
    assert trials.participants == ["P0", "P1", "P2"]
    assert trials.errors.size == 3 * 3 * 150
    # Orientation degrees doubled onto the full circle: the kappa-12 errors are small.
    first = (trials.participant == "P0") & (trials.set_size == 1)
    assert np.mean(np.abs(trials.errors[first])) < 0.35


def test_analysis_cli_compares_with_a_csv_target(gru_vwm_run_dir, tmp_path):
    """Any data set in this CSV format is a target of the human comparison and its distance,
    with SEs over its participants."""
    import shutil

    import analysis.__main__ as cli

    run_dir = tmp_path / "run"
    shutil.copytree(gru_vwm_run_dir, run_dir)
    target = _people_csv(tmp_path)
    code = cli.main(
        [
            str(run_dir),
            "--only",
            "human",
            "--trials",
            "20",
            "--human-data",
            str(target),
            "--human-units",
            "deg",
            "--human-space",
            "orientation",
            "--no-progress",
        ]
    )
    assert code == 0
    result = json.loads((run_dir / "analysis" / "human_comparison.json").read_text())
    assert result["set_sizes"] == [1, 2, 3]
    assert result["n_participants"] == 3
    distance = result["distance"]
    assert distance["target"] == str(target)
    assert distance["se_source"] == "between participants"
    assert [row["set_size"] for row in distance["per_set_size"]] == [1, 2, 3]
    assert len(result["human_se"]["mae"]) == 3

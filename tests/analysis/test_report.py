"""The HTML reports: self-contained, every figure captioned, tables from any JSON, the CLI."""

from __future__ import annotations

import base64
import csv
import html
import json
import re
import shutil
from pathlib import Path

import pytest

from analysis.report import CAPTIONS, ReportError, write_report, write_sweep_report
from analysis.report.__main__ import main as report_main
from analysis.report._summary import summarise
from analysis.report.run_report import set_size_curve


@pytest.fixture(scope="module")
def analysed_run(trained_run_dir, tmp_path_factory) -> Path:
    """A copy of the trained fixture run with every analysis run on it (few trials)."""
    from analysis.__main__ import main as analyse

    run_dir = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(trained_run_dir, run_dir)
    analyse([str(run_dir), "--trials", "40", "--no-progress"])  # failures show as missing files
    return run_dir


def _figures(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "analysis").glob("*.png"))


def test_every_figure_the_analyses_draw_has_a_caption(analysed_run):
    stems = [p.stem for p in _figures(analysed_run)]
    assert len(stems) >= 8
    missing = sorted(set(stems) - set(CAPTIONS))
    assert missing == [], f"figures without a caption in analysis.report.captions: {missing}"


def test_report_embeds_every_figure_with_its_caption_and_fetches_nothing(analysed_run):
    path = write_report(analysed_run)
    assert path == analysed_run / "report.html"
    text = path.read_text()
    for figure in _figures(analysed_run):
        assert base64.b64encode(figure.read_bytes()).decode() in text, figure.name
        caption = CAPTIONS[figure.stem]
        assert all(html.escape(line) in text for line in (caption.title, caption.what, caption.how))
    assert "No caption" not in text
    # self-contained: every src/href is inline data or an anchor in the page
    targets = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert targets and all(t.startswith(("data:", "#")) for t in targets), sorted(
        {t[:40] for t in targets if not t.startswith(("data:", "#"))}
    )
    assert "http://" not in text and "https://" not in text
    # the run's config, its metrics and each analysis' section are there
    config = (analysed_run / "config.yaml").read_text()
    assert "n_neurons" in config and '<td class="k">n_neurons</td>' in text
    metrics = json.loads((analysed_run / "metrics.json").read_text())
    assert f"<td>{metrics['iteration']}</td>" in text
    for section in (
        "Error statistics",
        "Mixture models",
        "Signal-to-noise ratio",
        "Fixed points",
        "Training",
        "Set size: model against people",
    ):
        assert f">{section}</h2>" in text


def test_figure_without_a_caption_still_appears_with_a_note(analysed_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(analysed_run, run_dir)
    shutil.copy(_figures(run_dir)[0], run_dir / "analysis" / "zz_new_view.png")
    text = write_report(run_dir).read_text()
    assert 'No caption for figure "zz_new_view"' in text
    assert text.count("No caption") == 1


def test_set_size_curve_is_the_errors_analysis_beside_people(analysed_run):
    curve = set_size_curve(analysed_run)
    errors = json.loads((analysed_run / "analysis" / "errors.json").read_text())
    per_size = errors.get("per_set_size", errors)
    assert curve.set_sizes == list(range(1, 9))  # the model's 1-3 and people's 1-8
    assert curve.model[:3] == [per_size[str(n)]["mae"] for n in (1, 2, 3)]
    assert curve.model[3:] == [None] * 5
    assert all(h is not None for h in curve.human)
    # people's MAE rises with set size (van den Berg et al. 2012)
    assert all(a < b for a, b in zip(curve.human, curve.human[1:], strict=False))


def test_report_of_a_run_without_analyses(trained_run_dir, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run_dir, run_dir, ignore=shutil.ignore_patterns("analysis", "*.html"))
    text = write_report(run_dir).read_text()
    assert "No analysis results yet" in text
    assert (
        'alt="training_history"' in text and 'alt="mae_vs_set_size_model_people_controls"' in text
    )
    # the set-size curve falls back on metrics.json's held-out evaluation
    assert "test batch (metrics.json)" in text


def test_summarise_tabulates_set_size_maps_and_names_what_it_leaves_out():
    data = {
        "seed": 3,
        "slope": -9.5,
        "per_set_size": {
            "2": {"n": 10, "fit": {"kappa": 4.0, "p_guess": 0.1}, "hist": list(range(50))},
            "1": {"n": 10, "fit": {"kappa": 8.0, "p_guess": 0.0}, "hist": list(range(50))},
        },
        "points": [[0.1, 0.2]] * 20,
        "ci": [0.1, 0.3],
    }
    summary = summarise(data, "x")
    by_title = {t.title: t for t in summary.tables}
    assert by_title["x"].rows == [["seed", 3], ["slope", -9.5], ["ci", [0.1, 0.3]]]
    assert by_title["per_set_size"].rows == [["1", 10], ["2", 10]]  # sorted as numbers
    fit = by_title["per_set_size (fit)"]
    assert fit.headers == ["per_set_size", "kappa", "p_guess"]
    assert fit.rows == [["1", 8.0, 0.0], ["2", 4.0, 0.1]]
    assert "points (list of 20)" in summary.omitted
    assert "per_set_size[*].hist (list of 50)" in summary.omitted


def test_summarise_turns_lists_per_set_size_into_rows():
    data = {
        "set_sizes": [1, 2, 4],
        "model": {"mae": [0.1, 0.2, 0.4], "sd": [0.2, 0.3, 0.5]},
        "histogram": {"model": list(range(36)), "human": list(range(36))},
    }
    summary = summarise(data, "cmp")
    [model] = [t for t in summary.tables if t.title == "model"]
    assert model.headers == ["set size", "mae", "sd"]
    assert model.rows == [[1, 0.1, 0.2], [2, 0.2, 0.3], [4, 0.4, 0.5]]
    # columns longer than a table should hold are named instead
    assert not [t for t in summary.tables if t.title.startswith("histogram")]
    assert "histogram.model (list of 36)" in summary.omitted


def test_cli_writes_the_report_and_refuses_other_folders(analysed_run, tmp_path, capsys):
    (analysed_run / "report.html").unlink(missing_ok=True)
    assert report_main([str(analysed_run)]) == 0
    assert (analysed_run / "report.html").is_file()
    assert capsys.readouterr().out.strip() == str(analysed_run / "report.html")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report_main([str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a run directory" in err and err.count("\n") == 1
    assert list(empty.iterdir()) == []
    assert report_main([str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(ReportError):
        write_report(empty)


def test_sweep_report_links_trial_reports_it_writes(analysed_run, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    shutil.copytree(analysed_run, sweep / "t0", ignore=shutil.ignore_patterns("*.html"))
    shutil.copy(_figures(analysed_run)[0], sweep / "sweep_error_vs_set_size.png")
    with (sweep / "sweep_results.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "agent.n_neurons", "status", "error", "run_dir"])
        writer.writerow(["t0", 48, "ok", 0.12, "t0"])
        writer.writerow(["t1", 64, "error", "", "t1"])
    assert report_main([str(sweep)]) == 0
    assert capsys.readouterr().out.strip() == str(sweep / "sweep_report.html")
    text = (sweep / "sweep_report.html").read_text()
    assert (sweep / "t0" / "report.html").is_file()
    assert '<a href="t0/report.html">t0</a>' in text
    assert "t1" in text and "t1/report.html" not in text
    assert '<table class="sortable">' in text and "<script>" in text
    assert html.escape(CAPTIONS["sweep_error_vs_set_size"].what) in text
    assert not re.search(r'(?:src|href)="(?:https?:)?//', text)
    (sweep / "t0" / "report.html").unlink()
    write_sweep_report(sweep, trial_reports=False)
    assert "t0/report.html" not in (sweep / "sweep_report.html").read_text()


def test_ensemble_run_links_a_report_per_member(trained_run_dir, tmp_path):
    parent = tmp_path / "ensemble"
    parent.mkdir()
    shutil.copy(trained_run_dir / "config.yaml", parent / "config.yaml")
    for member in ("seed_0", "seed_1"):
        shutil.copytree(
            trained_run_dir, parent / member, ignore=shutil.ignore_patterns("analysis", "*.html")
        )
    text = write_report(parent).read_text()
    for member in ("seed_0", "seed_1"):
        assert (parent / member / "report.html").is_file()
        assert f'<a href="{member}/report.html">{member}</a>' in text


def test_config_table_shows_the_trials_the_analyses_used(analysed_run):
    # the fixture ran with --trials 40; config.yaml says analysis.trials 1000
    page = html.unescape((write_report(analysed_run)).read_text())
    assert "1000 in config.yaml; used: 40" in page
    used = json.loads((analysed_run / "analysis" / "settings_used.json").read_text())
    assert used["errors"]["n_trials"] == 40 and used["fixed_points"]["n_init"] == 20
    assert "analysis settings as used" in page

"""The HTML reports in a real browser: headless Chromium driven over the DevTools protocol
(tests/browser.py).

The run report of a small trained run must load with no console error and no request leaving the
file, every image must decode, and its screenshot must show a drawn page (not a blank one); it
must lead with the set-size curve and the findings, then the figures, the tables and the config;
the sweep report must lead with its best trials and the swept parameter's figure, and its table
must sort by clicking a header. Without a Chromium binary the tests are skipped, with the reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from browser import DevTools, browser  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def reported_run(trained_run_dir, tmp_path_factory) -> Path:
    """A copy of the trained fixture run with three analyses (their figures) and its report."""
    from analysis.__main__ import main as analyse
    from analysis.report import write_report

    run_dir = tmp_path_factory.mktemp("browser") / "run"
    shutil.copytree(trained_run_dir, run_dir)
    assert (
        analyse(
            [str(run_dir), "--only", "errors,snr,selectivity", "--trials", "40", "--no-progress"]
        )
        == 0
    )
    write_report(run_dir)
    return run_dir


def _loaded(browser: DevTools, page: Path) -> str:
    return browser.open(page.resolve().as_uri())


def test_run_report_loads_without_errors_and_every_image_decodes(browser, reported_run):
    report = reported_run / "report.html"
    session = _loaded(browser, report)
    assert browser.errors() == []
    foreign = [u for u in browser.requests() if not u.startswith(("data:", report.as_uri()))]
    assert foreign == [], "the report fetched something besides itself"
    images = browser.evaluate(
        session,
        """
        Promise.all(Array.from(document.images).map(img => img.decode().then(
            () => [img.alt, img.naturalWidth, img.naturalHeight],
            () => [img.alt, -1, -1])))""",
    )
    figures = sorted(p.stem for p in (reported_run / "analysis").glob("*.png"))
    assert len(figures) >= 5
    # every analysis figure, the training curves and the set-size curve are on the page
    assert sorted(alt for alt, *_ in images) == sorted(
        [*figures, "training_history", "mae_vs_set_size_model_people_controls"]
    )
    assert all(width > 0 and height > 0 for _, width, height in images), images
    assert browser.evaluate(session, "document.querySelectorAll('table').length") >= 5


def test_run_report_leads_with_the_finding_and_ends_with_the_config(browser, reported_run):
    """Set-size curve against people (with the untrained network and chance), then one line per
    analysis, then the figures, then the raw tables, and the config last, as rendered."""
    session = _loaded(browser, reported_run / "report.html")
    order = browser.evaluate(
        session, "Array.from(document.querySelectorAll('main > section')).map(s => s.id)"
    )
    assert order[:3] == ["sec-setsize", "sec-findings", "sec-training"], order
    assert order[-2:] == ["sec-tables", "sec-config"], order
    assert order[3:-2] == ["sec-errors", "sec-snr", "sec-selectivity"], order
    first_image = browser.evaluate(session, "document.images[0].alt")
    assert first_image == "mae_vs_set_size_model_people_controls"
    findings = browser.evaluate(
        session,
        "Array.from(document.querySelectorAll('#sec-findings li')).map(li => li.textContent)",
    )
    assert [line.split(":")[0] for line in findings] == [
        "Error statistics",
        "Signal-to-noise ratio",
        "Mixed selectivity",
    ]
    errors = json.loads((reported_run / "analysis" / "errors.json").read_text())
    mae = errors["per_set_size"]["1"]["mae"]
    assert f"MAE {mae:.2f}" in findings[0] and "untrained network" in findings[0], findings[0]
    # no figure before the findings, no raw table before the figures
    tops = browser.evaluate(
        session,
        """(() => { const top = e => e.getBoundingClientRect().top + window.scrollY;
        return {findings: top(document.querySelector('#sec-findings')),
                figures: Array.from(document.querySelectorAll('figure')).map(top),
                tables: top(document.querySelector('#sec-tables')),
                config: top(document.querySelector('#sec-config'))}; })()""",
    )
    assert sum(y < tops["findings"] for y in tops["figures"]) == 1  # the set-size curve only
    assert max(tops["figures"]) < tops["tables"] < tops["config"]


def test_run_report_screenshot_is_drawn(browser, reported_run):
    session = _loaded(browser, reported_run / "report.html")
    page = browser.screenshot(session)
    assert page.shape == (900, 1200, 3)
    grey = page.mean(axis=2)
    # text and tables on a white page: a clear share of dark pixels and a spread of levels
    assert (grey < 128).mean() > 0.005
    assert grey.std() > 10
    # the first analysis figure, scrolled to: a plot has coloured lines or markers, not just grey
    box = browser.evaluate(
        session,
        """(() => {
        const img = document.querySelector('#fig-snr_db_vs_set_size img');
        img.scrollIntoView(); const r = img.getBoundingClientRect();
        return {x: r.left + window.scrollX, y: r.top + window.scrollY,
                width: r.width, height: r.height}; })()""",
    )
    assert box["width"] > 100 and box["height"] > 100
    figure = browser.screenshot(session, clip=box)
    saturation = figure.max(axis=2) - figure.min(axis=2)
    assert (saturation > 60).mean() > 0.002, "the figure's area shows no coloured pixels"
    assert figure.mean(axis=2).std() > 10


def test_sweep_report_sorts_by_clicked_header_and_links_trials(browser, reported_run, tmp_path):
    import csv

    from analysis.report import write_sweep_report
    from vwm_agents.sweep.results import ErrorCurve
    from vwm_agents.training.plotting import plot_sweep_error_vs_set_size

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    shutil.copytree(reported_run, sweep / "trial_b")
    rows = [
        {"trial": "a", "status": "ok", "error": "0.3", "run_dir": "missing_a"},
        {"trial": "b", "status": "ok", "error": "0.1", "run_dir": "trial_b"},
        {"trial": "c", "status": "error", "error": "", "run_dir": "missing_c"},
        {"trial": "d", "status": "ok", "error": "1.2e-2", "run_dir": "missing_d"},
    ]
    with (sweep / "sweep_results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    curves = [ErrorCurve({}, [1, 2], [0.2, 0.4], [0.01, 0.02], [2, 2])]
    plot_sweep_error_vs_set_size(curves, sweep)
    report = write_sweep_report(sweep)
    session = _loaded(browser, report)
    assert browser.errors() == []
    # it leads with the best finished trials (lowest error first), then the swept parameter's
    # figure, then the table of all trials
    order = browser.evaluate(
        session, "Array.from(document.querySelectorAll('main > section')).map(s => s.id)"
    )
    assert order == ["sec-best", "sec-figures", "sec-results"], order
    best = """Array.from(document.querySelectorAll('#sec-best tbody tr'))
              .map(r => r.cells[0].textContent)"""
    assert browser.evaluate(session, best) == ["d", "b", "a"]
    assert browser.evaluate(session, "document.images[0].alt") == "sweep_error_vs_set_size"
    column = """Array.from(document.querySelectorAll('table.sortable tbody tr'))
                .map(r => r.cells[0].textContent)"""
    click = "document.querySelectorAll('table.sortable th')[{}].click()"
    assert browser.evaluate(session, column) == ["a", "b", "c", "d"]
    browser.evaluate(session, click.format(2))  # error, ascending; empty cells last
    assert browser.evaluate(session, column) == ["d", "b", "a", "c"]
    browser.evaluate(session, click.format(2))  # descending
    assert browser.evaluate(session, column) == ["a", "b", "d", "c"]
    browser.evaluate(session, click.format(0))
    assert browser.evaluate(session, column) == ["a", "b", "c", "d"]
    links = browser.evaluate(
        session,
        "Array.from(document.querySelectorAll('table.sortable tbody a'))"
        ".map(a => [a.textContent, a.href])",
    )
    assert links == [["b", (sweep / "trial_b" / "report.html").as_uri()]]
    assert browser.errors() == []

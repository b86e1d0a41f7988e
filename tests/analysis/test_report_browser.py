"""The HTML reports in a real browser: headless Chromium driven over the DevTools protocol
(tests/browser.py).

The run report of a small trained run must load with no console error and no request leaving the
file, every image must decode, and its screenshot must show a drawn page (not a blank one); the
sweep report's table must sort by clicking a header. Without a Chromium binary the tests are
skipped, with the reason.
"""

from __future__ import annotations

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
        [*figures, "training_history", "set_size_vs_people"]
    )
    assert all(width > 0 and height > 0 for _, width, height in images), images
    assert browser.evaluate(session, "document.querySelectorAll('table').length") >= 5


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
        const img = document.querySelector('#fig-snr_vs_set_size img');
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
    report = write_sweep_report(sweep)
    session = _loaded(browser, report)
    assert browser.errors() == []
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
        "Array.from(document.querySelectorAll('tbody a')).map(a => [a.textContent, a.href])",
    )
    assert links == [["b", (sweep / "trial_b" / "report.html").as_uri()]]
    assert browser.errors() == []

"""The documentation site builds, strictly, and shows what it promises.

``mkdocs build --strict`` (``mkdocs.yml``: no broken link or anchor, no missing reference, no page
outside the navigation) into a temporary folder; the pages the hook generates (the config key
reference, one API page per package, the notebook) hold what the code has; and the built front
page and an API page load in headless Chromium (tests/browser.py), served over HTTP as
``mkdocs serve`` does: rendered, with their navigation, no console error and nothing fetched from
another host. The fenced blocks of the pages run in tests/test_readme.py. Skipped, with the reason,
where MkDocs is not installed (the ``[docs]`` extra installs it; CI does).
"""

from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from browser import DevTools, browser  # noqa: F401 (a fixture)

REPO = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 600


def _require_mkdocs() -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip('MkDocs is not installed: pip install -e ".[docs]" installs the site\'s tools')


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once with ``mkdocs build --strict`` into a temporary folder."""
    _require_mkdocs()
    site = tmp_path_factory.mktemp("site")
    start = time.perf_counter()
    done = _mkdocs_build(REPO / "mkdocs.yml", site)
    print(f"mkdocs build --strict: {time.perf_counter() - start:.1f} s")
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-5000:]}"
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert not warnings, warnings
    return site


def _text(page: Path) -> str:
    """The visible text of a built page's article (tags dropped, entities decoded)."""
    source = page.read_text()
    article = source[source.index("<article") : source.index("</article>")]
    return html.unescape(re.sub(r"<[^>]+>", " ", article))


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    items = nav.values() if isinstance(nav, dict) else nav
    return [page for item in items for page in _nav_pages(item)]


def _built(site: Path, page: str) -> Path:
    """The HTML file of a page (``use_directory_urls``: ``task.md`` -> ``task/index.html``)."""
    stem = page.rsplit(".", 1)[0]
    return site / ("index.html" if stem == "index" else f"{stem}/index.html")


def _hook():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_page_of_the_navigation_and_every_generated_page_is_built(site):
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    pages = _nav_pages(nav)
    assert "examples/quickstart.ipynb" in pages and "reference/config.md" in pages
    hook = _hook()
    packages = hook.api_packages()
    assert {"vwm_tasks", "vwm_agents", "vwm_agents.training", "analysis.neural"} <= set(packages)
    for page in pages + [hook.api_path(package) for package in packages]:
        assert _built(site, page).is_file(), page
    # the navigation of every page lists the API pages the hook appended
    front = (site / "index.html").read_text()
    for package in packages:
        assert f'href="reference/api/{package}/"' in front, package


def test_the_api_pages_document_every_public_module(site):
    hook = _hook()
    for package, modules in hook.api_packages().items():
        page = _built(site, hook.api_path(package)).read_text()
        for name in [package, *modules]:
            assert f'id="{name}"' in page, f"{name}: no section on the API page of {package}"
    # docstrings are rendered, doctest examples as code
    training = _built(site, hook.api_path("vwm_agents.training")).read_text()
    assert 'id="vwm_agents.training.run.load_run"' in training
    assert '<span class="gp">&gt;&gt;&gt; </span>' in training  # a highlighted prompt
    # Sphinx roles show as the code of their target, not as ":func:`name`"
    # (the package's docstring: ":func:`load_run` rebuilds a finished run")
    assert ":func:`" not in training and ":mod:`" not in training
    assert "<code>load_run</code> rebuilds a finished run" in training


def test_the_config_reference_lists_every_key_with_its_default(site):
    from vwm_agents.config import Config

    text = _text(site / "reference" / "config" / "index.html")
    config = Config.from_dict({})

    def keys(data: dict, prefix: str):
        for key, value in data.items():
            if isinstance(value, dict):
                yield from keys(value, f"{prefix}.{key}")
            else:
                yield f"{prefix}.{key}", value

    for section in ("training", "logging", "analysis"):
        for key, _ in keys(getattr(config, section).to_dict(), section):
            assert key in text, f"{key}: not in the config reference"
    # the env's and the built-in agents' keyword arguments, from their constructors
    for key in ("task.max_items", "task.ilc_noise", "agent.n_neurons", "agent.n_hidden"):
        assert key in text, key
    # one row in full: key, default, what it accepts, what it means
    assert re.search(
        r"training\.num_iterations\s+50000\s+an integer >= 1\s+optimiser steps", text
    ), "the row of training.num_iterations"
    assert "a number > 0 and < 1" in text  # training.lr_factor, the angle brackets kept


def test_the_notebook_is_a_page(site):
    text = _text(_built(site, "examples/quickstart.ipynb"))
    assert "from vwm_agents import" in text
    assert "## Train" not in text and "Train" in text  # markdown cells rendered, not shown raw


def test_strict_mode_fails_on_a_broken_link_and_a_page_outside_the_navigation(tmp_path):
    """The control of the build test: our validation settings, on a two-page site."""
    _require_mkdocs()
    ours = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[a page that is not there](missing.md)\n")
    (docs / "orphan.md").write_text("# Not in the navigation\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "site_name": "control",
                "strict": ours["strict"],
                "validation": ours["validation"],
                "nav": ["index.md"],
            }
        )
    )
    done = _mkdocs_build(config, tmp_path / "site")
    assert done.returncode != 0
    assert "missing.md" in done.stderr and "orphan.md" in done.stderr


# ------------------------------------------------------------------------------- in a browser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test's output is the assertions'
        pass


@pytest.fixture(scope="module")
def served(site):
    """The built site over HTTP on a free local port, as ``mkdocs serve`` shows it."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _check_page(browser: DevTools, url: str, base: str) -> str:
    """Open ``url``; assert no console error, nothing fetched from elsewhere, the navigation
    there and a drawn page; return the session."""
    session = browser.open(url)
    assert browser.errors() == [], url
    foreign = [u for u in browser.requests() if not u.startswith((base, "data:", "blob:"))]
    assert foreign == [], f"{url} fetched from another host"
    nav_links = browser.evaluate(
        session, "Array.from(document.querySelectorAll('nav.md-nav--primary a')).length"
    )
    assert nav_links >= 20, f"{url}: {nav_links} navigation links"
    page = browser.screenshot(session)
    grey = page.mean(axis=2)
    assert (grey < 128).mean() > 0.005 and grey.std() > 10, f"{url}: a blank page"
    return session


def test_the_front_page_renders_in_a_browser(browser, served):
    session = _check_page(browser, f"{served}/", served)
    title = "document.querySelector('article h1').firstChild.textContent"  # less the permalink
    assert browser.evaluate(session, title) == "vwm-rnn"
    # the navigation's entries reach every section of the manual and the API reference
    titles = browser.evaluate(
        session,
        "Array.from(document.querySelectorAll('nav.md-nav--primary a'))"
        ".map(a => a.textContent.trim())",
    )
    for title in ("Getting started", "The task", "Analyses", "Config key reference", "vwm_tasks"):
        assert title in titles, title
    assert browser.evaluate(session, "document.querySelectorAll('article table').length") >= 1


def test_an_api_page_renders_in_a_browser(browser, served):
    session = _check_page(browser, f"{served}/reference/api/vwm_agents/", served)
    headings = browser.evaluate(
        session, "Array.from(document.querySelectorAll('.doc-heading')).map(h => h.id)"
    )
    assert "vwm_agents.train" in headings and len(headings) >= 5, headings
    # a signature is rendered as highlighted code
    assert browser.evaluate(session, "document.querySelectorAll('.doc-signature').length") >= 1

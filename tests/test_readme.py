"""The examples of README.md and of the documentation site's pages run: every fenced block, in
order, as a reader would type them.

The documents are README.md, then the pages of ``docs/`` in the order of the site's navigation
(``mkdocs.yml``), all in one scratch folder, so that a page's analysis command finds the run that
an earlier block trained. A command that an earlier block already ran (the same words) is not
run again: the pages repeat commands of the README.

Blocks are classified by their language tag:

* ``bash`` / ``sh`` / ``console`` / ``shell``: commands, run in a scratch folder (with ``configs``
  linked in and a small ``data.csv`` for ``python -m analysis.fit_table``). Training, analysis and sweep
  commands are shrunk (SHRINK below): the test appends size-shrinking options, so a 2,500-iteration
  training takes two iterations. ``pip install`` and ``python -m pytest`` are what CI itself runs
  before and as this suite (``.ci/run``): they are checked, not run; ``python benchmarks/...``
  scripts are checked with ``--help`` (timings are not tests).
* ``yaml``: a training config (trained, shrunk) or a sweep file (run on Ray, shrunk: grids cut to
  their first value, the comparison with people to a few trials).
* ``python``: a snippet, run in a fresh interpreter.
* ``text``, ``json``, ``csv``, ``markdown``: shown, not run.

A block that cannot run in CI carries an explicit marker on the line before it,
``<!-- not run: REASON -->``; it is reported as skipped with that reason. A block without a
language tag, an indented code block or a dangling marker fails the test: new examples get run
too.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"

COMMAND_LANGS = ("bash", "sh", "shell", "console")
CONFIG_LANGS = ("yaml", "yml")
PYTHON_LANGS = ("python", "py")
SHOWN_LANGS = ("text", "json", "csv", "markdown", "md")

MARKER = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.+?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")

# What each command gets appended (the last value of a repeated option wins). Training overrides
# keep the run's name (it holds N, K, noise and loss, not iterations or batch sizes), so that the
# analysis commands find the run the training commands made.
TRAIN_SHRINK = {
    "training.num_iterations": 2,
    "training.batch_size": 8,
    "training.eval_batch_size": 8,
    "training.threads": 1,
    "logging.period": 1,
}
ANALYSIS_SHRINK = ["--trials", "24", "--no-progress"]
TIMEOUT_S = 600


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    not_run: str | None  # the marker's reason
    source: str = "README.md"  # the document, relative to the repository

    @property
    def name(self) -> str:
        return f"{self.source}:{self.line}:{self.lang or 'untagged'}"


def _nav_pages(nav) -> list[str]:
    """The Markdown pages of an mkdocs navigation (nested lists and mappings), in order."""
    if isinstance(nav, str):
        return [nav] if nav.endswith(".md") else []
    items = nav.values() if isinstance(nav, dict) else nav
    return [page for item in items for page in _nav_pages(item)]


def documents() -> list[Path]:
    """README.md, then the site's pages in navigation order (pages outside it last, though the
    strict build of tests/test_docs.py fails on them)."""
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    ordered = [DOCS / page for page in _nav_pages(nav) if (DOCS / page).is_file()]
    rest = sorted(set(DOCS.rglob("*.md")) - set(ordered))
    return [README, *ordered, *rest]


def readme_blocks(text: str, source: str = "README.md") -> tuple[list[Block], list[int]]:
    """Fenced blocks of a markdown text, and the lines of markers not followed by a block."""
    lines = text.splitlines()
    blocks, dangling = [], []
    i = 0
    pending_marker: tuple[int, str] | None = None
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        fence = FENCE.match(line)
        if marker:
            if pending_marker:
                dangling.append(pending_marker[0])
            pending_marker = (i + 1, marker["reason"])
        elif fence:
            close = re.compile(rf"^ {{0,3}}{fence['fence'][0]}{{{len(fence['fence'])},}}\s*$")
            end = i + 1
            while end < len(lines) and not close.match(lines[end]):
                end += 1
            lang = fence["info"].strip().split(" ")[0].lower() if fence["info"].strip() else ""
            body = "\n".join(lines[i + 1 : end])
            reason = pending_marker[1] if pending_marker else None
            blocks.append(Block(i + 1, lang, body, reason, source))
            pending_marker = None
            i = end
        elif line.strip() and pending_marker:
            dangling.append(pending_marker[0])
            pending_marker = None
        i += 1
    if pending_marker:
        dangling.append(pending_marker[0])
    return blocks, dangling


def indented_code_blocks(text: str) -> list[int]:
    """Lines where an indented (unfenced) code block starts, outside lists and fences."""
    found, in_fence, previous, in_list = [], False, "", False
    fence_char = None
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if fence and (not in_fence or fence["fence"][0] == fence_char):
            in_fence, fence_char = (not in_fence), fence["fence"][0]
            previous = line
            continue
        if in_fence:
            continue
        if re.match(r"^\s*([-*+]|\d+[.)])\s", line):
            in_list = True
        elif line.strip() and not line.startswith(" "):
            in_list = False
        if line.startswith("    ") and line.strip() and not previous.strip() and not in_list:
            found.append(number)
        previous = line
    return found


def _all_blocks() -> tuple[list[Block], list[str]]:
    blocks, dangling = [], []
    for path in documents():
        source = str(path.relative_to(REPO))
        found, lines = readme_blocks(path.read_text(), source)
        blocks += found
        dangling += [f"{source}:{line}" for line in lines]
    return blocks, dangling


BLOCKS, DANGLING = _all_blocks()


def test_the_documents_are_the_readme_and_every_page_in_navigation_order():
    paths = documents()
    assert paths[0] == README
    pages = [str(p.relative_to(DOCS)) for p in paths[1:]]
    assert pages[:2] == ["index.md", "getting-started.md"]
    assert {"model.md", "human_fit.md", "analyses.md", "training.md"} <= set(pages)
    assert len(pages) == len(set(pages)) == len(list(DOCS.rglob("*.md")))


def test_every_block_is_tagged_and_markers_belong_to_blocks():
    untagged = [b.name for b in BLOCKS if not b.lang]
    unknown = [
        b.name
        for b in BLOCKS
        if b.lang and b.lang not in COMMAND_LANGS + CONFIG_LANGS + PYTHON_LANGS + SHOWN_LANGS
    ]
    assert not untagged, f"give these blocks a language tag (bash, yaml, python, text): {untagged}"
    assert not unknown, f"tests/test_readme.py does not know how to run: {unknown}"
    assert not DANGLING, f"{DANGLING}: a 'not run' marker with no block after it"
    # The documents show commands, configs and code; the test must have found them, the README's
    # among them.
    kinds = {b.lang for b in BLOCKS}
    assert kinds & set(COMMAND_LANGS) and kinds & set(CONFIG_LANGS) and kinds & set(PYTHON_LANGS)
    assert {b.lang for b in BLOCKS if b.source == "README.md"} & set(COMMAND_LANGS)


README_MAX_LINES = 150
README_SECTIONS = (
    "## Model and people",
    "## Set up (two commands)",
    "## A short tour",
    "## Documentation",
    "## Licence and citation",
)


def test_the_readme_is_a_front_page_that_links_into_the_site():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES, "the manual belongs on the site's pages"
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert [h for h in headings if h in README_SECTIONS] == list(README_SECTIONS), headings
    # every link to a file reaches one, and every page of the site's navigation is linked
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert [t for t in local if not (REPO / t).is_file()] == [], "links to missing files"
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    pages = [f"docs/{p}" for p in _nav_pages(nav) if (DOCS / p).is_file() and p != "index.md"]
    assert sorted(set(pages) - set(local)) == [], "pages of the site the README does not link"
    # the model against people, with the figure the README's reading describes
    assert "![model vs people](docs/human_fit/human_comparison.png)" in text


def test_the_readme_sets_up_with_two_commands_and_ci_runs_its_test_command():
    section = README.read_text().split("## Set up (two commands)")[1].split("\n## ")[0]
    blocks, _ = readme_blocks(section)
    assert [b.text for b in blocks] == [
        "pip install -e . && python -m vwm_agents.train",
        'pip install -e ".[test,sweep,docs]" && python -m pytest -q',
    ]
    ci_lines = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == blocks[1].text, ".ci/run must end with exactly the README's test command"


def test_no_indented_code_blocks():
    found = {
        str(path.relative_to(REPO)): lines
        for path in documents()
        if (lines := indented_code_blocks(path.read_text()))
    }
    assert not found, (
        f"{found}: indented code blocks are not run by the tests; use a fenced block with a "
        "language tag (text for equations)"
    )


def test_the_parser_sees_markers_fences_and_indented_blocks():
    text = "\n".join(
        [
            "Intro",
            "",
            "```bash",
            "echo 1",
            "```",
            "",
            "<!-- not run: needs a cluster -->",
            "~~~yaml",
            "a: 1",
            "~~~",
            "",
            "    indented code",
            "",
            "- item",
            "",
            "    continued",
            "",
            "<!-- not run: nothing after -->",
            "",
            "text",
        ]
    )
    blocks, dangling = readme_blocks(text)
    assert [(b.line, b.lang, b.text, b.not_run) for b in blocks] == [
        (3, "bash", "echo 1", None),
        (8, "yaml", "a: 1", "needs a cluster"),
    ]
    assert dangling == [18]
    assert indented_code_blocks(text) == [12]


# ---------------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A reader's folder: the repo's configs, and a small delayed-estimation table as data.csv."""
    work = tmp_path_factory.mktemp("readme")
    (work / "configs").symlink_to(REPO / "configs", target_is_directory=True)
    rng = np.random.default_rng(0)
    rows = ["set_size,target,response,nontarget_1"]
    for n in (1, 2) * 60:
        target, other = rng.uniform(0, 180, 2)
        response = (target + rng.normal(0, 8)) % 180
        rows.append(
            f"{n},{target:.1f},{response:.1f},{other:.1f}"
            if n == 2
            else f"{n},{target:.1f},{response:.1f},"
        )
    (work / "data.csv").write_text("\n".join(rows) + "\n")
    return work


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _run(argv: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    assert done.returncode == 0, (
        f"{what}\n$ {shlex.join(argv)}\nexit {done.returncode}\n{done.stderr[-3000:]}"
    )
    return done


def _schema_has(key: str) -> bool:
    from vwm_agents.config import Config

    section, _, field = key.partition(".")
    return hasattr(getattr(Config.from_dict({}), section, None), field)


def _train_shrink() -> list[str]:
    args = []
    for key, value in TRAIN_SHRINK.items():
        if _schema_has(key):  # the schema may rename a key; shrink what exists
            args += ["--set", f"{key}={value}"]
    return args


def _python(argv: list[str]) -> list[str]:
    if argv[0] == "torchrun":  # this interpreter's torchrun
        return [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    return [sys.executable, *argv[1:]] if argv[0] in ("python", "python3") else argv


def _is_torchrun_training(argv: list[str]) -> bool:
    return argv[0] == "torchrun" and any(
        argv[i : i + 2] == ["-m", "vwm_agents.train"] for i in range(len(argv) - 1)
    )


def _train(argv: list[str], cwd: Path, what: str) -> None:
    """Run a training command; earlier runs of the same name give way, others stay visible."""
    runs = cwd / "runs"
    aside = cwd / ".runs_before"
    if runs.is_dir() and "--resume" not in argv:
        runs.rename(aside)
    try:
        _run(_python(argv) + _train_shrink(), cwd, what)
    finally:
        if aside.is_dir():
            runs.mkdir(exist_ok=True)
            for old in aside.iterdir():
                if not (runs / old.name).exists():
                    old.rename(runs / old.name)
            shutil.rmtree(aside)


def _shrunk_sweep(source: Path, target: Path) -> Path:
    spec = yaml.safe_load(source.read_text())
    spec.setdefault("set", {})
    spec["set"] = {
        **(spec["set"] or {}),
        **{k: v for k, v in TRAIN_SHRINK.items() if _schema_has(k)},
    }
    spec["grid"] = {key: values[:1] for key, values in (spec.get("grid") or {}).items()}
    if isinstance(spec.get("trials"), list):
        spec["trials"] = spec["trials"][:1]
    if isinstance(spec.get("human"), dict):  # the comparison with people: a few trials
        spec["human"] = {**spec["human"], "trials": int(ANALYSIS_SHRINK[1])}
    target.write_text(yaml.safe_dump(spec))
    return target


def _sweep(argv: list[str], cwd: Path, what: str) -> None:
    """Run a sweep command on a shrunk copy of its sweep file (a path or a shipped name)."""
    args = argv[3:]
    positional = [
        i
        for i, a in enumerate(args)
        if not a.startswith("-") and (i == 0 or not args[i - 1].startswith("--"))
    ]
    if positional:
        i = positional[0]
        source = cwd / args[i]
        if not source.is_file():
            source = REPO / "configs" / "sweeps" / f"{args[i]}.yaml"
        assert source.is_file(), f"{what}: no sweep file {args[i]!r}"
        args[i] = str(_shrunk_sweep(source, cwd / f"shrunk_{source.name}"))
    _run([sys.executable, "-m", "vwm_agents.sweep", *args, "--quiet"], cwd, what)


def _check_pip(argv: list[str], what: str) -> None:
    """pip installs are CI's own set-up (.ci/run); check that the extras named exist."""
    setup = (REPO / "setup.cfg").read_text()
    for arg in argv[2:]:
        match = re.fullmatch(r"-e|\.|\.\[(?P<extras>[\w,-]+)\]", arg)
        assert match, f"{what}: tests/test_readme.py does not know pip argument {arg!r}"
        for extra in filter(None, (match["extras"] or "").split(",")):
            assert re.search(rf"^{extra}\s*=", setup, re.M), f"{what}: setup.cfg has no [{extra}]"


def _commands(text: str) -> list[list[str]]:
    """Shell lines (continuations joined, comments dropped) split at ``&&`` into argv lists."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:cut])
            words = words[cut + 1 :]
    return [c for c in commands if c]


def run_command(argv: list[str], cwd: Path, what: str) -> None:
    module = (
        argv[2] if len(argv) > 2 and argv[0] in ("python", "python3") and argv[1] == "-m" else None
    )
    if argv[:2] == ["pip", "install"]:
        _check_pip(argv, what)
    elif module == "pytest":
        ci = (REPO / ".ci" / "run").read_text()
        assert shlex.join(argv) in ci or " ".join(argv) in ci, f"{what}: .ci/run must run {argv}"
    elif module == "vwm_agents.train" or _is_torchrun_training(argv):
        _train(argv, cwd, what)  # shrunk: batch_size 8 divides among the examples' processes
    elif module in ("analysis", "analysis.__main__"):
        _run(_python(argv) + ANALYSIS_SHRINK, cwd, what)
    elif module == "vwm_agents.sweep":
        _sweep(argv, cwd, what)
    elif len(argv) > 1 and argv[0] in ("python", "python3") and argv[1].startswith("benchmarks/"):
        # Benchmarks time minutes of work by design: CI checks that the script and its options
        # parse (--help), the timings themselves are not a test.
        script = REPO / argv[1]
        assert script.is_file(), f"{what}: no {argv[1]}"
        _run([sys.executable, str(script), "--help"], cwd, what)
    else:  # anything else runs as shown
        _run(["bash", "-c", shlex.join(argv)], cwd, what)


def run_yaml(block: Block, cwd: Path) -> None:
    spec = yaml.safe_load(block.text)
    assert isinstance(spec, dict), f"{block.name}: a YAML block must be a mapping"
    path = cwd / f"{Path(block.source).stem}_{block.line}.yaml"
    path.write_text(block.text + "\n")
    if "grid" in spec or "base" in spec:
        _sweep(["python", "-m", "vwm_agents.sweep", path.name], cwd, block.name)
    else:
        _train(["python", "-m", "vwm_agents.train", "--config", path.name], cwd, block.name)


@pytest.fixture(scope="module")
def already_run() -> dict[str, str]:
    """Commands run so far (their words) -> the block that ran them."""
    return {}


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_document_block_runs(block: Block, workdir: Path, already_run: dict[str, str]):
    if block.not_run:
        pytest.skip(f"not run: {block.not_run}")
    if block.lang in SHOWN_LANGS:
        pytest.skip(f"{block.lang} block: shown, not run")
    if block.lang in COMMAND_LANGS:
        text = block.text
        if block.lang == "console":  # commands after "$ ", the rest is their output
            text = "\n".join(line[2:] for line in text.splitlines() if line.startswith("$ "))
        commands = _commands(text)
        new = [argv for argv in commands if shlex.join(argv) not in already_run]
        for argv in new:
            run_command(argv, workdir, f"{block.name}: {shlex.join(argv)}")
            already_run[shlex.join(argv)] = block.name
        if not new:
            earlier = sorted({already_run[shlex.join(argv)] for argv in commands})
            pytest.skip(f"every command already ran, in {', '.join(earlier)}")
    elif block.lang in CONFIG_LANGS:
        run_yaml(block, workdir)
    elif block.lang in PYTHON_LANGS:
        path = workdir / f"{Path(block.source).stem}_{block.line}.py"
        path.write_text(block.text + "\n")
        _run([sys.executable, path.name], workdir, block.name)
    else:
        pytest.fail(f"{block.name}: untagged or unknown block")

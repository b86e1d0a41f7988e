"""MkDocs hook: the pages generated from the code at every build, so that they cannot drift.

* ``reference/config.md``: every config key with its default, what it accepts and its meaning,
  read from the schema (``vwm_agents.config.schema``: the ``training`` and ``logging`` sections;
  the ``analysis`` section as the config builds it, from ``analysis.registry``), and the keyword
  arguments of the default task and of the built-in agents, read from their constructors.
* ``reference/api/<package>.md``: one API page per package (mkdocstrings ``:::`` of the package
  and of each of its public modules), and their entries in the navigation under "API reference".
* ``examples/quickstart.ipynb``: the example notebook, rendered (not executed) by mkdocs-jupyter.

It also shows the docstrings' doctest examples (``>>>`` lines and their output) as code blocks,
which Markdown would otherwise run together into a paragraph, and their Sphinx roles
(``:func:`name```) as the code span of the name.

``mkdocs.yml`` names this file under ``hooks:``; nothing here is imported by the packages.
"""

from __future__ import annotations

import html
import inspect
import re
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from markdown import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("vwm_tasks", "vwm_agents", "analysis")
NOTEBOOK = "examples/quickstart.ipynb"
API_SECTION = "API reference"
BUILT_IN_AGENTS = ("dale_rnn", "gru")


# ---------------------------------------------------------------------------------- API pages


def api_packages() -> dict[str, list[str]]:
    """Package -> its public modules (files not starting with ``_``), for every package under
    :data:`PACKAGES`, read from the source tree (nothing imported)."""
    found = {}
    for top in PACKAGES:
        for init in sorted((REPO / top).rglob("__init__.py")):
            folder = init.parent
            if any(part.startswith(("_", ".")) for part in folder.relative_to(REPO).parts):
                continue
            package = ".".join(folder.relative_to(REPO).parts)
            found[package] = [
                f"{package}.{path.stem}"
                for path in sorted(folder.glob("*.py"))
                if not path.stem.startswith("_")
            ]
    return found


def api_page(package: str, modules: list[str]) -> str:
    blocks = [
        f"# `{package}`",
        "",
        f"::: {package}",
        "    options:",
        "      show_root_heading: false",
    ]
    for module in modules:
        blocks += ["", f"::: {module}"]
    return "\n".join(blocks) + "\n"


def api_path(package: str) -> str:
    return f"reference/api/{package}.md"


# ---------------------------------------------------------------------------- config reference


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    import yaml

    shown = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    return f"`{_cell(shown)}`"


def section_rows(section: type, prefix: str) -> list[tuple[str, str, str, str]]:
    """(key, default, accepts, meaning) of every key of a schema section, sub-sections after
    the section's own keys."""
    rows, children = [], []
    for f in fields(section):
        if "section" in f.metadata:
            children.append((f.name, f.metadata["section"]))
            continue
        spec, doc = f.metadata["spec"], f.metadata["doc"]
        default = f.default if f.default is not MISSING else f.default_factory()
        # plain text: "<" and ">" (in "< 1", "cuda:<index>") must not read as HTML tags
        words = html.escape(spec.describe(), quote=False), html.escape(doc, quote=False)
        rows.append((f"`{prefix}.{f.name}`", _code(default), *words))
    for name, child in children:
        rows += section_rows(child, f"{prefix}.{name}")
    return rows


def kwargs_rows(init: Any, prefix: str, skip: tuple[str, ...]) -> list[tuple[str, str]]:
    """(key, default) of a constructor's keyword arguments."""
    rows = []
    for name, parameter in inspect.signature(init).parameters.items():
        if name in skip or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = "(required)" if parameter.default is parameter.empty else parameter.default
        rows.append((f"`{prefix}.{name}`", _code(default) if default != "(required)" else default))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def config_reference() -> str:
    """The page ``reference/config.md``: every key the config accepts."""
    from vwm_agents.config.schema import (
        AgentConfig,
        LoggingConfig,
        TaskConfig,
        TrainingConfig,
        analysis_section,
    )
    from vwm_agents.models import resolve_agent

    header = ("key", "default", "accepts", "meaning")
    task = TaskConfig()
    lines = [
        "# Config key reference",
        "",
        "Generated from the schema (`vwm_agents/config/schema.py`; the `analysis` section from",
        "`analysis/registry.py`) and from the constructors of the default task and the built-in",
        "agents each time the site is built. A key left out takes the default shown here: the",
        "reference model's values (`configs/original.yaml` spells them out), which",
        "`configs/default.yaml` overrides for a CPU-sized run ([Training](../training.md)).",
        "",
        "## `task`",
        "",
        f"`task.id` (default `{task.id}`): any gymnasium id, or `package.module:EnvId`. Every",
        "other key is a keyword argument of that environment, checked against its constructor",
        f"when the config is loaded. Those of `{task.id}` "
        f"([`{task.env_class().__module__}.{task.env_class().__name__}`]"
        f"(api/{task.env_class().__module__.rpartition('.')[0]}.md)):",
        "",
        *_table(("key", "default"), kwargs_rows(task.env_class().__init__, "task", ("self",))),
        "",
        "## `agent`",
        "",
        f"`agent.name` (default `{AgentConfig().name}`): a built-in agent "
        f"({', '.join(f'`{a}`' for a in BUILT_IN_AGENTS)}) or `package.module:Class`. Every",
        "other key is a keyword argument of that class, checked against its constructor.",
    ]
    for name in BUILT_IN_AGENTS:
        agent = resolve_agent(name)
        page = f"api/{agent.__module__.rpartition('.')[0]}.md"
        lines += [
            "",
            f"### `{name}` ([`{agent.__module__}.{agent.__name__}`]({page}))",
            "",
            *_table(
                ("key", "default"),
                kwargs_rows(agent.__init__, "agent", ("self", "n_inputs", "n_outputs")),
            ),
        ]
    for title, section in (
        ("training", TrainingConfig),
        ("logging", LoggingConfig),
        ("analysis", analysis_section()),
    ):
        lines += ["", f"## `{title}`", "", *_table(header, section_rows(section, title))]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- doctests


class DoctestBlocks(Preprocessor):
    """A run of lines starting at a ``>>>`` line, up to the next blank line, outside fences,
    becomes a fenced ``pycon`` block."""

    FENCE = re.compile(r"^\s*(`{3,}|~{3,})")

    def run(self, lines: list[str]) -> list[str]:
        out, fence, i = [], None, 0
        while i < len(lines):
            line = lines[i]
            opening = self.FENCE.match(line)
            if opening and (fence is None or opening.group(1).startswith(fence)):
                fence = None if fence else opening.group(1)
            elif fence is None and line.lstrip().startswith(">>>"):
                indent = line[: len(line) - len(line.lstrip())]
                end = i
                while end < len(lines) and lines[end].strip():
                    end += 1
                out += ["", indent + "```pycon", *lines[i:end], indent + "```", ""]
                i = end
                continue
            out.append(line)
            i += 1
        return out


class SphinxRoles(Preprocessor):
    """Outside fences, a Sphinx role (``:func:`x```, ``:class:`~a.B```) becomes the code span
    of its target, and a line's closing ``::`` (reST: a literal block follows) one colon."""

    ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|exc|obj):`~?([^`]+)`")

    def run(self, lines: list[str]) -> list[str]:
        out, fence = [], None
        for line in lines:
            opening = DoctestBlocks.FENCE.match(line)
            if opening and (fence is None or opening.group(1).startswith(fence)):
                fence = None if fence else opening.group(1)
            elif fence is None:
                line = self.ROLE.sub(r"`\1`", line)
                if line.rstrip().endswith("::") and not line.lstrip().startswith("::"):
                    line = line.rstrip()[:-1]
            out.append(line)
        return out


class DoctestExtension(Extension):
    def extendMarkdown(self, md) -> None:  # noqa: N802 (Markdown's name)
        # before the fenced-code preprocessors (priority 25), which then render the block
        md.preprocessors.register(DoctestBlocks(md), "doctest_blocks", 27)
        md.preprocessors.register(SphinxRoles(md), "sphinx_roles", 26)


# ------------------------------------------------------------------------------------ events


@event_priority(100)  # before mkdocstrings reads the Markdown extensions for the docstrings
def on_config(config):
    """The doctest extension, and the API pages' entries appended to the navigation."""
    config.markdown_extensions.append(DoctestExtension())
    nav = config["nav"]
    if any(isinstance(item, dict) and API_SECTION in item for item in nav):
        raise ValueError(f"mkdocs.yml: the hook appends {API_SECTION!r}; leave it out of nav")
    nav.append({API_SECTION: [{package: api_path(package)} for package in api_packages()]})
    return config


@event_priority(100)  # before mkdocs-jupyter turns .ipynb files into pages
def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, "reference/config.md", content=config_reference()))
    for package, modules in api_packages().items():
        files.append(File.generated(config, api_path(package), content=api_page(package, modules)))
    # a real file under the repository root (not File.generated): mkdocs-jupyter reads the
    # notebook through the path computed from src_dir
    files.append(File(NOTEBOOK, str(REPO), config["site_dir"], config["use_directory_urls"]))
    return files

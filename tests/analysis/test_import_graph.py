"""The layering of ``analysis/``: no import cycle, compute never imports plotting.

Imports are read from the source with ``ast`` (module level and inside functions, ``import x``
and ``from x import y`` and relative forms), so a function-level import that closes a circle is
caught as well as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "analysis"
CLIS = {"analysis.__main__", "analysis.fit", "analysis.report"}
"""Entry points that pair each analysis' run with its plot (allowed to import plotting)."""


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str], package_dir: Path = PACKAGE) -> set[str]:
    """The ``analysis`` modules that ``path`` imports anywhere in its body."""
    name = _module_name(path, package_dir)
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from analysis import errors" imports the submodule analysis.errors
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        # A module's own ancestor packages are initialised before it by Python itself, so an
        # edge to one ("from analysis.report import _html" inside analysis.report.x) is no cycle.
        found.update(t for t in targets
                     if t in modules and t != name and not name.startswith(f"{t}."))
    return found


def _graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a list of nodes, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_import_parser_sees_function_level_and_relative_imports(tmp_path):
    probe = tmp_path / "analysis" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("def f():\n    from analysis.errors import run\n"
                     "from . import mixture\nimport analysis.human as h\nimport numpy\n")
    found = _imports(probe, {"analysis.errors", "analysis.mixture", "analysis.human",
                             "analysis.probe"}, probe.parent)
    assert found == {"analysis.errors", "analysis.mixture", "analysis.human"}


def test_analysis_has_no_import_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(m for m in _graph()
                                          if m not in CLIS and ".plotting" not in m))
def test_compute_modules_never_import_plotting(module):
    plotting = sorted(m for m in _graph()[module] if m.startswith("analysis.plotting"))
    assert not plotting, f"{module} imports {plotting}"


def test_layers_of_the_behavioural_analyses():
    """Data at the bottom, statistics above, the human comparison above those."""
    graph = _graph()
    bottom = {"analysis.circstats", "analysis.trials", "analysis.human_data"}
    for module in bottom:
        above = graph[module] - {"analysis.circstats"}
        assert not above, f"{module} (data layer) imports {sorted(above)}"
    for module in ("analysis.errors", "analysis.mixture"):
        assert not graph[module] & {"analysis.human", "analysis.distance"}, module
    assert "analysis.human" not in graph["analysis.distance"]

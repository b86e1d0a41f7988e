"""The package rules of ``analysis/``: no import cycle, compute never imports ``viz``, nothing
imports upward (the order is :data:`RANK`).

Imports are read from the source with ``ast`` (module level and inside functions, ``import x``
and ``from x import y`` and relative forms), so a function-level import that closes a circle is
caught as well as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "analysis"
RANK = {"core": 0, "behaviour": 1, "neural": 1, "human": 2, "viz": 3, "registry": 4,
        "report": 5, "__main__": 6, "fit_table": 6}
"""Each part of ``analysis`` (sub-package or top module) and its height: a module imports only
its own part and lower ones. ``registry`` names its targets as strings, so it imports none."""
COMPUTE = ("core", "behaviour", "neural", "human")
"""Parts that compute; they never import ``viz`` (the figures) or anything above it."""


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
            # "from analysis import errors" imports the submodule analysis.behaviour.errors
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
    probe = tmp_path / "analysis" / "behaviour" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from analysis.behaviour.errors import run\n"
                     "from . import mixture\nimport analysis.human.comparison as h\nimport numpy\n")
    found = _imports(probe, {"analysis.behaviour.errors", "analysis.behaviour.mixture",
                             "analysis.human.comparison", "analysis.behaviour.probe"},
                     probe.parent.parent)
    assert found == {"analysis.behaviour.errors", "analysis.behaviour.mixture",
                     "analysis.human.comparison"}


def _part(module: str) -> str | None:
    """``analysis.<part>[.x]`` -> part; None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_analysis_has_no_import_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_part_has_a_rank():
    unranked = sorted({_part(m) for m in _graph()} - set(RANK) - {None})
    assert not unranked, f"parts of analysis without a place in RANK: {unranked}"


@pytest.mark.parametrize("module", sorted(m for m in _graph() if _part(m) in COMPUTE))
def test_compute_never_imports_viz(module):
    viz = sorted(m for m in _graph()[module] if _part(m) == "viz")
    assert not viz, f"{module} imports {viz}"


def test_nothing_imports_upward():
    upward = [f"{module} -> {target}" for module, targets in _graph().items()
              for target in targets
              if _part(module) is not None and _part(target) is not None
              and RANK[_part(target)] > RANK[_part(module)]]
    assert not upward, "imports upward: " + "; ".join(sorted(upward))


def test_the_package_itself_imports_nothing_of_its_own():
    """``import analysis`` stays light: the topics load when used."""
    assert not _graph()["analysis"]


def test_data_at_the_bottom_of_the_behavioural_analyses():
    graph = _graph()
    for module in ("analysis.core.circstats", "analysis.core.trials", "analysis.human.data"):
        above = graph[module] - {"analysis.core", "analysis.core.circstats", "analysis.core.tasks"}
        assert not above, f"{module} (data layer) imports {sorted(above)}"
    assert "analysis.human.comparison" not in graph["analysis.human.distance"]

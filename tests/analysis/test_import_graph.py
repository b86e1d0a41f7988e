"""The package rules of ``analysis/``: no import cycle, compute never imports ``viz``, nothing
imports upward (the order is :data:`RANK`).

The graph is :mod:`import_graph`'s (tests/import_graph.py): imports deferred into functions,
``TYPE_CHECKING`` imports and relative imports all count, so a function-level import that closes a
circle is caught as well as a top-level one.
"""

from __future__ import annotations

import pytest
from import_graph import build_graph, find_cycle

RANK = {
    "core": 0,
    "behaviour": 1,
    "neural": 1,
    "human": 2,
    "viz": 3,
    "registry": 4,
    "report": 5,
    "__main__": 6,
    "fit_table": 6,
}
"""Each part of ``analysis`` (sub-package or top module) and its height: a module imports only
its own part and lower ones. ``registry`` names its targets as strings, so it imports none."""
COMPUTE = ("core", "behaviour", "neural", "human")
"""Parts that compute; they never import ``viz`` (the figures) or anything above it."""


def _graph() -> dict[str, set[str]]:
    return build_graph(("analysis",))


def _part(module: str) -> str | None:
    """``analysis.<part>[.x]`` -> part; None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_analysis_has_no_import_cycle():
    cycle = find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_part_has_a_rank():
    unranked = sorted({_part(m) for m in _graph()} - set(RANK) - {None})
    assert not unranked, f"parts of analysis without a place in RANK: {unranked}"


@pytest.mark.parametrize("module", sorted(m for m in _graph() if _part(m) in COMPUTE))
def test_compute_never_imports_viz(module):
    viz = sorted(m for m in _graph()[module] if _part(m) == "viz")
    assert not viz, f"{module} imports {viz}"


def test_nothing_imports_upward():
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _part(module) is not None
        and _part(target) is not None
        and RANK[_part(target)] > RANK[_part(module)]
    ]
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

"""No import circle anywhere, and imports flow one way between and inside the packages.

The graph comes from the source (:mod:`import_graph`): imports deferred into functions,
``TYPE_CHECKING`` imports and relative imports all count.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from import_graph import ROOT, build_graph, find_cycle, imported_names, in_package

GRAPH = build_graph()


def _imports_of(package: str, graph: dict[str, set[str]] = GRAPH) -> dict[str, set[str]]:
    return {module: targets for module, targets in graph.items() if in_package(module, package)}


def _offending(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        module: sorted(t for t in targets if any(in_package(t, f) for f in forbidden))
        for module, targets in _imports_of(package).items()
        if any(in_package(t, f) for t in targets for f in forbidden)
    }


def test_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_import_reader_sees_deferred_type_checking_and_relative_imports(tmp_path):
    probe = tmp_path / "pkg" / "sub" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.hinted import Thing\n"
        "def f():\n    from pkg.deferred import run\n"
        "from . import sibling\nfrom ..up import name\nimport pkg.plain as p\n"
    )
    found = imported_names(probe, tmp_path)
    assert {
        "pkg.hinted",
        "pkg.deferred",
        "pkg.sub.sibling",
        "pkg.up",
        "pkg.up.name",
        "pkg.plain",
    } <= found
    at_import = imported_names(probe, tmp_path, module_level_only=True)
    assert "pkg.hinted" not in at_import and "pkg.deferred" not in at_import
    assert {"pkg.sub.sibling", "pkg.plain"} <= at_import


def test_the_graph_covers_every_package():
    assert {
        "vwm_tasks.recall",
        "vwm_agents.training.trainer",
        "vwm_agents.models.euler",
        "vwm_agents.config.schema",
        "analysis.behaviour.errors",
    } <= set(GRAPH)


def test_no_import_cycle_in_the_repository():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("vwm_tasks", ("vwm_agents", "analysis")),
        ("vwm_agents", ("analysis",)),
        ("vwm_agents.models", ("vwm_agents.training", "vwm_agents.sweep", "vwm_agents.config")),
        ("vwm_agents.training", ("vwm_agents.sweep",)),
        ("vwm_agents.config", ("vwm_agents.training", "vwm_agents.sweep")),
    ],
)
def test_layering(package, forbidden):
    """tasks <- agents <- analysis; inside vwm_agents: models <- training <- sweep, config
    beside models (it resolves agent names through the models' registry, on demand)."""
    offending = _offending(package, forbidden)
    assert not offending, f"{package} must not import {forbidden}: {offending}"


def test_config_imports_neither_torch_nor_models_at_module_level():
    """Importing the config layer loads no torch (an agent's class, and torch with it, loads
    when a config names it and is validated)."""
    for path in sorted((ROOT / "vwm_agents" / "config").glob("*.py")):
        at_import = imported_names(path, module_level_only=True)
        heavy = sorted(
            n
            for n in at_import
            if in_package(n, "torch")
            or in_package(n, "vwm_agents.models")
            or in_package(n, "vwm_agents.training")
        )
        assert not heavy, f"{path.name} imports {heavy} at module level"
    code = (
        "import sys, vwm_agents, vwm_agents.config as c; "
        "c.parse_override('training.seed=3'); "
        "assert 'torch' not in sys.modules, 'torch loaded'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_only_entry_points_and_the_api_sit_at_the_top_of_vwm_agents():
    top = sorted(p.name for p in (ROOT / "vwm_agents").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py", "train.py"]

"""The package as a user installs it: declared dependencies match the imports, the sdist is complete,
the entry points run from a source tree that shadows an install, and the citation metadata agrees
with the package.

The dependency check is static: every third-party module that the packages import (at module level
or deferred into a function) must come from a distribution declared in ``install_requires`` or in
an extra; one declared only in an extra must be imported inside a function, so that the package
imports without that extra; and every declared distribution must be imported somewhere (no unused
declarations). That is the check that would have caught ``grpc`` (imported by the sweep runner,
installed by no extra) and ``pandas`` (declared in ``[sweep]``, never imported).
"""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import os
import re
import site
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("vwm_tasks", "vwm_agents", "analysis")
# Imports that need a distribution other than the one that provides the module's top level.
INDIRECT = {"torch.utils.tensorboard": "tensorboard"}
# Extras that hold tools for developers (tests, docs), not code the packages import.
TOOL_EXTRAS = {"test", "docs"}


def _dist_name(requirement: str) -> str:
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    lines = [s for s in parser["options"]["install_requires"].splitlines() if s.strip()]
    required = {_dist_name(s) for s in lines}
    extras = {
        extra: {_dist_name(s) for s in value.splitlines() if s.strip()}
        for extra, value in parser["options.extras_require"].items()
    }
    return required, extras


def _third_party_imports() -> dict[str, list[tuple[str, bool]]]:
    """Module name imported -> [(file, deferred)] over the three packages."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            top_level = set(map(id, tree.body))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in PACKAGES or top == "__future__":
                        continue
                    where = str(path.relative_to(REPO))
                    found.setdefault(name, []).append((where, id(node) not in top_level))
    return found


def _distributions_of(module: str) -> set[str]:
    top = module.split(".")[0]
    dists = {_dist_name(d) for d in importlib.metadata.packages_distributions().get(top, [])}
    assert dists, f"{module}: imported by the package but provided by no installed distribution"
    for prefix, extra_dist in INDIRECT.items():
        if module == prefix or module.startswith(prefix + "."):
            dists = {extra_dist}
    return dists


def test_every_import_is_declared_and_optional_ones_are_deferred():
    required, extras = _declared()
    code_extras = {
        dist for extra, dists in extras.items() if extra not in TOOL_EXTRAS for dist in dists
    }
    problems = []
    for module, places in sorted(_third_party_imports().items()):
        dists = _distributions_of(module)
        if dists & required:
            continue
        if not dists & code_extras:
            problems.append(f"{module} ({places[0][0]}): from {sorted(dists)}, declared nowhere")
            continue
        eager = [where for where, deferred in places if not deferred]
        if eager:
            problems.append(
                f"{module}: optional ({sorted(dists)}) but imported at module level in {eager[0]}"
            )
    assert not problems, "\n".join(problems)


def test_every_declared_distribution_is_imported():
    required, extras = _declared()
    imported = set()
    for module in _third_party_imports():
        imported |= _distributions_of(module)
    declared = required | {
        d for extra, dists in extras.items() if extra not in TOOL_EXTRAS for d in dists
    }
    unused = sorted(declared - imported)
    assert not unused, f"declared in setup.cfg but imported by no module: {unused}"


def test_static_check_sees_deferred_and_undeclared_imports(tmp_path, monkeypatch):
    # The checker itself: a deferred import of an undeclared distribution is reported.
    fake = tmp_path / "analysis"
    fake.mkdir()
    (fake / "x.py").write_text("def f():\n    import grpc\n")
    for package in ("vwm_tasks", "vwm_agents"):
        (tmp_path / package).mkdir()
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    found = _third_party_imports()
    assert found == {"grpc": [("analysis/x.py", True)]}


def _source_tree_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` from the repository root with the installed packages on the path but without
    the install's import hooks (site's .pth files are not processed), as after a non-editable
    install: the source tree's ``vwm_agents`` shadows the installed one, and ``vwm_agents.configs``
    (the install-time name of ``configs/``) does not exist."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *site.getsitepackages()])}
    return subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_entry_points_find_the_shipped_configs_from_a_source_tree():
    result = _source_tree_python(
        "import importlib.util, vwm_agents\n"
        "assert importlib.util.find_spec('vwm_agents.configs') is None\n"
        "from vwm_agents.config import load_config\n"
        "from vwm_agents.sweep.spec import shipped_sweeps\n"
        "print(load_config().agent.kwargs['n_neurons'], len(shipped_sweeps()))\n"
    )
    assert result.returncode == 0, result.stderr
    n_neurons, n_sweeps = map(int, result.stdout.split())
    assert (
        n_neurons
        == yaml.safe_load((REPO / "configs/default.yaml").read_text())["agent"]["n_neurons"]
    )
    assert n_sweeps == len(list((REPO / "configs/sweeps").glob("*.yaml")))


@pytest.mark.slow
def test_sdist_holds_the_tests_docs_and_data(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    archive = tmp_path / result.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
        tar.extractall(tmp_path / "unpacked", filter="data")
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: the list of tracked files is unknown")
    wanted = [
        f
        for f in tracked.stdout.splitlines()
        if f.split("/")[0]
        in {
            "tests",
            "docs",
            "configs",
            "examples",
            "vwm_tasks",
            "vwm_agents",
            "analysis",
            "benchmarks",
        }
        or f
        in {"LICENSE", "CITATION.cff", "README.md", "setup.cfg", "pyproject.toml", "mkdocs.yml"}
    ]
    missing = [f for f in wanted if f not in names]
    assert not missing, f"not in the sdist: {missing[:10]} ({len(missing)} files)"
    # The unpacked sdist runs its own tests (a fast subset: the task's).
    root = next((tmp_path / "unpacked").iterdir())
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "tests/tasks/test_tasks_env.py",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert " passed" in run.stdout


def test_citation_and_license_match_the_package():
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    meta = parser["metadata"]
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"].startswith("1.2")
    assert str(citation["version"]) == meta["version"]
    assert citation["license"] == meta["license"]
    assert {"title", "authors", "message"} <= set(citation)
    assert (REPO / meta["license_files"]).read_text().startswith(f"{meta['license']} License")
    dois = [ref.get("doi") for ref in citation["references"]]
    assert "10.1073/pnas.1117465109" in dois  # the human data set the package ships

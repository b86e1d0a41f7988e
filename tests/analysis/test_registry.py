"""The registry: every row meets the analysis contract, a new analysis is one row, the config's
``analysis`` section comes from the rows, work is not done twice, old import paths say where to."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import analysis
import analysis.__main__ as cli
from analysis import registry
from analysis.registry import AnalysisResult, AnalysisRow, Compute, Figures, Unavailable


def _keyword_parameters(protocol: type) -> list[str]:
    parameters = inspect.signature(protocol.__call__).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


@pytest.mark.parametrize("name", list(registry.ANALYSES))
def test_every_registered_analysis_meets_the_contract(name):
    row = registry.ANALYSES[name]
    assert row.name == name
    compute = registry.resolve(row.compute)
    parameters = inspect.signature(compute).parameters
    positional = [
        p.name for p in parameters.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert len(positional) == 2, f"{row.compute}: run(model, env, *, ...), got {positional}"
    for keyword in _keyword_parameters(Compute):  # n_trials, seed
        assert keyword in parameters, f"{row.compute} does not take {keyword}"
    for key in registry.run_defaults(name):
        assert key in parameters, f"{row.compute} does not take its setting {key}"
    for used in row.reuses:
        assert used in registry.ANALYSES and used in parameters, (row.name, used)
    if row.shares_model_errors:
        assert "data" in parameters
    result_type = inspect.signature(compute, eval_str=True).return_annotation
    assert isinstance(result_type, type) and issubclass(result_type, AnalysisResult), result_type
    hook = (
        registry.resolve(row.unavailable)
        if row.unavailable is not None
        else getattr(sys.modules[compute.__module__], "unavailable", None)
    )
    if hook is not None:
        hook_parameters = list(inspect.signature(hook).parameters)
        unavailable_parameters = list(inspect.signature(Unavailable.__call__).parameters)[1:]
        assert len(hook_parameters) == len(unavailable_parameters), (name, hook_parameters)
    figures = registry.resolve(row.figures)
    assert (
        len(inspect.signature(figures).parameters)
        == len(inspect.signature(Figures.__call__).parameters) - 1
    )


def test_registry_is_light_to_import():
    code = (
        "import sys, analysis.registry; "
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_config_section_comes_from_the_rows():
    from vwm_agents.config import Config, ConfigError

    analysis_section = Config.from_dict({}).analysis
    assert isinstance(analysis_section, registry.AnalysisSettings)
    # the same keys and defaults as before the registry (config.yaml files are unchanged)
    assert analysis_section.to_dict() == {
        "trials": 1000,
        "only": None,
        "human_data": None,
        "fixed_points": {
            "trials": 20,
            "n_init": 20,
            "noise_scale": 0.0,
            "max_iters": 50,
            "lr_init": 0.01,
            "outlier_distance_scale": 10.0,
            "pca": True,
            "newton_iterations": 30,
            "epoch": None,
        },
        "selectivity": {"n_shuffles": 200},
        "dn": {"epoch": "decode"},
    }
    assert list(analysis_section.to_dict()) == [
        "trials",
        "only",
        "human_data",
        "fixed_points",
        "selectivity",
        "dn",
    ]
    with pytest.raises(
        ConfigError,
        match=r"^analysis\.snr: unknown key; allowed: trials, only, "
        r"human_data, fixed_points, selectivity, dn$",
    ):
        Config.from_dict({"analysis": {"snr": {}}})
    with pytest.raises(ConfigError, match=r"^analysis\.dn\.epochs: unknown key; allowed: epoch$"):
        Config.from_dict({"analysis": {"dn": {"epochs": "x"}}})


def test_without_the_entry_point_the_section_is_kept_as_written():
    """vwm_agents without analysis installed: the section is a plain mapping, unchecked."""
    from vwm_agents.config import ConfigError
    from vwm_agents.config.schema import UncheckedSection

    section = UncheckedSection.from_dict({"x": {"y": 1}}, "analysis")
    assert section._with("analysis", ["x", "y"], 2).to_dict() == {"x": {"y": 2}}
    assert section.to_dict() == {"x": {"y": 1}}
    with pytest.raises(ConfigError, match=r"^analysis: must be a mapping"):
        UncheckedSection.from_dict([1], "analysis")


# Keys the schema gained after the registry (section, key) -> their default: an old config
# written back holds them at these defaults, and nothing else changes.
KEYS_ADDED_SINCE = {
    ("training", "report_cost"): 0.0,
    ("training", "random_numbers"): "auto",
    ("training", "distributed_backend"): "auto",
    ("training", "distributed_timeout_s"): 300.0,
}


def test_old_run_configs_still_load():
    """config.yaml of a run trained before the registry (commit 9ae96c6) loads and is written
    back unchanged, apart from keys added to the schema since (at their defaults)."""
    import yaml

    from vwm_agents.config import load_config

    path = Path(__file__).parent / "data" / "config_written_before_the_registry.yaml"
    written = yaml.safe_load(load_config(path).to_yaml())
    for (section, key), default in KEYS_ADDED_SINCE.items():
        assert written[section].pop(key) == default
    assert written == yaml.safe_load(path.read_text())
    assert list(written["analysis"]) == list(yaml.safe_load(path.read_text())["analysis"])


# ------------------------------------------------------------------ a new analysis: one row


class ToyResult:
    def __init__(self, n_trials: int, scale: float) -> None:
        self.n_trials, self.scale = n_trials, scale

    def to_dict(self) -> dict:
        return {"n_trials": self.n_trials, "scale": self.scale}


def toy_run(model, env, *, n_trials: int, seed: int, scale: float = 1.0) -> ToyResult:
    return ToyResult(n_trials, scale)


def toy_figures(result: ToyResult, out_dir: Path) -> list[Path]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.subplots().plot([0, 1], [0, result.scale])
    path = out_dir / "toy_line.png"
    figure.savefig(path)
    return [path]


def test_a_toy_analysis_added_as_one_row_shows_in_the_cli_and_the_report(tiny_run, add_row, capsys):
    add_row(
        AnalysisRow(
            "toy",
            f"{__name__}:toy_run",
            f"{__name__}:toy_figures",
            "Toy analysis",
            "toy.json",
            ("toy",),
        )
    )
    assert cli.main([str(tiny_run), "--only", "toy", "--trials", "3", "--no-progress"]) == 0
    assert "toy: toy.json, toy_line.png" in capsys.readouterr().out
    assert json.loads((tiny_run / "analysis" / "toy.json").read_text()) == {
        "n_trials": 3,
        "scale": 1.0,
    }
    report = (tiny_run / "report.html").read_text()
    assert 'id="sec-toy"' in report and "Toy analysis" in report and "fig-toy_line" in report


# ------------------------------------------------------------------ work done once


def test_one_cli_call_fits_each_mixture_once(tiny_run, monkeypatch, capsys):
    """human and its distance reuse the errors and mixture of the same call (no refits)."""
    from analysis.behaviour import mixture

    counts = {"vm_uniform": 0, "by_set_size": 0}
    fit_vm_uniform, fit_by_set_size = mixture.fit_vm_uniform, mixture.fit_by_set_size

    def counting_vm(*args, **kwargs):
        counts["vm_uniform"] += 1
        return fit_vm_uniform(*args, **kwargs)

    def counting_by_set_size(*args, **kwargs):
        counts["by_set_size"] += 1
        return fit_by_set_size(*args, **kwargs)

    monkeypatch.setattr(mixture, "fit_vm_uniform", counting_vm)
    monkeypatch.setattr(mixture, "fit_by_set_size", counting_by_set_size)
    code = cli.main(
        [str(tiny_run), "--only", "errors,mixture,human", "--trials", "6", "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    # tiny_run has set sizes 1-3: one von Mises + uniform fit each, one pass over set sizes
    assert counts == {"vm_uniform": 3, "by_set_size": 1}


# ------------------------------------------------------------------ old import paths


@pytest.mark.parametrize("old", sorted(analysis.MOVED))
def test_an_old_import_path_fails_with_one_line_naming_the_new_place(old):
    new = analysis.MOVED[old]
    with pytest.raises(ImportError, match=rf"^{old} moved to {new}; import that instead"):
        importlib.import_module(old)
    importlib.import_module(new)


def test_old_names_from_analysis_human_name_the_comparison_module():
    with pytest.raises(ImportError, match=r"analysis\.human\.comparison"):
        from analysis.human import HumanComparison  # noqa: F401

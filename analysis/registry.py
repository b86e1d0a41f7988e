"""The one list of analyses: each a declarative :class:`AnalysisRow`.

Everything that needs to know which analyses exist derives it from :data:`ANALYSES`: the CLI
(``python -m analysis``: names, order, dispatch), the run report (section titles and figures)
and the configuration's ``analysis`` section (:func:`config_section`, which ``vwm_agents``
finds through the ``vwm_rnn.config_sections`` entry point, so that it never imports us).
Adding an analysis is its compute module, its figure function and one row here (docs/analyses.md).

Light to import: targets are ``"package.module:attribute"`` strings resolved when used, so
reading the registry (the config does, at every training start) imports neither torch nor
matplotlib.

The contract of a row's targets is written as the protocols :class:`Compute`,
:class:`AnalysisResult`, :class:`Unavailable`, :class:`Figures` and :class:`Finding`;
``tests/analysis/test_registry.py`` checks every row against them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from vwm_agents.config.schema import Section, spec_field
from vwm_agents.config.specs import Spec

__all__ = [
    "AnalysisResult",
    "Compute",
    "Unavailable",
    "Figures",
    "Finding",
    "Setting",
    "AnalysisRow",
    "ANALYSES",
    "COMMON_SETTINGS",
    "resolve",
    "run_defaults",
    "config_section",
]


# ----------------------------------------------------------------------------------------------
# The contract


@runtime_checkable
class AnalysisResult(Protocol):
    """What ``run`` returns: ``to_dict()`` is the analysis' JSON file (plain data; numpy values
    and non-finite floats are made JSON by :func:`analysis.core.jsonable.to_jsonable`)."""

    def to_dict(self) -> dict[str, Any]: ...


class Compute(Protocol):
    """``run(model, env, *, n_trials, seed, **settings)``: the analysis of one trained agent.

    ``settings`` are the row's :attr:`AnalysisRow.settings` (``trials`` arrives as
    ``n_trials``), ``data=`` where the row shares the model's simulated errors, the results of
    the analyses named in :attr:`AnalysisRow.reuses` under their names, and ``progress=`` where
    ``run`` takes it.
    """

    def __call__(
        self, model: Any, env: Any, *, n_trials: int, seed: int, **settings: Any
    ) -> AnalysisResult: ...


class Unavailable(Protocol):
    """``unavailable(model, env)``: one line saying why the analysis cannot run on this agent or
    task (e.g. ``"needs a VWM recall task; this run trained DelayMatchSample-v0"``), or None."""

    def __call__(self, model: Any, env: Any) -> str | None: ...


class Figures(Protocol):
    """``plot(result, out_dir)``: writes the analysis' figures and returns their paths."""

    def __call__(self, result: Any, out_dir: Path) -> list[Path]: ...


class Finding(Protocol):
    """``finding(result)``: from the analysis' JSON (``result``, the parsed file), one sentence
    of what it found against its control (e.g. ``"MAE 0.20 -> 0.90 rad from set size 1 to 8;
    untrained network 1.55, chance 1.57"``). Raises KeyError (or TypeError, ValueError) where
    the JSON lacks what it needs (an older or foreign file); the report then says so."""

    def __call__(self, result: Mapping[str, Any]) -> str: ...


# ----------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class Setting:
    """One key of ``analysis.<name>`` in the config: its default, what it accepts, its meaning."""

    default: Any
    spec: Spec
    doc: str


@dataclass(frozen=True)
class AnalysisRow:
    """One analysis.

    ``name``: its one name (``--only``, the config's ``analysis.<name>``, the report);
    ``compute``: a :class:`Compute` target; ``figures``: a :class:`Figures` target;
    ``title``: the report's section title; ``json_name``: the result file in ``RUN_DIR/analysis``;
    ``figure_stems``: the file stems of the figures ``figures`` writes, each saying what it shows
    (the report's section gathers them; ``tests/analysis/test_registry.py`` checks they are
    exactly what it writes);
    ``settings``: ``analysis.<name>.<key>`` with defaults, passed to ``run`` as keywords;
    ``unavailable``: an :class:`Unavailable` target (default: the compute module's
    ``unavailable``, if any); ``trials_default``: ``analysis.trials`` gives ``n_trials`` when
    neither ``--trials`` nor the section does (False keeps the module's own meaning of trials);
    ``shares_model_errors``: takes ``data=``, the model's errors simulated once per call;
    ``reuses``: analyses whose results of the same call ``run`` takes (as keywords of their
    names) instead of computing them again; ``takes_human_data``: takes ``human_data``,
    ``human_units`` and ``human_space``; ``takes_untrained_model``: takes ``untrained=``, the
    run's agent rebuilt from its config at its initial weights (``training.seed``), the control
    of what training did; ``finding``: a :class:`Finding` target, the report's one-line summary
    of the result against its control.
    """

    name: str
    compute: str
    figures: str
    title: str
    json_name: str
    figure_stems: tuple[str, ...]
    settings: Mapping[str, Setting] = field(default_factory=dict)
    unavailable: str | None = None
    trials_default: bool = True
    shares_model_errors: bool = False
    reuses: tuple[str, ...] = ()
    takes_human_data: bool = False
    takes_untrained_model: bool = False
    finding: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))

    @property
    def json_stem(self) -> str:
        return Path(self.json_name).stem


_POS_INT = Spec("int", low=1)
_NONNEG_INT = Spec("int", low=0)
_POS_FLOAT = Spec("float", low=0, low_open=True)
_NONNEG_FLOAT = Spec("float", low=0)


def _rows(*rows: AnalysisRow) -> Mapping[str, AnalysisRow]:
    return MappingProxyType({row.name: row for row in rows})


ANALYSES: Mapping[str, AnalysisRow] = _rows(
    AnalysisRow(
        "errors",
        "analysis.behaviour.errors:run",
        "analysis.viz.behaviour:plot_errors",
        "Error statistics",
        "errors.json",
        ("error_histograms_by_set_size", "error_sd_and_kurtosis_vs_set_size"),
        shares_model_errors=True,
        finding="analysis.report.findings:errors",
        takes_untrained_model=True,
    ),
    AnalysisRow(
        "mixture",
        "analysis.behaviour.mixture:run",
        "analysis.viz.behaviour:plot_mixture",
        "Mixture models",
        "mixture.json",
        ("mixture_parameters_vs_set_size", "mixture_fits_on_error_histograms"),
        shares_model_errors=True,
        finding="analysis.report.findings:mixture",
    ),
    AnalysisRow(
        "human",
        "analysis.human.comparison:run",
        "analysis.viz.human:plot_human",
        "Model against people",
        "human_comparison.json",
        ("human_statistics_model_vs_people", "human_error_histograms_model_vs_people"),
        shares_model_errors=True,
        reuses=("errors", "mixture"),
        takes_human_data=True,
        finding="analysis.report.findings:human",
    ),
    AnalysisRow(
        "performance",
        "analysis.behaviour.performance:run",
        "analysis.viz.behaviour:plot_performance",
        "Performance",
        "performance.json",
        ("performance_by_epoch_and_condition",),
        finding="analysis.report.findings:performance",
    ),
    AnalysisRow(
        "snr",
        "analysis.neural.snr:run",
        "analysis.viz.neural:plot_snr",
        "Signal-to-noise ratio",
        "snr.json",
        (
            "snr_decoded_points_per_step",
            "snr_decoded_points_time_averaged",
            "snr_db_vs_set_size",
            "snr_neuron_mean_vs_sd",
            "snr_sample_trials_rates_and_decodes",
        ),
        finding="analysis.report.findings:snr",
    ),
    AnalysisRow(
        "dn",
        "analysis.neural.dn:run",
        "analysis.viz.neural:plot_dn",
        "Divisive normalisation",
        "dn.json",
        ("dn_two_item_summation_weights", "dn_input_and_rate_vs_set_size"),
        trials_default=False,
        settings={
            "epoch": Setting("decode", Spec("str"), "epoch whose rates enter the summation fit")
        },
        finding="analysis.report.findings:dn",
    ),
    AnalysisRow(
        "selectivity",
        "analysis.neural.selectivity:run",
        "analysis.viz.neural:plot_selectivity",
        "Mixed selectivity",
        "selectivity.json",
        ("selectivity_slot_tuning_by_neuron", "selectivity_participation_ratio_histogram"),
        settings={
            "n_shuffles": Setting(
                200, Spec("int", low=20), "shuffles of the orientations giving chance selectivity"
            )
        },
        finding="analysis.report.findings:selectivity",
    ),
    AnalysisRow(
        "fixed_points",
        "analysis.neural.fixed_points:run",
        "analysis.viz.dynamics:plot_fixed_points",
        "Fixed points",
        "fixed_points.json",
        (
            "fixed_points_on_pca_trajectories",
            "fixed_points_decoded_angles",
            "fixed_points_search_paths",
            "fixed_points_eigenvalues_and_time_constants",
        ),
        trials_default=False,
        # the reference's fpf_params
        settings={
            "trials": Setting(20, _POS_INT, "trials whose states seed the search"),
            "n_init": Setting(20, _POS_INT, "initial states"),
            "noise_scale": Setting(0.0, _NONNEG_FLOAT, "noise added to the initial states"),
            "max_iters": Setting(50, _POS_INT, "optimiser iterations"),
            "lr_init": Setting(0.01, _POS_FLOAT, "initial learning rate"),
            "outlier_distance_scale": Setting(10.0, _POS_FLOAT, "outlier rejection distance"),
            "pca": Setting(True, Spec("bool"), "plot fixed points in PCA space"),
            "newton_iterations": Setting(
                30, _NONNEG_INT, "damped Newton iterations after the Adam iterations (0: Adam only)"
            ),
            "epoch": Setting(
                None,
                Spec("str", nullable=True),
                "epoch whose states seed the search; null: decode where the task has it, else all",
            ),
        },
        finding="analysis.report.findings:fixed_points",
    ),
    AnalysisRow(
        "weights",
        "analysis.neural.weights:run",
        "analysis.viz.neural:plot_weights",
        "Weights",
        "weights.json",
        ("weights_input_recurrent_readout",),
        trials_default=False,
        finding="analysis.report.findings:weights",
    ),
    AnalysisRow(
        "trajectories",
        "analysis.neural.trajectories:run",
        "analysis.viz.dynamics:plot_trajectories",
        "Trajectories",
        "trajectories.json",
        ("trajectories_pca_by_epoch",),
        trials_default=False,
        finding="analysis.report.findings:trajectories",
    ),
    AnalysisRow(
        "item_loss",
        "analysis.neural.item_loss:run",
        "analysis.viz.item_loss:plot_item_loss_run",
        "How items are lost",
        "item_loss.json",
        ("item_loss_readout_length_and_error",),
        finding="analysis.report.findings:item_loss",
    ),
)
"""Every analysis, in the order the CLI runs them and the report shows them."""

COMMON_SETTINGS: Mapping[str, Setting] = MappingProxyType(
    {
        "trials": Setting(1000, _POS_INT, "trials per set size simulated for the analyses"),
        "only": Setting(
            None, Spec("str_list", nullable=True), "names of the analyses to run; null: all"
        ),
        "human_data": Setting(
            None,
            Spec("str", nullable=True),
            "people to compare with: a folder of van den Berg (2012) .mat files or a CSV in "
            "python -m analysis.fit_table's format; null: the shipped van den Berg et al. (2012) "
            "files",
        ),
    }
)
"""``analysis.<key>`` settings of every analysis (``only`` names rows of :data:`ANALYSES`)."""

_CONFIG_ORDER = ("fixed_points", "selectivity", "dn")
"""Sections in the order config files have always listed them (config.yaml is unchanged);
rows not named here follow in registry order."""


# ----------------------------------------------------------------------------------------------
# Derived


def resolve(target: str) -> Callable:
    """``"package.module:attribute"`` -> the attribute (imports the module).

    Raises:
        RuntimeError: the module is not installed or has no such attribute (one line).
    """
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise RuntimeError(f"module {module_name} is not installed") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise RuntimeError(f"{module_name} has no {attribute}") from None


def run_defaults(name: str) -> dict[str, Any]:
    """The keywords of ``run`` that analysis ``name``'s settings give by default (``trials`` as
    ``n_trials``): what the CLI passes when the config leaves them out."""
    return {
        ("n_trials" if key == "trials" else key): setting.default
        for key, setting in ANALYSES[name].settings.items()
    }


def _section_class(
    qualname: str,
    settings: Mapping[str, Setting],
    children: Mapping[str, type] = MappingProxyType({}),
) -> type:
    """A frozen :class:`Section` dataclass; ``qualname`` is where pickle finds it (configs travel
    to Ray workers): the children are attributes of their parent class."""
    spec_fields = [(key, Any, spec_field(s.default, s.spec, s.doc)) for key, s in settings.items()]
    child_fields = [
        (key, Any, field(default_factory=child, metadata={"section": child}))
        for key, child in children.items()
    ]
    namespace = {"__module__": __name__, **{c.__name__: c for c in children.values()}}
    section = make_dataclass(
        qualname.rpartition(".")[2],
        [*spec_fields, *child_fields],
        bases=(Section,),
        frozen=True,
        namespace=namespace,
    )
    section.__qualname__ = qualname
    return section


def config_section(rows: Mapping[str, AnalysisRow] = ANALYSES) -> type:
    """The class of the config's ``analysis`` section: :data:`COMMON_SETTINGS`, then one
    sub-section ``analysis.<name>`` per row with settings (the config package's
    :class:`~vwm_agents.config.schema.Section`: unknown keys and bad values fail with one line
    naming the key and what is allowed)."""
    with_settings = [name for name in _CONFIG_ORDER if name in rows and rows[name].settings]
    with_settings += [
        name for name, row in rows.items() if row.settings and name not in with_settings
    ]
    children = {
        name: _section_class(
            f"AnalysisSettings.{name.title().replace('_', '')}Settings", rows[name].settings
        )
        for name in with_settings
    }
    return _section_class("AnalysisSettings", COMMON_SETTINGS, children)


AnalysisSettings = config_section()
"""The ``analysis`` section of the config (the ``vwm_rnn.config_sections`` entry point)."""

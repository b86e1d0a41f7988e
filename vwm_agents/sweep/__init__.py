"""Parameter sweeps on Ray Tune, from one laptop to a cluster.

::

    python -m vwm_agents.sweep SWEEP.yaml [--address ADDR] [--max-concurrent N] [--resume]

One module, one job:

* :mod:`~vwm_agents.sweep.spec` -- the sweep file (keys, grid, explicit trials, resources, the
  optional ``human`` comparison) and its validation: every trial's config is loaded and its env
  and agent built once, and nothing is written when any of it is wrong;
* :mod:`~vwm_agents.sweep.plan` -- the trials a sweep file expands to (grid crossed with the
  explicit trials) and each trial's configuration, built from the base and checked;
* :mod:`~vwm_agents.sweep.trial` -- one trial without Ray: an ordinary run directory of
  :func:`vwm_agents.train`, continued from its checkpoint on retry or ``--resume``, then
  ``python -m analysis RUN_DIR --only human`` when the sweep asks for closeness to people;
* :mod:`~vwm_agents.sweep.runner` -- Ray Tune (the only module that imports Ray): its own local
  Ray, or a running cluster (``--address``, token authentication included);
* :mod:`~vwm_agents.sweep.results` -- ``sweep_results.csv``/``.yaml`` read back from the run
  directories, and the error-vs-set-size curves (drawn by :mod:`vwm_agents.training.plotting`);
* :mod:`~vwm_agents.sweep.cli` -- the command line.

A failed trial is recorded (in ``output/_errors/``) and the sweep goes on. Finished trials (those
with ``metrics.json``, and the human comparison when asked for) are skipped by ``--resume``. On a
cluster, the output folder must be on a filesystem that all nodes share, and every node needs this
package installed.
"""

from vwm_agents.sweep.cli import build_parser, main
from vwm_agents.sweep.results import (
    FIGURE,
    HUMAN_COLUMNS,
    REPORT,
    RESULTS_CSV,
    RESULTS_YAML,
    ErrorCurve,
    TrialResult,
    collect_results,
    error_vs_set_size,
    read_human_distance,
    write_report,
    write_results,
)
from vwm_agents.sweep.runner import CONNECT_TIMEOUT_S, RAY_DIR, SPEC_COPY, check_cluster, run_sweep
from vwm_agents.sweep.spec import (
    HumanTarget,
    Resources,
    SweepError,
    SweepSpec,
    TrialPlan,
    check_output,
    expand_trials,
    load_sweep,
    sweep_from_dict,
)
from vwm_agents.sweep.trial import ERRORS_DIR, run_trial

__all__ = [
    "SweepError",
    "Resources",
    "HumanTarget",
    "TrialPlan",
    "SweepSpec",
    "TrialResult",
    "ErrorCurve",
    "load_sweep",
    "sweep_from_dict",
    "expand_trials",
    "check_output",
    "run_sweep",
    "check_cluster",
    "run_trial",
    "collect_results",
    "write_results",
    "read_human_distance",
    "error_vs_set_size",
    "write_report",
    "build_parser",
    "main",
    "RESULTS_CSV",
    "RESULTS_YAML",
    "FIGURE",
    "REPORT",
    "HUMAN_COLUMNS",
    "ERRORS_DIR",
    "RAY_DIR",
    "SPEC_COPY",
    "CONNECT_TIMEOUT_S",
]

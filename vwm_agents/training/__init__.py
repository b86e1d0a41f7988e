"""Training: everything between a validated config and a finished run directory.

- :mod:`~vwm_agents.training.api`: :func:`train` (fresh or resume, decided once) and the run's
  random state.
- :mod:`~vwm_agents.training.run`: a config resolved into env, model(s), device and run
  directory; :func:`load_run` rebuilds a finished run.
- :mod:`~vwm_agents.training.rundir`: :class:`RunDir`, the owner of a run directory's layout.
- :mod:`~vwm_agents.training.trainer` / :mod:`~vwm_agents.training.ensemble_trainer`: one run,
  or S members in one stacked forward pass.
- :mod:`~vwm_agents.training.losses`, :mod:`~vwm_agents.training.schedules`,
  :mod:`~vwm_agents.training.evaluation`, :mod:`~vwm_agents.training.checkpoint`,
  :mod:`~vwm_agents.training.accel` (compiled / captured loss steps),
  :mod:`~vwm_agents.training.files`, :mod:`~vwm_agents.training.plotting`,
  :mod:`~vwm_agents.training.tensorboard_log`.

It imports :mod:`vwm_agents.models` and :mod:`vwm_agents.config`, never :mod:`vwm_agents.sweep`.
"""

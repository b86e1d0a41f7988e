"""vwm_agents: the Dale's-law noisy rate RNN, other agents, the supervised trainer and sweeps.

Entry points: ``python -m vwm_agents.train`` (training), ``python -m vwm_agents.sweep`` (Ray Tune
sweeps). Library: :func:`vwm_agents.config.load_config`, :func:`vwm_agents.trainer.train`,
:func:`vwm_agents.run.load_run`, :func:`vwm_agents.models.build_agent`.
"""

"""analysis: behavioural and neural analyses of trained agents, and the comparison with people.

Entry points: ``python -m analysis RUN_DIR`` (every analysis of a run) and
``python -m analysis.fit DATA.csv`` (mixture models for anyone's behavioural data). Each analysis
module offers ``run(model, env, *, n_trials, seed)`` returning a dataclass with ``to_dict()``
and ``plot(result, out_dir)``; circular statistics live in :mod:`analysis.circstats`.
"""

"""analysis: behavioural and neural analyses of trained agents, and the comparison with people.

Entry points: ``python -m analysis RUN_DIR`` (every analysis of a run that applies to its agent
and task) and ``python -m analysis.fit DATA.csv`` (mixture models for anyone's behavioural data).

Layers (lower never imports higher; compute modules never import plotting):

1. data: :mod:`analysis.circstats` (circular statistics), :mod:`analysis.trials` (a model's
   errors on fresh trials), :mod:`analysis.human_data` (people's data: shipped van den Berg et
   al. 2012 files, .mat folders, CSV tables), :mod:`analysis.neural_trials`;
2. statistics and fits: :mod:`analysis.errors`, :mod:`analysis.mixture`,
   :mod:`analysis.performance` and the neural analyses;
3. the human comparison: :mod:`analysis.distance`, :mod:`analysis.human`;
4. plotting apart: ``analysis.plotting_*`` (``figure_<x>`` builds, ``plot_<name>`` saves);
   the CLIs (``__main__``, ``fit``) pair each analysis' ``run`` with its ``plot``.
"""

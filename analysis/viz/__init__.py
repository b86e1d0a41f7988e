"""All figures (matplotlib, never pyplot): ``figure_<x>`` builds a figure, ``plot_<name>(result,
out_dir)`` saves an analysis' figures with :func:`analysis.viz.figures.save_figure`. Compute modules
never import this package."""

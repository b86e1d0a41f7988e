"""Neural figures are drawn from real results: what each axis shows is checked against the result
it was built from (and the env's own epoch boundaries), and the saved PNGs are not blank."""

import gymnasium as gym
import matplotlib.image
import neurogym  # noqa: F401  (registers DelayMatchSample-v0)
import numpy as np
import pytest
import torch

import vwm_tasks  # noqa: F401  (registers the envs)
from analysis.neural import dn as normalization
from analysis.neural import fixed_points, selectivity, snr, trajectories, weights
from analysis.registry import run_defaults
from analysis.viz import dynamics
from analysis.viz import neural as plots
from vwm_agents.models.dale_rnn import DaleRNN
from vwm_agents.models.gru import GRUAgent

TIMING = {"init": 20, "stimulus": 100, "delay": 100, "decode": 100}


@pytest.fixture(scope="module")
def dale():
    env = gym.make("VWMRecall-v0", max_items=2, timing=TIMING)
    torch.manual_seed(0)
    return DaleRNN(6, 4, n_neurons=20, spike_noise_factor=0.1), env


def _by_gid(ax, gid):
    return [a for a in ax.get_children() if a.get_gid() == gid]


def _not_blank(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image[..., :3].std() > 0.02, path


def test_weights_figure_shows_the_matrices_centred_at_zero_with_ei_blocks(dale, tmp_path):
    model, env = dale
    result = weights.run(model, env, n_trials=1, seed=0)
    assert result.checks == {"E columns >= 0": True, "I columns <= 0": True}
    fig = plots.figure_weights(result)
    axes = [ax for ax in fig.axes if ax.get_title() in ("B", "W_eff", "F^T")]
    assert [ax.get_title() for ax in axes] == ["B", "W_eff", "F^T"]
    expected = {"B": model.input_weights, "W_eff": model.W_eff, "F^T": model.readout_weights.T}
    for ax in axes:
        image = ax.get_images()[0]
        np.testing.assert_allclose(
            image.get_array(), expected[ax.get_title()].detach().double().numpy()
        )
        norm = image.norm
        assert norm.vcenter == 0 and norm.vmin == -norm.vmax
        assert image.get_cmap().name == "RdBu_r"
        (row_line,) = _by_gid(ax, "ei_rows")
        assert row_line.get_ydata()[0] == model.n_excitatory - 0.5
    assert len(_by_gid(axes[1], "ei_cols")) == 1 and not _by_gid(axes[0], "ei_cols")
    for path in plots.plot_weights(result, tmp_path):
        _not_blank(path)


def test_gru_weights_are_its_matrices():
    gru = GRUAgent(3, 2, n_hidden=4)
    result = weights.run(gru, None)
    assert set(result.matrices) == {"gru.weight_ih_l0", "gru.weight_hh_l0", "readout.weight"}
    assert result.n_excitatory is None
    fig = plots.figure_weights(result)
    assert not any(_by_gid(ax, "ei_rows") or _by_gid(ax, "ei_cols") for ax in fig.axes)


def test_trajectory_colours_follow_the_envs_own_epoch_boundaries(tmp_path):
    timing = {"delay": ["choice", [500, 1000, 1500]]}
    env = gym.make("DelayMatchSample-v0", dt=100, timing=timing)
    torch.manual_seed(0)
    gru = GRUAgent(3, 3, n_hidden=10)
    result = trajectories.run(gru, env, n_trials=12, seed=5)
    # the boundaries the env itself gives, trial by trial (collect_batch seeds the env from rng)
    replay = gym.make("DelayMatchSample-v0", dt=100, timing=timing).unwrapped
    replay.seed(int(np.random.default_rng(5).integers(2**31)))
    expected = []
    for _ in range(12):
        replay.new_trial()
        expected.append(
            {name: (replay.start_ind[name], replay.end_ind[name]) for name in replay.start_ind}
        )
    delays = {e["delay"][1] - e["delay"][0] for e in expected}
    assert len(delays) > 1  # the test needs trials of different timing
    for name in expected[0]:
        np.testing.assert_array_equal(result.epochs[name], [e[name] for e in expected])
    fig = dynamics.figure_trajectories(result)
    ax = fig.axes[0]
    colours = dynamics.epoch_colours(result.epochs)
    for trial, bounds in enumerate(expected):
        for name, (start, end) in bounds.items():
            (line,) = [a for a in ax.get_lines() if a.get_gid() == f"{name}:{trial}"]
            segment = result.projection[trial, max(start - 1, 0) : end]
            np.testing.assert_allclose(line.get_xdata(), segment[:, 0])
            np.testing.assert_allclose(line.get_ydata(), segment[:, 1])
            assert line.get_color() == colours[name]
    assert result.explained_variance_ratio.sum() <= 1 + 1e-12
    for path in dynamics.plot_trajectories(result, tmp_path):
        _not_blank(path)


def test_snr_figures_plot_the_result(dale, tmp_path):
    model, env = dale
    result = snr.run(model, env, n_trials=10, seed=0)
    fig = plots.figure_snr_side_views(result)
    for ax in fig.axes:
        for collection in ax.collections:
            name, n = collection.get_gid().split(":")
            view = result.side_views[name][int(n)]
            np.testing.assert_allclose(collection.get_offsets(), np.stack([view.mean, view.sd], 1))
    # without input noise B u is the same on every repeat (SDs of rounding error): no panel for
    # it (the old assertion wanted 3 panels, rounding error drawn as data)
    assert result.input_noise == 0
    assert [ax.get_title() for ax in fig.axes] == [
        plots.SIDE_VIEW_LABELS["rate"],
        plots.SIDE_VIEW_LABELS["recurrent_input"],
    ]
    fig = plots.figure_snr_trajectories(result)
    top = fig.axes[0]
    np.testing.assert_allclose(top.get_lines()[0].get_ydata(), result.sample_rates[1][0][:, 0])
    paths = plots.plot_snr(result, tmp_path)
    assert len(paths) == 5
    for path in paths:
        _not_blank(path)


def test_dn_figures_plot_model_and_null(dale, tmp_path):
    model, env = dale
    result = normalization.run(model, env, n_trials=6, seed=0)
    fig = plots.figure_dn_summation(result)
    ax = fig.axes[0]
    (model_points,) = _by_gid(ax, "model")
    sub = result.model["baseline_subtracted"]
    np.testing.assert_allclose(model_points.get_offsets(), np.stack([sub["w1"], sub["w2"]], 1))
    (null_points,) = _by_gid(ax, "linear null")
    assert len(null_points.get_offsets()) == len(result.null["baseline_subtracted"]["w1"])
    fig = plots.figure_dn_load(result)
    (rate,) = _by_gid(fig.axes[0], "rate")
    np.testing.assert_allclose(
        rate.get_ydata(), np.asarray(result.rate_stimulus) / result.rate_stimulus[0]
    )
    for path in plots.plot_dn(result, tmp_path):
        _not_blank(path)


def test_dn_summation_axes_turn_symlog_only_for_a_heavy_tail(dale):
    import dataclasses

    model, env = dale
    result = normalization.run(model, env, n_trials=6, seed=0)
    sub = result.model["baseline_subtracted"]
    tame = dataclasses.replace(
        result,
        model={**result.model, "baseline_subtracted": {**sub, "w1": [0.5] * 6, "w2": [0.6] * 6}},
        null={**result.null, "baseline_subtracted": {**sub, "w1": [1.0] * 6, "w2": [1.0] * 6}},
    )
    assert plots.figure_dn_summation(tame).axes[0].get_xscale() == "linear"
    tail = {**sub, "w1": [0.5] * 5 + [150.0], "w2": [0.6] * 6}
    heavy = dataclasses.replace(tame, model={**tame.model, "baseline_subtracted": tail})
    ax = plots.figure_dn_summation(heavy).axes[0]
    assert ax.get_xscale() == "symlog"  # w1's tail
    assert ax.get_yscale() == "linear"  # w2 has none
    assert "log beyond" in ax.get_xlabel() and "log beyond" not in ax.get_ylabel()
    (model_points,) = _by_gid(ax, "model")
    assert model_points.get_offsets()[-1, 0] == 150.0  # the tail is drawn, not cut off


def test_selectivity_figure_marks_only_selective_neurons(dale, tmp_path):
    model, env = dale
    result = selectivity.run(model, env, n_trials=40, seed=0, n_shuffles=40)
    fig = plots.figure_selectivity(result)
    top, bottom = fig.axes[:2]
    selective = result.selective_neurons & np.isfinite(result.ipr)
    (ipr_line,) = _by_gid(top, "ipr")
    np.testing.assert_allclose(np.sort(ipr_line.get_ydata()), np.sort(result.ipr[selective]))
    (marks,) = _by_gid(bottom, "significant")
    assert len(marks.get_offsets()) == int(result.selective.sum())
    for path in plots.plot_selectivity(result, tmp_path):
        _not_blank(path)


@pytest.mark.parametrize("agent", ["dale", "gru"])
def test_fixed_point_figures_plot_points_searches_and_decoded_angles(dale, agent, tmp_path):
    model, env = dale
    if agent == "gru":
        torch.manual_seed(0)
        model = GRUAgent(6, 4, n_hidden=12)
    result = fixed_points.run(
        model,
        env,
        **{**run_defaults("fixed_points"), "n_trials": 6, "n_init": 10},
        seed=0,
        progress=False,
    )
    views = result.views
    fig = dynamics.figure_fixed_points_search(result)
    (start,) = _by_gid(fig.axes[0], "start")
    np.testing.assert_allclose(start.get_offsets(), views.search_start[:, :2])
    fig = dynamics.figure_fixed_points_decoded(result)
    (points,) = _by_gid(fig.axes[0], "points")
    np.testing.assert_allclose(points.get_offsets(), views.points[:, :2])
    np.testing.assert_allclose(points.get_array(), views.points_decoded)
    fig = dynamics.figure_fixed_points_pca(result)
    stable = _by_gid(fig.axes[0], "stable")[0]
    np.testing.assert_allclose(stable.get_offsets(), views.points[result.stable][:, :2])
    paths = dynamics.plot_fixed_points(result, tmp_path)
    assert [p.name for p in paths] == [
        "fixed_points_on_pca_trajectories.png",
        "fixed_points_decoded_angles.png",
        "fixed_points_search_paths.png",
        "fixed_points_eigenvalues_and_time_constants.png",
    ]
    for path in paths:
        _not_blank(path)


def test_plotting_does_not_choose_a_backend_at_import():
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import analysis.viz.neural; "
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"

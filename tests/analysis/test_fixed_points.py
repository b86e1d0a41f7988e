"""Fixed-point finder: systems with known fixed points (a hand-built GRU among them), the batched
solve guard, a DaleRNN, any task, and each setting reaching the finder."""

import gymnasium as gym
import neurogym  # noqa: F401  (registers DelayMatchSample-v0)
import numpy as np
import pytest
import torch
from scipy.optimize import brentq

import vwm_tasks  # noqa: F401  (registers the envs)
from analysis.core.agent_protocol import step_map
from analysis.neural.fixed_point_finder import batched_solve, find_fixed_points
from analysis.neural.fixed_points import (
    analyse_fixed_points,
    outlier_mask,
    run,
    unavailable,
    unique_indices,
)
from analysis.registry import run_defaults
from vwm_agents.models.dale_rnn import DaleRNN
from vwm_agents.models.gru import GRUAgent

TIMING = {"init": 20, "stimulus": 100, "delay": 100, "decode": 100}


@pytest.mark.parametrize("threads", [1, 2])
def test_batched_solve_matches_per_matrix_solve(threads):
    # Batched LU with >1 thread raised or returned garbage for 256 x 256 matrices in this torch
    # build; batched_solve must agree with per-matrix solves whatever the thread count.
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        n = 256
        a = torch.randn(3, n, n, dtype=torch.float64, generator=gen) / n**0.5 + 3 * torch.eye(
            n, dtype=torch.float64
        )
        b = torch.randn(3, n, dtype=torch.float64, generator=gen)
        x = batched_solve(a, b)
        reference = torch.stack([torch.linalg.solve(a[i], b[i]) for i in range(3)])
        assert torch.allclose(x, reference, atol=1e-10)
        assert torch.get_num_threads() == threads  # restored
    finally:
        torch.set_num_threads(previous)


def test_linear_map_has_its_unique_fixed_point_and_eigenvalues():
    rng = np.random.default_rng(0)
    n = 8
    a = rng.standard_normal((n, n))
    a *= 0.9 / np.abs(np.linalg.eigvals(a)).max()  # spectral radius 0.9: one stable point
    b = rng.standard_normal(n)
    x_star = np.linalg.solve(np.eye(n) - a, b)
    at, bt = torch.tensor(a), torch.tensor(b)

    def step(x):
        return x @ at.T + bt

    result = analyse_fixed_points(
        step, torch.tensor(rng.standard_normal((16, n)) * 3), adam_iterations=50
    )
    assert result.n_converged == 16
    assert result.n_points == 1
    np.testing.assert_allclose(result.points[0], x_star, atol=1e-6)
    expected = np.linalg.eigvals(a)
    np.testing.assert_allclose(
        np.sort(np.abs(result.eigenvalues[0])), np.sort(np.abs(expected)), atol=1e-10
    )
    assert result.stable[0]


def _two_neuron_roots(w, bias):
    # x1 = tanh(w x2 + b1), x2 = tanh(w x1 + b2): x1 solves h(x1) = tanh(w tanh(w x1 + b2) + b1) - x1.
    def h(x1):
        return np.tanh(w * np.tanh(w * x1 + bias[1]) + bias[0]) - x1

    grid = np.linspace(-1.0, 1.0, 2001)
    values = h(grid)
    roots = [
        brentq(h, lo, hi, xtol=1e-14)
        for lo, hi, vl, vh in zip(grid[:-1], grid[1:], values[:-1], values[1:], strict=True)
        if vl * vh < 0
    ]
    return np.array([[x1, np.tanh(w * x1 + bias[1])] for x1 in roots])


def test_two_neuron_network_fixed_points_match_independent_roots():
    w, bias, leak = 2.0, np.array([0.1, -0.05]), 0.2
    roots = _two_neuron_roots(w, bias)
    assert len(roots) == 3  # two stable attractors and a saddle between them
    weights, b = torch.tensor([[0.0, w], [w, 0.0]], dtype=torch.float64), torch.tensor(bias)

    def step(x):
        return x + leak * (-x + torch.tanh(x @ weights.T + b))

    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 7), np.linspace(-1, 1, 7)), -1).reshape(-1, 2)
    result = analyse_fixed_points(step, torch.tensor(grid), adam_iterations=100)
    assert result.n_converged == len(grid)
    assert result.n_points == 3
    for point in result.points:
        assert np.min(np.linalg.norm(roots - point, axis=1)) < 1e-6
    # Analytic Jacobian of the map: (1 - leak) I + leak diag(1 - x^2) W at a fixed point x = tanh(.)
    for point, eig, stable in zip(result.points, result.eigenvalues, result.stable, strict=True):
        jac = (1 - leak) * np.eye(2) + leak * np.diag(1 - point**2) @ weights.numpy()
        np.testing.assert_allclose(
            np.sort(np.abs(eig)), np.sort(np.abs(np.linalg.eigvals(jac))), atol=1e-8
        )
        assert stable == bool(np.all(np.abs(np.linalg.eigvals(jac)) < 1))
    assert result.stable.sum() == 2


def test_newton_reaches_tolerance_where_adam_alone_does_not():
    w, bias, leak = 2.0, torch.tensor([0.1, -0.05], dtype=torch.float64), 0.2
    weights = torch.tensor([[0.0, w], [w, 0.0]], dtype=torch.float64)

    def step(x):
        return x + leak * (-x + torch.tanh(x @ weights.T + bias))

    start = torch.tensor([[0.9, 0.8], [-0.7, -0.9]], dtype=torch.float64)
    adam_only = find_fixed_points(step, start, adam_iterations=20, newton_iterations=0)
    both = find_fixed_points(step, start, adam_iterations=20, newton_iterations=20)
    assert adam_only.q.max() > 1e-12
    assert both.q.max() < 1e-12


def test_unique_and_outliers():
    points = np.array([[0.0, 0.0], [0.0, 5e-4], [1.0, 0.0], [100.0, 0.0]])
    q = np.array([1e-13, 1e-14, 1e-13, 1e-13])
    keep = unique_indices(points, q, tol=1e-3)
    assert sorted(keep.tolist()) == [1, 2, 3]  # the lower-q copy of the duplicate is kept
    initial = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])  # mean distance 1
    np.testing.assert_array_equal(
        outlier_mask(points, initial, scale=10.0), [False, False, False, True]
    )


def _run(model, env, **kwargs):
    """``run`` with the settings' defaults of the registry row, as the CLI calls it."""
    return run(model, env, **{**run_defaults("fixed_points"), **kwargs})


def test_finder_on_untrained_dale_rnn_finds_fixed_points():
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=48)
    result = _run(
        model,
        env,
        n_trials=8,
        seed=0,
        epoch="decode",
        n_init=16,
        newton_iterations=15,
        progress=False,
    )
    # Decode-epoch states of an untrained net relax to its low-activity fixed point; other
    # starting states may end on slow points (local minima of q > 0), which are reported too.
    assert result.n_converged >= 1
    assert np.any(result.q < 1e-12)
    assert result.eigenvalues.shape == (result.n_points, 48)
    best = np.argmin(result.q)
    x = torch.tensor(result.points[best])
    step = model.double().step(x[None], noise=False)[0].detach().numpy()
    model.float()
    np.testing.assert_allclose(step, result.points[best], atol=1e-5)  # F(x) = x independently
    d = result.to_dict()
    assert d["counts"]["initial"] == 16 and d["counts"]["kept"] == result.n_points
    with pytest.raises(ValueError, match="epoch must be one of"):
        _run(model, env, n_trials=2, seed=0, epoch="late", progress=False)


def _hand_built_gru(w: float, bias: float, gate_bias: float) -> GRUAgent:
    """Two uncoupled units with constant gates (no input, no hidden weights into the gates):
    reset c = sigmoid(gate_bias), update z = 1/2, and the candidate tanh(c w h + bias), so every
    unit's fixed points solve h = tanh(c w h + bias) on its own."""
    gru = GRUAgent(1, 2, n_hidden=2).double()
    with torch.no_grad():
        for p in gru.gru.parameters():
            p.zero_()
        gru.gru.bias_ih_l0[:2] = gate_bias  # reset gate
        gru.gru.weight_hh_l0[4:] = w * torch.eye(2, dtype=torch.float64)  # candidate
        gru.gru.bias_ih_l0[4:] = bias
    return gru


def test_hand_built_gru_fixed_points_are_recovered_with_their_stability():
    w, bias, gate_bias = 3.0, 0.0, 1.0
    gru = _hand_built_gru(w, bias, gate_bias)
    c = 1.0 / (1.0 + np.exp(-gate_bias))
    gain = c * w
    x_star = brentq(lambda x: np.tanh(gain * x) - x, 0.1, 1.0, xtol=1e-15)
    roots = np.array([-x_star, 0.0, x_star])
    expected = np.array([[a, b] for a in roots for b in roots])  # 9 points
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9)), -1).reshape(-1, 2)
    result = analyse_fixed_points(
        step_map(gru), torch.tensor(grid), adam_iterations=0, newton_iterations=60
    )
    assert result.n_points == 9
    for point in expected:
        assert np.min(np.linalg.norm(result.points - point, axis=1)) < 1e-8
    # dh'/dh per unit = z + (1 - z) (1 - h^2) c w with z = 1/2: stable iff both |.| < 1.
    for point, eig, stable in zip(result.points, result.eigenvalues, result.stable, strict=True):
        slopes = 0.5 + 0.5 * (1 - point**2) * gain
        np.testing.assert_allclose(np.sort(np.abs(eig)), np.sort(np.abs(slopes)), atol=1e-8)
        assert stable == bool(np.all(np.abs(slopes) < 1))
    assert result.stable.sum() == 4  # the four corners (+-x*, +-x*)


def test_gru_step_is_one_step_of_forward():
    torch.manual_seed(0)
    gru = GRUAgent(3, 2, n_hidden=5)
    ob = torch.randn(4, 6, 3)
    _, states = gru(ob)
    x = torch.zeros(4, 5)
    for t in range(6):
        x = gru.step(x, ob[:, t])
    torch.testing.assert_close(x, states[:, -1], atol=1e-6, rtol=0)


def test_run_on_a_gru_and_any_neurogym_task_finds_points_of_the_update_map():
    env = gym.make("DelayMatchSample-v0", dt=100)
    torch.manual_seed(0)
    gru = GRUAgent(3, 3, n_hidden=12)
    assert unavailable(gru, env) is None
    result = _run(gru, env, n_trials=6, seed=0, n_init=12, progress=False)
    assert result.epoch == "all"  # the task has no "decode" epoch
    assert np.any(result.q < 1e-12)
    best = torch.tensor(result.points[np.argmin(result.q)])[None]
    np.testing.assert_allclose(
        gru.double().step(best).detach().numpy()[0], best[0].numpy(), atol=1e-6
    )
    gru.float()
    views = result.views
    assert views.decoded_kind == "class" and views.points_decoded.shape == (result.n_points,)
    assert set(views.epochs) == {"fixation", "sample", "delay", "test", "decision"}


def test_stacked_gru_is_refused_with_a_reason():
    env = gym.make("DelayMatchSample-v0", dt=100)
    reason = unavailable(GRUAgent(3, 3, n_hidden=4, num_layers=2), env)
    assert reason.startswith("fixed_points: GRUAgent.step failed: step needs num_layers == 1")


@pytest.fixture(scope="module")
def small_dale():
    env = gym.make("VWMRecall-v0", max_items=2, timing=TIMING)
    torch.manual_seed(3)
    return DaleRNN(6, 4, n_neurons=24), env


BASE = {
    "n_trials": 6,
    "seed": 1,
    "n_init": 8,
    "max_iters": 5,
    "lr_init": 0.01,
    "noise_scale": 0.0,
    "outlier_distance_scale": 10.0,
    "pca": True,
    "newton_iterations": 3,
    "progress": False,
}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n_init", 5),
        ("max_iters", 2),
        ("lr_init", 1.0),
        ("noise_scale", 5.0),
        ("outlier_distance_scale", 1e-9),
        ("pca", False),
        ("n_trials", 3),
    ],
)
def test_each_setting_changes_what_the_finder_does(small_dale, key, value):
    model, env = small_dale
    base = _run(model, env, **BASE)
    changed = _run(model, env, **{**BASE, key: value})
    assert changed.settings[key] == value
    if key == "n_init":
        assert changed.n_init == 5 and base.n_init == 8
    elif key == "max_iters":
        assert changed.adam_iterations == 2 < base.adam_iterations
    elif key == "outlier_distance_scale":
        assert changed.n_outliers == changed.n_unique > base.n_outliers
    elif key == "pca":
        assert changed.views is None and base.views is not None
    else:  # the initial states or the search path differ
        differs = not np.allclose(changed.initial_states, base.initial_states) or not np.allclose(
            changed.final_states, base.final_states
        )
        assert differs


def test_progress_bar_shows_unless_disabled(capsys):
    def step(x):
        return 0.5 * x

    find_fixed_points(step, torch.ones(2, 2, dtype=torch.float64), adam_iterations=3, progress=True)
    assert "fixed points" in capsys.readouterr().err
    find_fixed_points(
        step, torch.ones(2, 2, dtype=torch.float64), adam_iterations=3, progress=False
    )
    assert "fixed points" not in capsys.readouterr().err


def test_pca_views_hold_the_searches_and_the_env_epochs(small_dale):
    model, env = small_dale
    result = _run(model, env, **BASE)
    views = result.views
    assert views.search_start.shape == views.search_end.shape == (8, 3)
    np.testing.assert_allclose(views.search_start, views.pca.transform(result.initial_states))
    np.testing.assert_allclose(views.points, views.pca.transform(result.points))
    assert views.decoded_kind == "angle" and np.all(np.abs(views.points_decoded) <= np.pi)
    np.testing.assert_allclose(views.trial_label, np.linspace(-np.pi, np.pi, 6, endpoint=False))
    assert "decode" in views.epochs and views.epochs["decode"].shape == (6, 2)


def test_states_that_start_converged_stay_put():
    # Adam's first step at a large learning rate would leave a fixed point: it must not be taken.
    def step(x):
        return 0.5 * x

    start = torch.zeros(3, 4, dtype=torch.float64)
    search = find_fixed_points(step, start, adam_iterations=10, lr_init=1.0, newton_iterations=0)
    assert search.adam_iterations == 0
    assert torch.equal(search.points, start)


def test_agent_without_states_gets_a_reason_not_a_traceback():
    import analysis.neural.fixed_points
    from analysis.neural import selectivity, snr, trajectories

    class OutputsOnly(torch.nn.Module):
        def __init__(self, n: int):
            super().__init__()
            self.linear = torch.nn.Linear(n, n)

        def forward(self, ob):
            return self.linear(ob)

    needs = "needs forward(ob) -> (outputs, states (B, T, N)); OutputsOnly"
    dms = gym.make("DelayMatchSample-v0", dt=100)
    vwm = gym.make("VWMRecall-v0", max_items=2, timing=TIMING)
    for module, name, env, n in (
        (trajectories, "trajectories", dms, 3),
        (analysis.neural.fixed_points, "fixed_points", dms, 3),
        (snr, "snr", vwm, 6),
        (selectivity, "selectivity", vwm, 6),
    ):
        assert module.unavailable(OutputsOnly(n), env).startswith(f"{name}: {needs}")


def test_time_constants_and_verdict_state_what_was_found():
    from analysis.neural.fixed_points import FixedPointResult

    eigenvalues = np.array([[np.exp(-10 / 50), 0.5 + 0j]])  # dt 10 ms: tau 50 ms, 14.4 ms
    result = FixedPointResult(
        points=np.full((1, 2), 0.05),
        q=np.array([1e-14]),
        eigenvalues=eigenvalues,
        stable=np.array([True]),
        n_init=20,
        n_converged=20,
        n_unique=1,
        n_outliers=0,
        tol_q=1e-12,
        tol_unique=1e-3,
        adam_iterations=50,
        newton_iterations=30,
        seconds=1.0,
        dt_ms=10.0,
    )
    np.testing.assert_allclose(result.time_constants_ms()[0], [50.0, -10 / np.log(0.5)])
    out = result.to_dict()
    assert out["slowest_time_constant_ms"] == [pytest.approx(50.0)]
    assert out["verdict"] == (
        "1 fixed point kept (1 stable) from 20 searches (20 converged); "
        "mean state 0.05; slowest mode 50 ms."
    )

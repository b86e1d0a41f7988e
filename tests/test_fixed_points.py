"""Fixed-point finder: systems with known fixed points, the batched solve guard, a DaleRNN."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy.optimize import brentq

import vwm_tasks  # noqa: F401  (registers the envs)
from analysis.fixed_points import (
    analyse_fixed_points,
    batched_solve,
    find_fixed_points,
    outlier_mask,
    run,
    unique_indices,
)
from vwm_agents.models.dale_rnn import DaleRNN

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
        a = torch.randn(3, n, n, dtype=torch.float64, generator=gen) / n**0.5 + 3 * torch.eye(n, dtype=torch.float64)
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

    result = analyse_fixed_points(step, torch.tensor(rng.standard_normal((16, n)) * 3), adam_iterations=50)
    assert result.n_converged == 16
    assert result.n_points == 1
    np.testing.assert_allclose(result.points[0], x_star, atol=1e-6)
    expected = np.linalg.eigvals(a)
    np.testing.assert_allclose(np.sort(np.abs(result.eigenvalues[0])), np.sort(np.abs(expected)), atol=1e-10)
    assert result.stable[0]


def _two_neuron_roots(w, bias):
    # x1 = tanh(w x2 + b1), x2 = tanh(w x1 + b2): x1 solves h(x1) = tanh(w tanh(w x1 + b2) + b1) - x1.
    def h(x1):
        return np.tanh(w * np.tanh(w * x1 + bias[1]) + bias[0]) - x1

    grid = np.linspace(-1.0, 1.0, 2001)
    values = h(grid)
    roots = [brentq(h, lo, hi, xtol=1e-14) for lo, hi, vl, vh in
             zip(grid[:-1], grid[1:], values[:-1], values[1:], strict=True) if vl * vh < 0]
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
        np.testing.assert_allclose(np.sort(np.abs(eig)), np.sort(np.abs(np.linalg.eigvals(jac))), atol=1e-8)
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
    np.testing.assert_array_equal(outlier_mask(points, initial, scale=10.0), [False, False, False, True])


def test_finder_on_untrained_dale_rnn_finds_fixed_points():
    env = gym.make("VWMRecall-v0", max_items=3, timing=TIMING)
    torch.manual_seed(0)
    model = DaleRNN(9, 6, n_neurons=48)
    result = run(model, env, n_trials=8, seed=0, epoch="decode", n_initial=16, newton_iterations=15)
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
        run(model, env, n_trials=2, seed=0, epoch="late")

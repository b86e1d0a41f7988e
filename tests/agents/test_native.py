"""The fused CPU kernels (vwm_agents.models.native) compute the eager maths.

Each kernel gets exactly the random numbers the eager path draws (two generators with the same
seed) and must agree with the eager ops to float32 rounding: relative 2e-6 on values that are
O(1) after scaling, which is ~16 float32 ulps (the kernels' exp and log are polynomial
approximations with errors of 1-2 ulps; the rest is the same arithmetic in another order).
NaN must propagate (a diverging run must still look diverged). Where the kernels cannot be
built, everything runs eagerly with the same numbers.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from test_fast_paths import one_torch_thread  # noqa: F401 (a fixture)

from vwm_agents.models import DaleRNN, native
from vwm_agents.models.euler import Activation, euler_loop
from vwm_agents.models.noise import slope_sampler

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(
        shutil.which(os.environ.get("CC") or "cc") is None
        and shutil.which("gcc") is None
        and shutil.which("clang") is None,
        reason="no C compiler: the kernels cannot be built here",
    ),
]

RTOL = 2e-6


def _kernels() -> native.NativeKernels:
    kernels = native.kernels()
    assert kernels is not None, "a C compiler is present, so the kernels must build"
    return kernels


def _rates_grid() -> torch.Tensor:
    """Rates from exactly 0 through the quiet range (boosted gamma draws, exponent floor) to
    saturation, each repeated over many draws."""
    levels = torch.tensor([0.0, 1e-12, 1e-6, 1e-3, 0.02, 0.3, 1.0, 4.0, 12.0, 30.0, 60.0, 300.0])
    return levels.repeat_interleave(512).view(48, 128)


def _draw_both(noise_type: str, rates: torch.Tensor, factor, with_slope: bool):
    results = []
    for use_native in (True, False):
        sample = slope_sampler(
            noise_type, factor, 10.0, torch.Generator().manual_seed(3), native=use_native
        )
        slope = torch.empty_like(rates) if with_slope else None
        results.append((sample(rates, torch.empty_like(rates), slope), slope))
    return results


def _assert_close(fused: torch.Tensor, eager: torch.Tensor, scale: torch.Tensor | float):
    """|fused - eager| <= RTOL * (|eager| + scale): relative where values are large, relative
    to the rate scale of the element where they cancel to ~0."""
    error = (fused - eager).abs()
    bound = RTOL * (eager.abs() + scale)
    worst = (error / bound).max()
    assert worst <= 1.0, f"max error {worst:.2f} x the float32 bound"


@pytest.mark.parametrize("factor", [0.05, 0.3])
@pytest.mark.parametrize("with_slope", [True, False])
def test_gamma_kernel_equals_eager_maths(factor, with_slope):
    _kernels()
    rates = _rates_grid()
    (fused, fused_slope), (eager, eager_slope) = _draw_both("gamma", rates, factor, with_slope)
    assert not torch.equal(fused, rates)
    _assert_close(fused, eager, rates + factor**2 / 0.01)
    if with_slope:
        _assert_close(fused_slope, eager_slope, 1.0)


def test_gauss_kernel_equals_eager_maths():
    _kernels()
    rates = _rates_grid()
    (fused, fused_slope), (eager, eager_slope) = _draw_both("gauss", rates, 0.2, True)
    _assert_close(fused, eager, rates + 1.0)
    _assert_close(fused_slope, eager_slope, 1.0)
    assert (fused == 0).any() and torch.equal(fused == 0, fused_slope == 0)  # ReLU passes none


@pytest.mark.parametrize("with_slope", [True, False])
def test_sigmoid_step_equals_eager_maths(with_slope):
    kernels = _kernels()
    pre = torch.linspace(-100.0, 100.0, 8192).view(64, 128)
    previous = torch.rand(64, 128, generator=torch.Generator().manual_seed(1)) * 60.0
    leak = torch.linspace(0.0, 1.0, 128).expand(64, 128).contiguous()
    activation = Activation(60.0)
    out, eager = torch.empty_like(pre), torch.empty_like(pre)
    slopes = [torch.empty_like(pre), torch.empty_like(pre)] if with_slope else [None, None]
    kernels.sigmoid_step(pre, previous, leak, 60.0, out, slopes[0])
    activation.rates_and_slope(pre.clone(), previous, leak, eager, slopes[1])
    _assert_close(out, eager, 60.0)
    if with_slope:
        _assert_close(slopes[0], slopes[1], 60.0 * 0.25)


def test_nan_and_inf_give_what_the_eager_ops_give():
    kernels = _kernels()
    rates = torch.tensor([[float("nan"), 5.0, 0.0, float("inf")] * 4])
    for noise_type in ("gamma", "gauss"):
        (fused, _), (eager, _) = _draw_both(noise_type, rates, 0.1, True)
        assert fused[:, 0].isnan().all() and fused[:, 1:3].isfinite().all(), noise_type
        assert torch.equal(fused.isnan(), eager.isnan()), noise_type
        assert torch.equal(fused.isinf(), eager.isinf()), noise_type
    out, eager = torch.empty_like(rates), torch.empty_like(rates)
    leak = torch.full_like(rates, 0.1)
    kernels.sigmoid_step(rates, torch.zeros_like(rates), leak, 60.0, out, None)
    Activation(60.0).rates_and_slope(rates.clone(), torch.zeros_like(rates), leak, eager, None)
    assert torch.equal(out.isnan(), rates.isnan()) and torch.equal(out.isnan(), eager.isnan())


def test_fused_gamma_draws_have_the_gamma_moments():
    """The float32 kernel's draws, at rates where the boost and the Wilson-Hilferty branch
    matter, have the exact Gamma mean and variance (K = k^2 / dt_s; mean r, variance r K),
    within 4.5 standard errors plus the sampler's documented bias (0.16 % / 0.4 %)."""
    _kernels()
    n, factor = 400_000, 0.3
    variance_per_rate = factor**2 / 0.01
    for rate in (0.1, 2.0, 40.0):
        sample = slope_sampler("gamma", factor, 10.0, torch.Generator().manual_seed(7))
        x = sample(torch.full((n // 128, 128), rate), None, None).double()
        shape = rate / variance_per_rate
        var = rate * variance_per_rate
        mu4 = 3 * shape * (shape + 2) * variance_per_rate**4  # fourth central moment of Gamma
        se_mean, se_var = math.sqrt(var / n), math.sqrt((mu4 - var**2) / n)
        assert abs(x.mean() - rate) <= 4.5 * se_mean + 0.0016 * rate, rate
        assert abs(x.var() - var) <= 4.5 * se_var + 0.004 * var, rate


def test_stacked_models_use_their_own_factor():
    _kernels()
    rates = torch.rand(3, 16, 32, generator=torch.Generator().manual_seed(2)) * 30.0
    factor = torch.tensor([0.05, 0.1, 0.3]).view(3, 1, 1)
    (fused, fused_slope), (eager, eager_slope) = _draw_both("gamma", rates, factor, True)
    _assert_close(fused, eager, rates + 9.0)
    _assert_close(fused_slope, eager_slope, 1.0)


def test_kernels_are_used_only_where_they_apply():
    kernels = _kernels()
    x = torch.zeros(8, 16)
    assert native.use_kernels(x, x) is kernels
    assert native.use_kernels(x.double()) is None
    assert native.use_kernels(x.t()) is None  # not contiguous
    assert native.use_kernels(x, torch.zeros(4, 16)) is None
    big = torch.zeros(256, 256)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # eager ops would split this across threads
        assert native.use_kernels(big) is None
        torch.set_num_threads(1)
        assert native.use_kernels(big) is kernels
    finally:
        torch.set_num_threads(threads)


def test_model_forward_and_gradients_equal_the_eager_path():
    """A DaleRNN training forward and backward through the kernels equals the eager ops."""
    _kernels()
    torch.manual_seed(4)
    model = DaleRNN(9, 6, n_neurons=24)
    ob = torch.rand(5, 40, 9) * 10.0
    results = []
    for use_native in (True, False):
        sample = slope_sampler(
            "gamma",
            model.spike_noise_factor,
            model.dt,
            torch.Generator().manual_seed(5),
            native=use_native,
        )
        gain, _ = model.activation_affine()
        weights = [model.input_weights, model.recurrent_weights, model.readout_weights]
        outputs, rates = euler_loop(
            model.input_drive(ob.transpose(0, 1)),
            model.W_eff * gain,
            model.leak,
            model.activation,
            sample,
            torch.zeros(5, 24),
            model.readout_weights,
            10,
            native=use_native,
        )
        loss = (outputs * torch.linspace(-1, 1, outputs.numel()).view_as(outputs)).sum()
        results.append((outputs, rates, torch.autograd.grad(loss + rates.mean(), weights)))
    (outputs, rates, grads), (eager_outputs, eager_rates, eager_grads) = results
    torch.testing.assert_close(rates, eager_rates, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outputs, eager_outputs, rtol=1e-4, atol=1e-4)
    for grad, eager_grad in zip(grads, eager_grads, strict=True):
        torch.testing.assert_close(grad, eager_grad, rtol=1e-3, atol=1e-4 * eager_grad.abs().max())


def _run_isolated(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_switched_off_or_unbuildable_kernels_fall_back_to_eager(tmp_path):
    """VWM_RNN_NATIVE=0: no kernels, silently. A compiler that fails, or none: one warning, no
    kernels, and the model still trains (eagerly). Without kernels the noise draws come from PyTorch's
    generator (Philox in integer ops would be 3-4x slower)."""
    code = """
        import warnings, torch
        from vwm_agents.models import native
        from vwm_agents.models import DaleRNN
        from vwm_agents.models.noise import noise_fn
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert native.kernels() is None
            assert native.kernels() is None  # tried once per process
        model = DaleRNN(6, 4, n_neurons=16)
        outputs, rates = model(torch.rand(2, 20, 6))
        rates.mean().backward()
        assert torch.isfinite(model.recurrent_weights.grad).all()
        r = torch.full((8, 16), 20.0)
        noisy = noise_fn("puregauss", 0.1, 10.0, torch.Generator().manual_seed(1))(r)
        expected = r + 1.5 * torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
        assert torch.allclose(noisy, expected.relu(), rtol=1e-6, atol=1e-5)
        print(len(caught), "|".join(str(w.message) for w in caught))
    """
    off = _run_isolated(code, {"VWM_RNN_NATIVE": "0", "VWM_RNN_CACHE": str(tmp_path / "a")})
    assert off.returncode == 0, off.stderr
    assert off.stdout.startswith("0 "), off.stdout
    failing = _run_isolated(code, {"CC": "false", "VWM_RNN_CACHE": str(tmp_path / "b")})
    assert failing.returncode == 0, failing.stderr
    assert failing.stdout.startswith("1 ") and "could not build" in failing.stdout, failing.stdout
    assert "eager PyTorch" in failing.stdout
    # no compiler on the PATH at all
    absent = _run_isolated(code, {"CC": "", "PATH": str(tmp_path), "VWM_RNN_CACHE": str(tmp_path)})
    assert absent.returncode == 0, absent.stderr
    assert absent.stdout.startswith("1 ") and "no C compiler" in absent.stdout, absent.stdout


def test_unknown_switch_value_warns_and_keeps_the_kernels(tmp_path):
    code = """
        import warnings
        from vwm_agents.models import native
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            print(native.kernels() is not None, "|".join(str(w.message) for w in caught))
    """
    result = _run_isolated(code, {"VWM_RNN_NATIVE": "maybe", "VWM_RNN_CACHE": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True "), result.stdout
    assert "VWM_RNN_NATIVE='maybe' is not one of 0, false" in result.stdout, result.stdout


def test_build_is_cached_per_source_compiler_and_cpu(tmp_path):
    code = """
        from vwm_agents.models import native
        print(native.kernels().path)
    """
    env = {"VWM_RNN_CACHE": str(tmp_path)}
    first, second = (_run_isolated(code, env) for _ in range(2))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    path = first.stdout.strip()
    assert path == second.stdout.strip() and path.startswith(str(tmp_path))
    assert len(list(tmp_path.rglob("*.so"))) == 1  # the second process reused the build

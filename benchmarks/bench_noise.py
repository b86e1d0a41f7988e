"""Cost of the spiking-noise samplers, per draw and inside a training iteration.

Per draw at rates (512, 256) (one Euler step of the default batch), forward and forward+backward
(gradient to the rates), median ms over repeats, all measured in this run:

* ``randn``: one Gaussian draw, the floor;
* ``torch_gamma``: ``torch.distributions.Gamma(...).rsample()``, the reference's sampler;
* ``gauss`` / ``gamma`` / ``csnr``: :func:`vwm_agents.models.noise.observe_rates`;
* ``gamma_wh_only``: Wilson-Hilferty without the boosting step (no exponential draw), the
  cheaper but inexact-for-small-shapes alternative the boosting is weighed against;
* ``philox_normal``: the CPU normals the samplers use (:mod:`vwm_agents.models.philox`), vs ``randn``.

Then the trainer's samplers (:func:`vwm_agents.models.noise.slope_sampler`: the draw and its slope, no
autograd) with the fused kernels (:mod:`vwm_agents.models.native`) and with eager ops only.

Then fwd+bwd of a DaleRNN iteration with gamma vs gauss noise (the target: gamma <= 1.25x gauss).

    python benchmarks/bench_noise.py [--repeats 20] [--iter-batch 512] [--iter-steps 202]
        [--clock wall|cpu] [--threads 1]

Prints a table and writes ``benchmarks/results/bench_noise.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from vwm_agents.models import DaleRNN, philox
from vwm_agents.models.noise import observe_rates, slope_sampler

DT_MS = 10.0
FACTOR = 0.05


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def _median_ms(fn: Callable[[], None], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = _clock()
        fn()
        times.append(_clock() - start)
    return 1000.0 * statistics.median(times)


def _wh_only(rates: torch.Tensor) -> torch.Tensor:
    dt_s = DT_MS / 1000.0
    c = FACTOR * torch.rsqrt((rates * dt_s).clamp_min(1e-20))
    z = torch.randn_like(rates)
    return rates * (1.0 - c.square() / 9.0 + c * z / 3.0).clamp_min(0.0).pow(3)


def _torch_gamma(rates: torch.Tensor) -> torch.Tensor:
    rate = (DT_MS / 1000.0) / FACTOR**2
    shape = (rates * rate).clamp_min(1e-10)
    return torch.distributions.Gamma(shape, torch.full_like(rates, rate)).rsample()


def samplers() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    return {
        "randn": lambda r: r + torch.randn_like(r),
        "philox_normal": lambda r: r + philox.normal(r),
        "torch_gamma": _torch_gamma,
        "gauss": lambda r: observe_rates(r, "gauss", FACTOR, DT_MS),
        "puregauss": lambda r: observe_rates(r, "puregauss", FACTOR, DT_MS),
        "gamma": lambda r: observe_rates(r, "gamma", FACTOR, DT_MS),
        "gamma_wh_only": _wh_only,
        "csnr": lambda r: observe_rates(r, "csnr", FACTOR, DT_MS),
    }


def bench_draws(shape: tuple[int, int], repeats: int) -> dict[str, dict[str, float]]:
    rates = (torch.rand(shape) * 40.0).requires_grad_()
    results = {}
    for name, sample in samplers().items():

        def forward(sample=sample) -> None:
            with torch.no_grad():
                sample(rates)

        def forward_backward(sample=sample) -> None:
            sample(rates).sum().backward()
            rates.grad = None

        results[name] = {
            "forward_ms": _median_ms(forward, repeats),
            "forward_backward_ms": _median_ms(forward_backward, repeats),
        }
    return results


def bench_slope_samplers(shape: tuple[int, int], repeats: int) -> dict[str, float]:
    rates = torch.rand(shape) * 40.0
    slope = torch.empty_like(rates)
    results = {}
    for noise_type in ("gauss", "gamma"):
        for label, use_native in (("fused", True), ("eager", False)):
            sample = slope_sampler(noise_type, FACTOR, DT_MS, native=use_native)
            results[f"{noise_type}_{label}"] = _median_ms(
                lambda s=sample: s(rates, None, slope), repeats
            )
    return results


def bench_iteration(batch: int, steps: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    ob = torch.rand(batch, steps, 30) * 12.0
    results = {}
    for noise_type in ("gauss", "gamma", "none"):
        model = DaleRNN(30, 20, spike_noise_type=noise_type, spike_noise_factor=FACTOR)

        def iteration(model=model) -> None:
            outputs, rates = model(ob)
            (outputs.square().mean() + rates.mean()).backward()
            model.zero_grad(set_to_none=True)

        results[noise_type] = _median_ms(iteration, repeats, warmup=1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--iter-batch", type=int, default=512)
    parser.add_argument("--iter-steps", type=int, default=202)
    parser.add_argument("--iter-repeats", type=int, default=3)
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="cpu: process CPU time, steadier on a shared machine (use with 1 thread)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (the fused kernels are serial: with more threads "
        "they run only below ATen's parallel grain size)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_noise.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global _clock
    _clock = CLOCKS[args.clock]

    shape = (512, 256)
    draws = bench_draws(shape, args.repeats)
    base = draws["randn"]
    print(f"noise draws at {shape}, median {args.clock} ms ({torch.get_num_threads()} threads)")
    print(f"{'sampler':<15}{'fwd':>9}{'fwd+bwd':>10}{'x randn fwd':>13}{'x randn f+b':>13}")
    for name, row in draws.items():
        row["forward_x_randn"] = row["forward_ms"] / base["forward_ms"]
        row["forward_backward_x_randn"] = row["forward_backward_ms"] / base["forward_backward_ms"]
        print(
            f"{name:<15}{row['forward_ms']:>9.3f}{row['forward_backward_ms']:>10.3f}"
            f"{row['forward_x_randn']:>13.2f}{row['forward_backward_x_randn']:>13.2f}"
        )

    slopes = bench_slope_samplers(shape, args.repeats)
    print(f"\ndraw + slope (the trainer's samplers), median {args.clock} ms")
    for name, ms in slopes.items():
        print(f"  {name:<13}{ms:>9.3f}")

    iteration = bench_iteration(args.iter_batch, args.iter_steps, args.iter_repeats)
    ratio = iteration["gamma"] / iteration["gauss"]
    print(f"\nDaleRNN fwd+bwd, B={args.iter_batch}, T={args.iter_steps}, N=256 (median ms)")
    for name, ms in iteration.items():
        print(f"  {name:<7}{ms:>10.1f}")
    print(f"  gamma / gauss = {ratio:.3f} (target <= 1.25)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "device": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "clock": args.clock,
        "draw_shape": list(shape),
        "noise_factor": FACTOR,
        "draws": draws,
        "draw_and_slope_ms": slopes,
        "iteration": {
            "batch": args.iter_batch,
            "steps": args.iter_steps,
            "ms": iteration,
            "gamma_over_gauss": ratio,
        },
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

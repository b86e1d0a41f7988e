"""Training-iteration speed of our path against the plain loop a user would write, same run.

One iteration = forward + loss (``rad`` error + 1e-5 mean |r|) + backward + Adam + the
non-negativity projection, on a fresh batch of VWMRecall trials (built before the clock starts).
Timed after warm-up; the median of ``--repeats``; all paths run in alternating rounds, so every
path sees the same background load and the *ratios* stay meaningful on a busy machine (use
``--clock cpu`` there: this process's CPU time, with one torch thread).

* ``ours``: :class:`vwm_agents.models.DaleRNN` + :mod:`vwm_agents.training.losses` through
  :class:`vwm_agents.training.accel.LossStep`, Adam and ``apply_constraints``: the trainer's path (the
  Euler loop as one autograd node with a hand-written backward, :mod:`vwm_agents.models.euler`).
* ``plain``: the loop a user would write (here in this file): a Python loop per Euler step over
  ``unbind``-ed inputs, list + ``torch.stack``, ``torch.distributions.Gamma(...).rsample()`` for
  gamma noise, readout of the decode window only, no asserts.
* ``autograd`` (``--with-autograd``): our model through :func:`vwm_agents.models.simulate`, the
  same loop through plain autograd (the trainer's path before the hand-written backward).
* ``reference`` (``--with-reference``): the model as its description reads, with a finiteness
  assert per step and ``Bu[:, t]`` / ``R[:, t] = r`` indexing (the baseline of earlier READMEs).
* ``floor``: the matrix products of one iteration of ``ours`` timed alone (per step the
  recurrent GEMM forward and the one backward; the recurrent, input and readout weight
  gradients and the input and readout products as single GEMMs), with nothing else.
* Gamma and Gaussian (``gauss``) spiking noise; ``--ensemble``: S models stacked
  (:mod:`vwm_agents.models.ensemble`) vs one model on the single-model path (aggregate model-iterations/s).

    python benchmarks/bench_train.py [--sizes default,reference] [--repeats 5] [--threads 1]
        [--clock auto|cpu|wall] [--quick] [--with-autograd] [--with-reference] [--ensemble]

Sizes: ``default`` N = 128, B = 128, K = 10; ``reference`` N = 256, B = 512, K = 10; dt = 10 ms
(T = 202 steps). Prints a table (with the machine's load average) and writes
``benchmarks/results/bench_train.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

import vwm_tasks  # noqa: F401 (registers the env ids)
from vwm_agents.models import DaleRNN, simulate
from vwm_agents.models.ensemble import ensemble_forward
from vwm_agents.training import losses
from vwm_agents.training.accel import LossStep, resolve_compile_mode, retain_freed_memory
from vwm_agents.training.losses import ensemble_vwm_loss
from vwm_tasks.batch import batch_tensors

RESULTS = Path(__file__).parent / "results" / "bench_train.json"
LAMBDA_REG = 1e-5
LEARNING_RATE = 1e-4
NOISE_FACTOR = 0.05
DT = 10.0


@dataclass(frozen=True)
class Size:
    name: str
    n_neurons: int
    max_items: int
    batch_size: int


SIZES = {
    "default": Size("default", 128, 10, 128),
    "reference": Size("reference", 256, 10, 512),
    "small": Size("small", 64, 10, 64),
}


# ----------------------------------------------------------------------------------------------
# The straightforward reference (written here, never imported by the package)


class ReferenceRNN(nn.Module):
    """The reference model as its description reads, step by step (no tricks)."""

    def __init__(self, n_in: int, n_out: int, n_neurons: int, noise_type: str) -> None:
        super().__init__()
        half = n_neurons // 2
        tau = 50.0 * torch.exp(torch.rand(n_neurons) * math.log(300.0 / 50.0))
        self.register_buffer("tau", torch.cat([tau[:half].sort().values, tau[half:].sort().values]))
        sign = torch.ones(n_neurons)
        sign[half:] = -1.0
        self.register_buffer("sign", sign)
        self.W = nn.Parameter(
            torch.randn(n_neurons, n_neurons).abs() / math.sqrt(0.682 * n_neurons)
        )
        self.B = nn.Parameter(torch.randn(n_neurons, n_in).abs() * 0.418)
        self.F = nn.Parameter(torch.randn(n_out, n_neurons) * math.sqrt(2.0 / (n_neurons + n_out)))
        self.noise_type = noise_type

    def observed_r(self, r: Tensor) -> Tensor:
        k, dt_s = NOISE_FACTOR, DT / 1000.0
        if self.noise_type == "gamma":
            rate = dt_s / k**2
            shape = torch.clamp(r * rate, min=1e-10)
            return torch.distributions.Gamma(shape, torch.full_like(r, rate)).rsample()
        return torch.relu(r + k * torch.sqrt(r * 1000.0 / DT + 1e-10) * torch.randn_like(r))

    def phi(self, x: Tensor) -> Tensor:
        return 30.0 * (1.0 + torch.tanh(0.14 * x - 4.2))

    def forward(self, u: Tensor) -> Tensor:
        n_trials, n_steps, _ = u.shape
        w_eff = self.W * self.sign[None, :]
        bu = u @ self.B.T
        r = u.new_zeros(n_trials, self.W.shape[0])
        r_output = u.new_zeros(n_trials, n_steps, self.W.shape[0])
        for t in range(n_steps):
            r_tilde = self.observed_r(r)
            r = r + DT * (-r + self.phi(r_tilde @ w_eff.T + bu[:, t])) / self.tau
            assert torch.isfinite(r).all() and (r >= 0).all(), "rates became invalid"
            r_output[:, t] = r
        return r_output

    def readout(self, r: Tensor) -> Tensor:
        return self.observed_r(r) @ self.F.T


def reference_loss(
    model: ReferenceRNN, u: Tensor, theta: Tensor, presence: Tensor, decode_start: int
) -> Tensor:
    r = model(u)
    u_hat = model.readout(r[:, decode_start:])  # (B, steps, 2K)
    pairs = u_hat.reshape(*u_hat.shape[:2], -1, 2)
    unit = pairs / pairs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    mean_unit = unit.mean(dim=1)  # (B, K, 2)
    target = torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)
    cosine = (mean_unit * target).sum(dim=-1).clamp(-1 + 1e-6, 1 - 1e-6)
    p = presence.float()
    error = (torch.acos(cosine) * p).sum(dim=1) / p.sum(dim=1)
    return error.mean() + LAMBDA_REG * r.abs().mean()


def reference_iteration(model: ReferenceRNN, optimizer: torch.optim.Optimizer, data) -> None:
    u, theta, presence, decode_start = data
    optimizer.zero_grad()
    loss = reference_loss(model, u, theta, presence, decode_start)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        model.W.clamp_(min=0.0)
        model.B.clamp_(min=0.0)


# ----------------------------------------------------------------------------------------------
# The plain loop a user would write (here in this file, never imported by the package)


class PlainRNN(ReferenceRNN):
    """The same model written as a user would: unbind + list + stack, no asserts."""

    def forward(self, u: Tensor) -> Tensor:
        w_eff_t = (self.W * self.sign).T
        bu = u @ self.B.T
        r = u.new_zeros(u.shape[0], self.W.shape[0])
        states = []
        for bu_t in bu.unbind(1):
            r = r + DT * (-r + self.phi(self.observed_r(r) @ w_eff_t + bu_t)) / self.tau
            states.append(r)
        return torch.stack(states, dim=1)


def make_reference(
    model_class, n_in: int, n_out: int, size: Size, noise_type: str, device: torch.device, data
):
    model = model_class(n_in, n_out, size.n_neurons, noise_type).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    return lambda: reference_iteration(model, optimizer, data)


def make_autograd(
    size: Size,
    n_in: int,
    n_out: int,
    noise_type: str,
    device: torch.device,
    data,
    readout_from: int,
):
    """Our model through simulate (plain autograd), as the trainer ran before the fused loop."""
    model = DaleRNN(
        n_in, n_out, size.n_neurons, spike_noise_type=noise_type, spike_noise_factor=NOISE_FACTOR
    ).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    ob, gt, mask = data

    def iteration() -> None:
        optimizer.zero_grad(set_to_none=True)
        gain, _ = model.activation_affine()
        outputs, rates = simulate(
            model.input_drive(ob.transpose(0, 1)),
            model.W_eff * gain,
            model.leak,
            model.nonlinearity,
            model.noise(generator=generator),
            ob.new_zeros(ob.shape[0], model.n_neurons),
            model.readout_weights,
            readout_from,
        )
        loss = losses.vwm_trial_error(
            outputs, gt, mask, "rad"
        ).mean() + LAMBDA_REG * losses.activity_penalty(rates, nonnegative=True)
        loss.backward()
        optimizer.step()
        model.apply_constraints()

    return iteration


def make_floor(size: Size, n_in: int, n_out: int, n_steps: int, device: torch.device):
    """The GEMMs of one iteration of ours, alone, on random data of the same shapes."""
    b, n = size.batch_size, size.n_neurons

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, device=device)

    weights, inputs, readout = randn(n, n), randn(n_in, n), randn(n, n_out)
    ob, states, grads = randn(n_steps * b, n_in), randn(n_steps, b, n), randn(n_steps, b, n)
    grad_out = randn(n_steps * b, n_out)
    out = torch.empty(b, n, device=device)

    def iteration() -> None:
        drive = ob @ inputs  # input projection
        for step in range(n_steps):  # forward: one GEMM (with its add) per step
            torch.addmm(drive[step * b : (step + 1) * b], states[step], weights, out=out)
        for step in range(n_steps):  # backward through time: one GEMM per step
            torch.mm(grads[step], weights, out=out)
        flat_states, flat_grads = states.view(-1, n), grads.view(-1, n)
        flat_states @ readout  # readout
        grad_out @ readout.T  # readout, backward
        grad_out.T @ flat_states  # readout weight gradient
        flat_grads.T @ flat_states  # recurrent weight gradient
        ob.T @ flat_grads  # input weight gradient

    return iteration


# ----------------------------------------------------------------------------------------------
# Our path


def our_loss_fn(model: DaleRNN, generator: torch.Generator | None):
    def loss_fn(ob: Tensor, gt: Tensor, mask: Tensor, readout_from: int = 0):
        outputs, rates = model(ob, generator=generator, readout_from=readout_from)
        error = losses.vwm_trial_error(outputs, gt, mask, "rad").mean()
        return error + LAMBDA_REG * losses.activity_penalty(rates, nonnegative=True), outputs, rates

    return loss_fn


def make_ours(size: Size, env, noise_type: str, device: torch.device, compile_mode: str):
    model = DaleRNN(
        env.observation_space.shape[0],
        env.action_space.shape[0],
        size.n_neurons,
        spike_noise_type=noise_type,
        spike_noise_factor=NOISE_FACTOR,
    ).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    step = LossStep(
        our_loss_fn(model, generator),
        list(model.parameters()),
        compile_mode,
        generators=[generator],
    )

    def iteration(data, readout_from: int) -> None:
        step(*data, readout_from=readout_from)
        optimizer.step()
        model.apply_constraints()

    return iteration


def make_ensemble(size: Size, env, n_models: int, device: torch.device, compile_mode: str):
    n_in, n_out = env.observation_space.shape[0], env.action_space.shape[0]
    models = [
        DaleRNN(n_in, n_out, size.n_neurons, spike_noise_factor=NOISE_FACTOR).to(device)
        for _ in range(n_models)
    ]
    generators = [torch.Generator(device=device).manual_seed(s) for s in range(n_models)]
    optimizers = [torch.optim.Adam(m.parameters(), lr=LEARNING_RATE) for m in models]

    def loss_fn(ob: Tensor, gt: Tensor, mask: Tensor, readout_from: int = 0):
        outputs, rates = ensemble_forward(
            models, ob, generators=generators, readout_from=readout_from
        )
        per_model = ensemble_vwm_loss(
            outputs, rates, gt, mask, error_def="rad", nonnegative=True, lambda_reg=LAMBDA_REG
        )
        return per_model.sum(), outputs, rates

    params = [p for m in models for p in m.parameters()]
    step = LossStep(loss_fn, params, compile_mode, generators=generators)

    def iteration(data, readout_from: int) -> None:
        step(*data, readout_from=readout_from)
        for model, optimizer in zip(models, optimizers, strict=True):
            optimizer.step()
            model.apply_constraints()

    return iteration


# ----------------------------------------------------------------------------------------------
# Timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_median_s(
    paths: dict[str, Callable[[], None]],
    repeats: int,
    warmup: int,
    device: torch.device,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each path, timed in alternating rounds after warm-up."""
    for fn in paths.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            synchronize(device)
            start = clock()
            fn()
            synchronize(device)
            times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def matmul_peak_gflops(
    device: torch.device, clock: Callable[[], float] = time.perf_counter, repeats: int = 50
) -> float:
    a = torch.randn(512, 256, device=device)
    b = torch.randn(256, 256, device=device)
    for _ in range(5):
        a @ b
    synchronize(device)
    best = math.inf
    for _ in range(repeats):
        start = clock()
        for _ in range(10):
            a @ b
        synchronize(device)
        best = min(best, (clock() - start) / 10)
    return 2 * 512 * 256 * 256 / best / 1e9


def iteration_gflop(size: Size, n_in: int, n_out: int, n_steps: int, readout_steps: int) -> float:
    b, n = size.batch_size, size.n_neurons
    recurrent = 3 * n_steps * 2 * b * n * n  # forward, grad wrt rates, grad wrt weights
    inputs = 2 * 2 * b * n_steps * n_in * n  # forward, grad wrt weights (inputs need none)
    readout = 3 * 2 * b * readout_steps * n * n_out
    return (recurrent + inputs + readout) / 1e9


# ----------------------------------------------------------------------------------------------


def bench_size(
    size: Size,
    device: torch.device,
    compile_mode: str,
    repeats: int,
    warmup: int,
    peak: float,
    n_steps_override: int | None,
    clock: Callable[[], float] = time.perf_counter,
    *,
    with_autograd: bool = False,
    with_reference: bool = False,
    noise_types: tuple[str, ...] = ("gauss", "gamma"),
) -> dict:
    timing = None
    if n_steps_override is not None:  # --quick: shorten the delay, keep the epochs' shape
        timing = {"init": 20, "stimulus": 100, "delay": 100, "decode": 100}
    env = gym.make("VWMRecall-v0", max_items=size.max_items, dt=DT, timing=timing).unwrapped
    batch = env.sample_batch(size.batch_size, np.random.default_rng(0), balance_set_sizes=True)
    ob, gt, mask = (x.to(device) for x in batch_tensors(env, batch, device))
    n_steps = ob.shape[1]
    decode_start = int(batch.epochs["decode"][0, 0])
    reference_data = (
        ob,
        torch.as_tensor(batch.theta, dtype=torch.float32, device=device),
        torch.as_tensor(batch.presence, device=device),
        decode_start,
    )
    n_in, n_out = ob.shape[-1], gt.shape[-1]

    torch.manual_seed(0)
    paths: dict[str, Callable[[], None]] = {"floor": make_floor(size, n_in, n_out, n_steps, device)}
    for noise_type in noise_types:
        paths[f"plain/{noise_type}"] = make_reference(
            PlainRNN, n_in, n_out, size, noise_type, device, reference_data
        )
        ours = make_ours(size, env, noise_type, device, compile_mode)
        # As the trainer runs it: no readout noise before the decode epoch (no loss sees it).
        paths[f"ours/{noise_type}"] = lambda it=ours: it((ob, gt, mask), decode_start)
        if with_autograd:
            paths[f"autograd/{noise_type}"] = make_autograd(
                size, n_in, n_out, noise_type, device, (ob, gt, mask), decode_start
            )
        if with_reference:
            paths[f"reference/{noise_type}"] = make_reference(
                ReferenceRNN, n_in, n_out, size, noise_type, device, reference_data
            )
    seconds = interleaved_median_s(paths, repeats, warmup, device, clock)

    gflop = iteration_gflop(size, n_in, n_out, n_steps, n_steps)
    rows = {
        name: {"ms": 1e3 * s, "gflops": gflop / s, "fraction_of_peak": gflop / s / peak}
        for name, s in seconds.items()
    }
    ratios = {}
    for noise_type in noise_types:
        ours = seconds[f"ours/{noise_type}"]
        for baseline in ("plain", "autograd", "reference"):
            if f"{baseline}/{noise_type}" in seconds:
                ratios[f"{baseline}/{noise_type} over ours"] = (
                    seconds[f"{baseline}/{noise_type}"] / ours
                )
        ratios[f"ours/{noise_type} over floor"] = ours / seconds["floor"]
    return {
        "size": size.__dict__ | {"n_steps": n_steps, "dt": DT},
        "gemm_gflop": gflop,
        "paths": rows,
        "ratios": ratios,
    }


def bench_ensemble(
    size: Size,
    device: torch.device,
    compile_mode: str,
    n_models: int,
    repeats: int,
    warmup: int,
    n_steps_override: int | None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    timing = (
        {"init": 20, "stimulus": 100, "delay": 100, "decode": 100}
        if n_steps_override is not None
        else None
    )
    env = gym.make("VWMRecall-v0", max_items=size.max_items, dt=DT, timing=timing).unwrapped
    rng = np.random.default_rng(0)

    def member_batches(count: int):
        batches = [
            env.sample_batch(size.batch_size, rng, balance_set_sizes=True) for _ in range(count)
        ]
        tensors = [batch_tensors(env, batch, device) for batch in batches]
        return tuple(torch.stack([t[i] for t in tensors]).to(device) for i in range(3))

    decode_start = int(env.sample_batch(1, rng).epochs["decode"][0, 0])

    torch.manual_seed(0)
    stacked = make_ensemble(size, env, n_models, device, compile_mode)
    # The baseline is one model on the plain single-model path (what S separate runs would use).
    single = make_ours(size, env, "gamma", device, compile_mode)
    stacked_data = member_batches(n_models)
    single_data = tuple(x[0] for x in member_batches(1))
    seconds = interleaved_median_s(
        {
            "S=1": lambda: single(single_data, decode_start),
            f"S={n_models}": lambda: stacked(stacked_data, decode_start),
        },
        repeats,
        warmup,
        device,
        clock,
    )
    per_model_1 = seconds["S=1"]
    per_model_s = seconds[f"S={n_models}"] / n_models
    return {
        "size": size.__dict__,
        "n_models": n_models,
        "ms_per_iteration": {k: 1e3 * v for k, v in seconds.items()},
        "model_iterations_per_s": {"S=1": 1 / per_model_1, f"S={n_models}": 1 / per_model_s},
        "aggregate_speedup": per_model_1 / per_model_s,
    }


def print_table(results: dict) -> None:
    print(
        f"device: {results['device']}  torch {results['torch']}  threads {results['threads']}  "
        f"compile={results['compile']}  clock={results['clock']}  "
        f"retain_freed_memory={results['retain_freed_memory']}  "
        f"matmul peak {results['matmul_peak_gflops']:.0f} GFLOP/s  "
        f"load average {results['load_average_start']} -> {results['load_average_end']} "
        f"on {results['cpu_count']} CPUs"
    )
    for entry in results["sizes"]:
        size = entry["size"]
        print(
            f"\n{size['name']}: N={size['n_neurons']} K={size['max_items']} "
            f"B={size['batch_size']} T={size['n_steps']} (dt={size['dt']:g} ms)"
        )
        print(f"  {'path':<18}{'ms/iter':>10}{'GFLOP/s':>10}{'% peak':>8}")
        for name, row in entry["paths"].items():
            print(
                f"  {name:<18}{row['ms']:>10.1f}{row['gflops']:>10.1f}"
                f"{100 * row['fraction_of_peak']:>7.0f}%"
            )
        for name, value in entry["ratios"].items():
            print(f"  {name:<36}{value:>6.2f}x")
    if "ensemble" in results:
        ens = results["ensemble"]
        print(
            f"\nensemble ({ens['size']['name']}): ms/iteration {ens['ms_per_iteration']}; "
            f"model-iterations/s {ens['model_iterations_per_s']}; "
            f"aggregate x{ens['aggregate_speedup']:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile", default="auto", choices=("auto", "off", "graph", "inductor"))
    parser.add_argument(
        "--sizes", default="default,reference", help=f"comma-separated, from {tuple(SIZES)}"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="T=32 steps and 3 repeats (a smoke run, not for the README)",
    )
    parser.add_argument("--noise", default="gauss,gamma", help="comma-separated noise types")
    parser.add_argument(
        "--with-autograd",
        action="store_true",
        help="also time our model through plain autograd (simulate)",
    )
    parser.add_argument(
        "--with-reference",
        action="store_true",
        help="also time the reference as its description reads (per-step assert)",
    )
    parser.add_argument("--ensemble", action="store_true", help="also time S stacked models")
    parser.add_argument("--num-models", type=int, default=16)
    parser.add_argument("--ensemble-size", default="small", choices=tuple(SIZES))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--clock",
        default="auto",
        choices=("auto", "wall", "cpu"),
        help="cpu: this process's CPU time (robust to other load on a busy "
        "machine; single-threaded CPU runs only); auto: cpu when --device cpu "
        "and 1 thread, else wall",
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="do not call vwm_agents.training.accel.retain_freed_memory (CPU)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    for name in args.sizes.split(","):
        if name not in SIZES:
            parser.error(f"--sizes: unknown size {name!r}; allowed: {tuple(SIZES)}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    single_cpu = device.type == "cpu" and torch.get_num_threads() == 1
    if args.clock == "cpu" and not single_cpu:
        parser.error("--clock cpu: needs --device cpu and --threads 1 (CPU time sums threads)")
    clock_name = "cpu" if args.clock == "cpu" or (args.clock == "auto" and single_cpu) else "wall"
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    compile_mode = resolve_compile_mode(args.compile, device)
    retained = device.type == "cpu" and not args.default_malloc and retain_freed_memory()
    repeats = 3 if args.quick else args.repeats
    n_steps = 32 if args.quick else None
    device_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()} CPU"
    )
    peak = matmul_peak_gflops(device, clock)
    results = {
        "device": device_name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "compile": compile_mode,
        "clock": clock_name,
        "retain_freed_memory": retained,
        "repeats": repeats,
        "quick": args.quick,
        "matmul_peak_gflops": peak,
        "sizes": [],
        "cpu_count": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }
    for name in args.sizes.split(","):
        results["sizes"].append(
            bench_size(
                SIZES[name],
                device,
                compile_mode,
                repeats,
                args.warmup,
                peak,
                n_steps,
                clock,
                with_autograd=args.with_autograd,
                with_reference=args.with_reference,
                noise_types=tuple(args.noise.split(",")),
            )
        )
    if args.ensemble:
        results["ensemble"] = bench_ensemble(
            SIZES[args.ensemble_size],
            device,
            compile_mode,
            args.num_models,
            repeats,
            args.warmup,
            n_steps,
            clock,
        )
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

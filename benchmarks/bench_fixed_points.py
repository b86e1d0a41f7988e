"""Fixed-point finding: Adam alone against Adam followed by the batched damped Newton refinement.

Both start from the same initial states (drawn from the trajectories of an agent on set-size-1
trials, as :func:`analysis.neural.fixed_points.run` draws them) and minimise q = 1/2 ||F(x) - x||^2 in
float64 with the agent's noise off and zero input. The agent is a DaleRNN (default) or a GRU
(``--agent gru``); both give their one-step map through :func:`analysis.core.agent_protocol.step_map`. Reported per method: wall and CPU seconds,
iterations, how many states reached q < tol_q, median and max final q, and the time ratio
against Adam alone measured in the same run.

    python benchmarks/bench_fixed_points.py [--agent dale_rnn|gru] [--neurons 256] [--states 256]
        [--epoch decode] [--adam-only-iterations 1500] [--adam-iterations 50]
        [--newton-iterations 30] [--progress]

Prints a table and writes ``benchmarks/results/bench_fixed_points.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import vwm_tasks  # noqa: F401  (registers the envs)
from analysis.core.agent_protocol import is_rate_network, step_map
from analysis.core.neural_trials import forced_trials, simulate
from analysis.neural.fixed_points import find_fixed_points, sample_initial_states
from vwm_agents.models import DaleRNN, GRUAgent

RESULTS = Path(__file__).parent / "results" / "bench_fixed_points.json"


def initial_states(
    model: torch.nn.Module, env, n_states: int, epoch: str, seed: int
) -> torch.Tensor:
    k = env.unwrapped.max_items
    n_trials = 20
    theta = np.zeros((n_trials, k))
    theta[:, 0] = np.linspace(-np.pi, np.pi, n_trials, endpoint=False)
    presence = np.zeros((n_trials, k), bool)
    presence[:, 0] = True
    rng = np.random.default_rng(seed)
    trials = forced_trials(env, theta, presence, ilc_noise=0.0, rng=rng)
    rates = simulate(model, trials, noise=False, seed=seed).rates.double().numpy()
    states = sample_initial_states(rates, trials.epochs, epoch, n_states, rng, valid=trials.valid)
    return torch.as_tensor(states, dtype=torch.float64)


def measure(step, x0: torch.Tensor, tol_q: float, **options) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    search = find_fixed_points(step, x0, tol_q=tol_q, **options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    q = search.q.numpy()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "adam_iterations": search.adam_iterations,
        "newton_iterations": search.newton_iterations,
        "converged": int((q < tol_q).sum()),
        "median_q": float(np.median(q)),
        "max_q": float(q.max()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", choices=("dale_rnn", "gru"), default="dale_rnn")
    parser.add_argument("--neurons", type=int, default=256, help="neurons (GRU: hidden units)")
    parser.add_argument("--states", type=int, default=256)
    parser.add_argument("--epoch", default="decode")
    parser.add_argument("--adam-only-iterations", type=int, default=1500)
    parser.add_argument("--adam-iterations", type=int, default=50)
    parser.add_argument("--newton-iterations", type=int, default=30)
    parser.add_argument("--tol-q", type=float, default=1e-12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--progress", action="store_true", help="progress bar of each search")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    env = gym.make("VWMRecall-v0")
    n_in, n_out = env.observation_space.shape[0], env.action_space.shape[0]
    if args.agent == "gru":
        model = GRUAgent(n_in, n_out, n_hidden=args.neurons)
    else:
        model = DaleRNN(n_in, n_out, n_neurons=args.neurons)
    x0 = initial_states(model, env, args.states, args.epoch, args.seed)
    model64 = model.double().eval()
    for p in model64.parameters():
        p.requires_grad_(False)
    step = step_map(model64)
    common = {"nonnegative": is_rate_network(model64), "progress": args.progress}

    # Warm-up (lazy imports and first-call allocations) so that neither row pays for it.
    measure(step, x0[:2], args.tol_q, adam_iterations=2, newton_iterations=2, **common)
    rows = {
        "adam_only": measure(
            step,
            x0,
            args.tol_q,
            adam_iterations=args.adam_only_iterations,
            newton_iterations=0,
            **common,
        ),
        "adam_newton": measure(
            step,
            x0,
            args.tol_q,
            adam_iterations=args.adam_iterations,
            newton_iterations=args.newton_iterations,
            **common,
        ),
    }
    baseline = rows["adam_only"]["wall_s"]
    for row in rows.values():
        row["time_ratio_vs_adam_only"] = row["wall_s"] / baseline

    print(
        f"{args.agent}, {args.neurons} neurons, {args.states} initial states ({args.epoch}), tol_q {args.tol_q:g}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'method':<12} {'wall s':>8} {'cpu s':>8} {'adam it':>8} {'newton it':>9} "
        f"{'converged':>10} {'median q':>10} {'max q':>10} {'ratio':>6}"
    )
    for name, r in rows.items():
        print(
            f"{name:<12} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['adam_iterations']:8d} "
            f"{r['newton_iterations']:9d} {r['converged']:>6d}/{args.states:<3d} {r['median_q']:10.2e} "
            f"{r['max_q']:10.2e} {r['time_ratio_vs_adam_only']:6.2f}"
        )
    report = {
        "config": vars(args) | {"out": str(args.out)},
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()

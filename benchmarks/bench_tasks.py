"""Trials per second of the VWMRecall batch builders against neurogym.Dataset (same run).

    python benchmarks/bench_tasks.py [--batch-size 512] [--min-time 2] [--device cpu]

Prints a table and writes ``benchmarks/results/bench_tasks.json`` (ms per batch, trials/s and
the ratio to ``neurogym.Dataset``, measured in this run on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import neurogym as ngym
import numpy as np
import torch

import vwm_tasks  # noqa: F401 - registers the ids (gymnasium is imported first on purpose)

RESULTS = Path(__file__).parent / "results" / "bench_tasks.json"


def seconds_per_call(
    methods: dict[str, Callable[[], object]], min_time: float
) -> dict[str, tuple[float, float]]:
    """(median, best) seconds per call of each method, timed in interleaved rounds.

    Round-robin timing exposes every method to the same background load, so the ratios stay
    meaningful on a busy machine even when the absolute numbers drift; the best (minimum) time
    is the least disturbed by that load.
    """
    for fn in methods.values():
        fn()  # warm up (caches, allocator, the first Dataset fill)
    times: dict[str, list[float]] = {name: [] for name in methods}
    start = time.perf_counter()
    while (
        time.perf_counter() - start < min_time * len(methods) or min(map(len, times.values())) < 5
    ):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (float(np.median(t)), float(np.min(t))) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per method")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    batch_size = args.batch_size
    env = gym.make("VWMRecall-v0").unwrapped
    env.seed(0)
    n_steps = int(sum(env.timing.values()) // env.dt)
    rng = np.random.default_rng(0)
    dataset = ngym.Dataset(env, batch_size=batch_size, seq_len=n_steps, batch_first=True)

    def tensors_on_device():
        ob, gt, mask = env.batch_tensors(
            env.sample_batch(batch_size, rng, dense=False), args.device
        )
        if ob.is_cuda:
            torch.cuda.synchronize()

    methods: dict[str, Callable[[], object]] = {
        "neurogym.Dataset (baseline)": dataset,
        "new_trial loop (no copy)": lambda: [env.new_trial() for _ in range(batch_size)],
        "sample_batch(dense=True)": lambda: env.sample_batch(batch_size, rng),
        "sample_batch(dense=False)": lambda: env.sample_batch(batch_size, rng, dense=False),
        f"compact + batch_tensors({args.device})": tensors_on_device,
    }
    results = {
        name: {
            "ms_per_batch": 1e3 * median,
            "trials_per_s": batch_size / median,
            "best_ms_per_batch": 1e3 * best,
            "best_trials_per_s": batch_size / best,
        }
        for name, (median, best) in seconds_per_call(methods, args.min_time).items()
    }
    baseline = results["neurogym.Dataset (baseline)"]
    for row in results.values():
        row["ratio_vs_dataset"] = row["trials_per_s"] / baseline["trials_per_s"]
        row["best_ratio_vs_dataset"] = row["best_trials_per_s"] / baseline["best_trials_per_s"]

    width = max(map(len, results))
    print(
        f"VWMRecall-v0, B={batch_size}, T={n_steps}, K={env.max_items}, "
        f"n_in={env.observation_space.shape[0]}, n_out={env.n_outputs}"
    )
    print(
        f"{'method':<{width}}  {'ms/batch':>9}  {'trials/s':>11}  {'x Dataset':>9}  "
        f"{'best ms':>8}  {'best x':>7}"
    )
    for name, row in results.items():
        print(
            f"{name:<{width}}  {row['ms_per_batch']:9.2f}  {row['trials_per_s']:11.0f}  "
            f"{row['ratio_vs_dataset']:9.1f}  {row['best_ms_per_batch']:8.2f}  "
            f"{row['best_ratio_vs_dataset']:7.1f}"
        )
    print("(median over interleaved rounds; 'best' = fastest call)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "bench_tasks",
        "env": "VWMRecall-v0",
        "batch_size": batch_size,
        "n_steps": n_steps,
        "max_items": env.max_items,
        "device": args.device,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "neurogym": ngym.__version__,
        },
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Calibrates the memory estimate of :mod:`vwm_agents.training.resources` against peak RSS.

Each point trains 2 iterations of ``configs/default.yaml`` (one thread, CPU) in its own process
and reads the process's peak resident memory (``ru_maxrss``); the points differ in one size at a
time, so the difference of two peaks over the difference of the (B, T, N) elements is the bytes
each element costs (the backward's buffers, or the evaluation's), and the rest of the run is the
same in both. Compares the factors with those the estimate uses and the estimate with the peaks.

    python benchmarks/bench_memory.py

Prints the measured factors and writes ``benchmarks/bench_memory.json`` (cited by docs/training.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).with_suffix(".json")
BASE = [
    "training.num_iterations=2",
    "logging.period=2",
    "training.threads=1",
    "training.device=cpu",
    "logging.progress=false",
    "agent.n_neurons=128",
]
POINTS = {  # name: (batch_size, eval_batch_size)
    "small": (64, 64),
    "train_batch": (512, 64),
    "eval_batch": (64, 1024),
}


def child(batch_size: int, eval_batch_size: int) -> dict:
    import resource

    from vwm_agents import load_config, train
    from vwm_agents.training.resources import estimate_memory
    from vwm_agents.training.run import make_env

    config = load_config(
        overrides=[
            *BASE,
            f"training.batch_size={batch_size}",
            f"training.eval_batch_size={eval_batch_size}",
        ]
    )
    estimate = estimate_memory(config, make_env(config), "cpu")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    train(config, tempfile.mkdtemp())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "peak_bytes": peak,
        "before_bytes": before,
        "n_steps": estimate.n_steps,
        "n_neurons": 128,
        "estimate_bytes": estimate.total,
        "parts": estimate.parts,
    }


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(child(int(sys.argv[1]), int(sys.argv[2]))))
        return
    points = {}
    for name, (batch, eval_batch) in POINTS.items():
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        out = subprocess.run(
            [sys.executable, __file__, str(batch), str(eval_batch)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        points[name] = json.loads(out.strip().splitlines()[-1]) | {
            "batch_size": batch,
            "eval_batch_size": eval_batch,
        }
    small = points["small"]
    per_step = small["n_steps"] * small["n_neurons"]
    factors = {
        "train_bytes_per_BTN": (points["train_batch"]["peak_bytes"] - small["peak_bytes"])
        / ((512 - 64) * per_step),
        "eval_bytes_per_BTN": (points["eval_batch"]["peak_bytes"] - small["peak_bytes"])
        / ((1024 - 64) * per_step),
    }
    report = {"points": points, "measured": factors}
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(factors, indent=2))
    for name, point in points.items():
        print(
            f"{name}: peak RSS {point['peak_bytes'] / 2**20:.0f} MiB (before training "
            f"{point['before_bytes'] / 2**20:.0f} MiB), estimate {point['estimate_bytes'] / 2**20:.0f} MiB"
        )


if __name__ == "__main__":
    main()

"""One model on P processes: training iterations per second at the reference size.

The trainer's own iteration (``Trainer.step``: draw, forward, ``rad`` loss + rate penalty,
hand-written backward, all-reduce, Adam, Dale projection) of ``configs/original.yaml``'s model
(N = 256, K = 10, T = 202 steps, gamma noise) on a global batch of 512 trials, one torch thread
per process:

* ``P = 1``: the plain single-process trainer (no torch.distributed at all), the baseline;
* ``P = 2, 4, ...`` (up to ``--max-processes``, default: the cores this machine has):
  ``torchrun --nproc_per_node=P``, each rank 512 / P trials, gradients averaged with gloo.

Measured in the same run, each after ``--warmup`` iterations: wall seconds per iteration (median
of ``--iterations``), and apart rank 0's time in the all-reduce and, before it, its wait at a
barrier for the slowest rank (the benchmark adds that barrier to tell the two apart). For the projection
to machines with more cores the script also times one process on the batch a rank would get
there (512 / 16 = 32 and 512 / 64 = 8 trials): per-rank compute does not shrink in proportion
with the batch, because every one of the 202 time steps has a fixed cost.

    python benchmarks/bench_distributed.py [--iterations 8] [--warmup 2] [--max-processes P]

Prints a table and writes ``benchmarks/bench_distributed.json`` (cited by the docs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).with_suffix(".json")
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "original.yaml"
GLOBAL_BATCH = 512


def worker(iterations: int, warmup: int, batch_size: int, out: Path) -> None:
    """One rank (or the single process): time ``Trainer.step`` and its all-reduce."""
    import torch

    from vwm_agents import load_config
    from vwm_agents.training.accel import retain_freed_memory
    from vwm_agents.training.distributed import process_group
    from vwm_agents.training.run import resolve_run
    from vwm_agents.training.trainer import Trainer

    config = load_config(
        CONFIG,
        [
            f"training.batch_size={batch_size}",
            "training.eval_batch_size=8",
            "training.threads=1",
            "training.device=cpu",
            "logging.progress=false",
        ],
    )
    torch.set_num_threads(1)
    retain_freed_memory()  # as the command line does
    cfg = config.training
    with process_group(cfg.distributed_backend, torch.device("cpu"), 600) as dist:
        run = resolve_run(config)
        trainer = Trainer.from_run(run, dist=dist)
        reduce_seconds: list[float] = []
        wait_seconds: list[float] = []
        reduce_step = dist.reduce_step

        def timed_reduce(*args, **kwargs):
            # A barrier first, timed apart: the wait for the slowest rank is not communication.
            start = time.perf_counter()
            if dist.active:
                torch.distributed.barrier()
            wait_seconds.append(time.perf_counter() - start)
            start = time.perf_counter()
            try:
                return reduce_step(*args, **kwargs)
            finally:
                reduce_seconds.append(time.perf_counter() - start)

        # The trainer gets a copy (one process's SINGLE is a shared constant) with the timed
        # collective in place of its method; the dataclass is frozen.
        dist = dataclasses.replace(dist)
        object.__setattr__(dist, "reduce_step", timed_reduce)
        trainer.dist = dist
        seconds = []
        for index in range(warmup + iterations):
            start = time.perf_counter()
            trainer.step()
            if index >= warmup:
                seconds.append(time.perf_counter() - start)
        if dist.is_main:
            reduce_timed = reduce_seconds[warmup:] if dist.active else []
            out.write_text(
                json.dumps(
                    {
                        "processes": dist.world_size,
                        "rank_batch": dist.local_batch_size(batch_size),
                        "seconds_per_iteration": statistics.median(seconds),
                        "allreduce_seconds": statistics.median(reduce_timed)
                        if reduce_timed
                        else 0.0,
                        "wait_seconds": statistics.median(wait_seconds[warmup:])
                        if dist.active
                        else 0.0,
                    }
                )
            )


def launch(processes: int, batch_size: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        child = [
            __file__,
            "--child",
            str(out),
            "--batch-size",
            str(batch_size),
            "--iterations",
            str(args.iterations),
            "--warmup",
            str(args.warmup),
        ]
        if processes == 1:
            command = [sys.executable, *child]
        else:
            command = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={processes}",
                *child,
            ]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--max-processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=GLOBAL_BATCH, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        worker(args.iterations, args.warmup, args.batch_size, Path(args.child))
        return
    counts = [1] + [p for p in (2, 4, 8, 16, 32, 64) if p <= args.max_processes]
    scaling = [launch(p, GLOBAL_BATCH, args) for p in counts]
    per_rank = [launch(1, GLOBAL_BATCH // p, args) for p in (16, 64)]
    base = scaling[0]["seconds_per_iteration"]
    print(
        f"{'P':>3} {'trials/rank':>11} {'s/iter':>8} {'it/s':>6} {'all-reduce ms':>14} {'speed-up':>9}"
    )
    for row in scaling:
        row["speedup"] = base / row["seconds_per_iteration"]
        print(
            f"{row['processes']:>3} {row['rank_batch']:>11} {row['seconds_per_iteration']:>8.3f} "
            f"{1 / row['seconds_per_iteration']:>6.2f} {1e3 * row['allreduce_seconds']:>14.2f} "
            f"{1e3 * row['wait_seconds']:>8.1f} {row['speedup']:>9.2f}"
        )
    print("one process on a rank's share at 16 and 64 processes (for the projection):")
    for row in per_rank:
        print(f"    {row['rank_batch']:>3} trials: {row['seconds_per_iteration']:.3f} s/iter")
    report = {
        "benchmark": "bench_distributed",
        "what": "Trainer.step of configs/original.yaml's model (N=256, T=202), global batch 512, "
        "one thread per process, gloo; median wall seconds per iteration",
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "iterations": args.iterations,
        "warmup": args.warmup,
        "scaling": scaling,
        "single_process_at_rank_batch": per_rank,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

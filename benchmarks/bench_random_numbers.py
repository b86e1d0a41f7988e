"""A training iteration's cost under each source of the noise's random numbers.

The trainer's iteration (forward, ``rad`` loss + 1e-5 mean |r|, backward, Adam, projection;
``bench_train.py``'s ``ours``) at the default size (N = 128, B = 128, K = 10, dt = 10 ms, gamma
noise), one torch thread, CPU time of the process, median of ``--repeats`` after one warm-up.
Each variant runs in its own process, since ``VWM_RNN_NATIVE`` is read once per process:

* ``kernels/philox``: the C kernels with their Philox numbers (``training.random_numbers:
  auto`` on a machine with a C compiler);
* ``portable/philox``: no kernels (``VWM_RNN_NATIVE=0``), the same Philox numbers from PyTorch
  integer ops (a resumed run that recorded ``philox``, on a machine without a compiler);
* ``portable/torch``: no kernels, PyTorch's generator (``auto`` without a compiler);
* ``kernels/torch``: the kernels' fused loops on PyTorch's numbers.

    python benchmarks/bench_random_numbers.py [--repeats 5]

Prints a table and writes ``benchmarks/bench_random_numbers.json`` (cited by docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# kept in the repository: docs/performance.md cites it
RESULTS = Path(__file__).with_suffix(".json")
VARIANTS = {  # name: (VWM_RNN_NATIVE, random_numbers)
    "kernels/philox": ("1", "philox"),
    "portable/philox": ("0", "philox"),
    "portable/torch": ("0", "torch"),
    "kernels/torch": ("1", "torch"),
}


def time_iterations(random_numbers: str, repeats: int) -> list[float]:
    """CPU seconds of each of ``repeats`` training iterations (after one warm-up)."""
    import gymnasium as gym
    import numpy as np
    import torch

    import vwm_tasks  # noqa: F401 (registers the env ids)
    from vwm_agents.models import DaleRNN
    from vwm_agents.training import losses
    from vwm_tasks.batch import batch_tensors

    torch.set_num_threads(1)
    torch.manual_seed(0)
    env = gym.make("VWMRecall-v0", max_items=10, dt=10.0).unwrapped
    batch = env.sample_batch(128, np.random.default_rng(0), balance_set_sizes=True)
    ob, gt, mask = batch_tensors(env, batch, torch.device("cpu"))
    decode_start = int(batch.epochs["decode"][0, 0])
    model = DaleRNN(
        ob.shape[-1], gt.shape[-1], 128, spike_noise_factor=0.05, random_numbers=random_numbers
    )
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def iteration() -> None:
        outputs, rates = model(ob, generator=generator, readout_from=decode_start)
        loss = losses.vwm_trial_error(outputs, gt, mask, "rad").mean()
        loss = loss + 1e-5 * losses.activity_penalty(rates, nonnegative=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.apply_constraints()

    iteration()
    seconds = []
    for _ in range(repeats):
        start = time.process_time()
        iteration()
        seconds.append(time.process_time() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_iterations(args.child, args.repeats)))
        return
    results = {}
    for name, (switch, source) in VARIANTS.items():
        env = {**os.environ, "VWM_RNN_NATIVE": switch, "OMP_NUM_THREADS": "1"}
        out = subprocess.run(
            [sys.executable, __file__, "--child", source, "--repeats", str(args.repeats)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        seconds = json.loads(out.strip().splitlines()[-1])
        results[name] = {
            "ms": 1e3 * statistics.median(seconds),
            "all_ms": [round(1e3 * s, 1) for s in seconds],
        }
    base = results["kernels/philox"]["ms"]
    for row in results.values():
        row["x_kernels_philox"] = row["ms"] / base
    report = {
        "size": {
            "n_neurons": 128,
            "batch_size": 128,
            "max_items": 10,
            "dt": 10.0,
            "noise": "gamma 0.05",
        },
        "threads": 1,
        "clock": "process CPU time",
        "repeats": args.repeats,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "load_average": os.getloadavg(),
        "results": results,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print("| variant | ms / iteration | x kernels/philox |\n|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['ms']:.0f} | {row['x_kernels_philox']:.2f} |")


if __name__ == "__main__":
    main()

"""Our training of the reference work's published example model against its published numbers.

The run is ``configs/reference_example.yaml`` trained with ``torchrun --nproc_per_node=2`` (see
docs, "One model on many cores"). This script runs the ``errors`` analysis on the run's
checkpoint (``--trials`` trials per set size, best checkpoint by default) and puts beside the
reference's numbers: the error per set size 1-10 (mean absolute error in rad; the reference's
test error of its ``rad`` loss is the same quantity), the overall error (mean over set sizes),
the mean rate, and the circular variance and excess kurtosis at set sizes 1, 2, 4 and 8. A
difference of more than 25 % is flagged. It works on a run still training (its checkpoints are
written atomically), for an interim look.

    python benchmarks/reference_example.py RUN_DIR [--trials 1000] [--checkpoint best]

Prints a table and writes ``benchmarks/reference_example.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).with_suffix(".json")
# The reference's published example model (N = 256, gamma noise k = 0.1, rad loss, 512 trials
# per iteration, 14,200 iterations).
REFERENCE_ERROR = [0.0536, 0.1038, 0.1583, 0.2124, 0.2710, 0.3189, 0.3677, 0.4178, 0.4641, 0.5066]
REFERENCE_OVERALL = 0.2866
REFERENCE_RATE_HZ = 21.0
REFERENCE_SHAPE = {1: (0.00446, -0.12), 2: (0.0168, 0.14), 4: (0.0751, 1.82), 8: (0.2793, 2.20)}
FLAG = 0.25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--checkpoint", choices=("best", "latest"), default="best")
    args = parser.parse_args()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            str(args.run_dir),
            "--only",
            "errors",
            "--trials",
            str(args.trials),
            "--checkpoint",
            args.checkpoint,
            "--no-progress",
        ],
        check=True,
    )
    errors = json.loads((args.run_dir / "analysis" / "errors.json").read_text())["per_set_size"]
    history = [json.loads(line) for line in (args.run_dir / "history.jsonl").open()]
    metrics_file = args.run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else None
    rate = metrics["rate"] if metrics else history[-1]["rate"]

    def row(name: str, ours: float, ours_se: float | None, reference: float) -> dict:
        ratio = ours / reference if reference else None
        off = abs(ours - reference) / abs(reference) > FLAG if reference else None
        return {
            "what": name,
            "ours": ours,
            "se": ours_se,
            "reference": reference,
            "ratio": ratio,
            "differs_by_more_than_25_percent": off,
        }

    rows = [
        row(f"error, set size {n}", errors[str(n)]["mae"], errors[str(n)]["se"]["mae"], ref)
        for n, ref in enumerate(REFERENCE_ERROR, start=1)
    ]
    overall = sum(errors[str(n)]["mae"] for n in range(1, 11)) / 10
    rows.append(row("error, mean over set sizes", overall, None, REFERENCE_OVERALL))
    rows.append(row("mean rate (Hz)", rate, None, REFERENCE_RATE_HZ))
    for n, (variance, kurtosis) in REFERENCE_SHAPE.items():
        stats = errors[str(n)]
        rows.append(
            row(
                f"circular variance, set size {n}",
                stats["circular_variance"],
                stats["se"]["circular_variance"],
                variance,
            )
        )
        rows.append(
            row(
                f"excess kurtosis, set size {n}",
                stats["excess_kurtosis"],
                stats["se"]["excess_kurtosis"],
                kurtosis,
            )
        )
    print(f"{'':36} {'ours':>9} {'SE':>7} {'reference':>10} {'ratio':>6}")
    for r in rows:
        se = f"{r['se']:.4f}" if r["se"] is not None else ""
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        flag = "  >25%" if r["differs_by_more_than_25_percent"] else ""
        print(f"{r['what']:36} {r['ours']:>9.4f} {se:>7} {r['reference']:>10.4f} {ratio:>6}{flag}")
    report = {
        "run": args.run_dir.name,
        "checkpoint": args.checkpoint,
        "trials_per_set_size": args.trials,
        "iterations_trained": history[-1]["iteration"],
        "finished": metrics is not None,
        "rate_source": "metrics.json (test batch)" if metrics else "last history record",
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

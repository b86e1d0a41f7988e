"""Seeds of one config scored by ``benchmarks/human_fit.py``: each seed's numbers, their mean, and
the forgetting criteria (``analysis.human.criteria.item_loss_criteria``) on each and on the mean (docs/human_fit.md, section "Result").

    python benchmarks/human_fit_seeds.py SCORE_JSON ... [--labels "seed 0" ...]

Criteria: MAE within +-25 % of people's at every set size; guess rate rising by >= 0.3 from set
size 1 to 8; von Mises SD at set size 8 <= 0.8 rad; excess kurtosis > 0 at every set size >= 2
and >= 1 at set sizes 2-4; distance to people < 77 (half of the resource model's 154). The mean's
distance is the mean of the seeds' distances.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from analysis.human.criteria import SET_SIZES, item_loss_criteria, split_scores

STATISTICS = ("mae", "p_guess", "vm_sd", "excess_kurtosis")


def rows(results: list[dict], labels: list[str]) -> list[str]:
    human = results[0]["human"]
    lines = []
    mean = {k: np.mean([r["model"][k] for r in results], axis=0).tolist() for k in STATISTICS}
    distances = [r["distance"]["total"] for r in results]
    entries = [
        (label, r["model"], r["distance"]["total"], r)
        for label, r in zip(labels, results, strict=True)
    ]
    entries.append((f"mean of {len(results)}", mean, float(np.mean(distances)), None))
    for label, model, distance, result in entries:
        ratio = np.asarray(model["mae"]) / np.asarray(human["mae"])
        met = item_loss_criteria(model, human, distance)
        held = (
            ""
            if result is None
            else f"{split_scores(result, (1, 2, 4, 8))['distance']:.0f} / "
            f"{split_scores(result, (3, 5, 6, 7))['distance']:.0f}"
        )
        lines.append(
            f"| {label} | {' '.join(f'{x:.2f}' for x in ratio)} | "
            f"{' '.join(f'{x:.2f}' for x in model['p_guess'])} | "
            f"{' '.join(f'{x:.2f}' for x in model['vm_sd'])} | "
            f"{' '.join(f'{x:.1f}' for x in model['excess_kurtosis'])} | {distance:.0f} | {held} | "
            f"{''.join('Y' if v else 'n' for v in met.values())} |"
        )
    return lines


HEADER = (
    "| run | MAE model/people, set size 1..8 | guess rate 1..8 | von Mises SD 1..8 (rad) | "
    "excess kurtosis 1..8 | distance | distance selection / held out | criteria "
    "(MAE, rise, SD 8, kurt > 0, kurt >= 1 at 2-4, distance) |\n"
    "|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scores", nargs="+", type=Path)
    parser.add_argument("--labels", nargs="+")
    args = parser.parse_args(argv)
    results = [json.loads(p.read_text()) for p in args.scores]
    labels = args.labels or [p.parent.name for p in args.scores]
    if len(labels) != len(results):
        parser.error("--labels: one per score")
    for r in results:
        if r["set_sizes"] != SET_SIZES:
            parser.error(f"{r['run_dir']}: scored on {r['set_sizes']}, not {SET_SIZES}")
    print(HEADER)
    print("\n".join(rows(results, labels)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The search behind ``configs/human_fit.yaml``: table and figure of every try.

Each try is a run directory scored by ``benchmarks/human_fit.py`` (one JSON each). This script
puts the JSONs side by side: a markdown table (what changed from the base of the search, the
iterations and CPU time of training, the model / people MAE ratio per set size, the guess-rate
rise from set size 1 to 8, the smallest excess kurtosis at set sizes >= 2, the distance) and a
figure of how each change moves the set-size curves (MAE, guess rate, excess kurtosis; people
with their SEs).

    python benchmarks/human_fit_search.py EVAL_JSON ... [--labels "a" "b" ...]
        [--cpu-s 812 640 ...] [--figure docs/human_fit_search.png] [--table OUT.md]

The trainings themselves are ordinary ``python -m vwm_agents.train --config configs/human_fit.yaml
--set key=value`` runs; docs/human_fit.md lists the ones that were run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

KEYS = (
    "task.ilc_noise",
    "task.set_sizes",
    "task.max_items",
    "task.timing",
    "agent.n_neurons",
    "agent.spike_noise_type",
    "agent.spike_noise_factor",
    "agent.tau_min",
    "agent.tau_max",
    "training.error_def",
    "training.learning_rate",
    "training.batch_size",
    "training.lambda_reg",
    "training.num_iterations",
)


def _get(config: dict, key: str):
    section, name = key.split(".", 1)
    return config.get(section, {}).get(name)


def describe(config: dict) -> str:
    """The settings of a try that the search varied, as ``key=value`` pairs."""
    parts = []
    for key in KEYS:
        value = _get(config, key)
        if value is not None:
            short = key.split(".", 1)[1]
            parts.append(f"{short}={value}")
    return ", ".join(parts)


def row(result: dict, label: str, cpu_s: float | None) -> str:
    c = result["criteria"]
    ratios = " ".join(f"{r:.2f}" for r in c["mae_within_25pct"]["ratio"])
    g = result["model"]["p_guess"]
    kurt = c["excess_kurtosis_positive"]["min_at_set_size_2_plus"]
    distance = result.get("distance", {}) or {}
    cpu = "" if cpu_s is None or not np.isfinite(cpu_s) else f"{cpu_s:.0f}"
    return (
        f"| {label} | {result['iteration']} | {cpu} | {result['trials_per_set_size']} | "
        f"{ratios} | {g[0]:.2f} -> {g[-1]:.2f} | {kurt:.2f} | "
        f"{distance.get('total', float('nan')):.0f} | "
        f"{'Y' if c['mae_within_25pct']['met'] else 'n'}"
        f"{'Y' if c['guess_rate_rise']['met'] else 'n'}"
        f"{'Y' if c['excess_kurtosis_positive']['met'] else 'n'} |"
    )


HEADER = (
    "| try | iterations (best) | train CPU s | test trials / set size | "
    "MAE model/people, set size 1..8 | guess rate 1 -> 8 | min excess kurt. (n >= 2) | "
    "distance | criteria MAE/guess/kurt |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def figure_search(results: list[dict], labels: list[str]) -> Figure:
    """MAE, guess rate and excess kurtosis against set size for every try, people in black."""
    fig = Figure(figsize=(14, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (
        ("mae", "mean abs. error (rad)"),
        ("p_guess", "guess rate (VM + U)"),
        ("excess_kurtosis", "excess kurtosis vs von Mises"),
    )
    set_sizes = np.array(results[0]["set_sizes"])
    for ax, (name, label) in zip(axes, panels, strict=True):
        for result, text in zip(results, labels, strict=True):
            ax.plot(
                set_sizes,
                result["model"][name],
                marker="o",
                ms=3,
                lw=1,
                label=text.replace("**", ""),
            )
        people = np.array(results[0]["human"][name], float)
        se = results[0]["human_se"].get(name)
        ax.errorbar(
            set_sizes,
            people,
            yerr=None if se is None else np.array(se, float),
            color="k",
            lw=2,
            marker="s",
            ms=4,
            capsize=2,
            label="people",
        )
        if name == "mae":
            ax.fill_between(
                set_sizes,
                0.75 * people,
                1.25 * people,
                color="k",
                alpha=0.1,
                lw=0,
                label="people +-25%",
            )
        if name == "excess_kurtosis":
            ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xlabel("set size")
        ax.set_ylabel(label)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=7, loc="outside right upper")
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSONs of benchmarks/human_fit.py")
    parser.add_argument("--labels", nargs="+", default=None)
    parser.add_argument(
        "--cpu-s",
        nargs="+",
        type=float,
        default=None,
        help="training CPU seconds of each try, in order (nan: not measured)",
    )
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument(
        "--figure-only",
        nargs="+",
        type=int,
        default=None,
        help="indices (0-based) of the tries to draw (default: all)",
    )
    parser.add_argument("--table", type=Path, default=None)
    args = parser.parse_args(argv)
    results = [json.loads(p.read_text()) for p in args.results]
    labels = args.labels or [describe(r["config"]) for r in results]
    if len(labels) != len(results):
        parser.error(f"--labels: need {len(results)} labels, got {len(labels)}")
    cpu = args.cpu_s or [None] * len(results)
    if len(cpu) != len(results):
        parser.error(f"--cpu-s: need {len(results)} values, got {len(cpu)}")
    lines = [HEADER] + [row(r, lab, c) for r, lab, c in zip(results, labels, cpu, strict=True)]
    text = "\n".join(lines)
    print(text)
    if args.table:
        args.table.write_text(text + "\n")
    if args.figure:
        keep = args.figure_only or list(range(len(results)))
        fig = figure_search([results[i] for i in keep], [labels[i] for i in keep])
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=90)
        print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

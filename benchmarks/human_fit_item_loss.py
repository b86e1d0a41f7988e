"""How items are lost in a trained model against a control: the figure and numbers of
``analysis.neural.item_loss`` for two runs (docs/human_fit.md, section "How the network loses items").

    python benchmarks/human_fit_item_loss.py RUN_DIR CONTROL_RUN_DIR [--trials 500] [--seed 2024]
        [--labels "new model" "control"] [--figure docs/human_fit/item_loss.png]
        [--out docs/human_fit/item_loss.json]

Each run's env is rebuilt with set sizes 1-8 (as ``benchmarks/human_fit.py`` does); trials and
the models' noise come from ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from human_fit import evaluation_env  # noqa: E402 (the benchmark is a script, not a package)


def _group(stats: dict) -> str:
    if not stats["n"]:
        return "none"
    return (
        f"{100 * stats['share']:.1f} % of items, MAE {stats['mae']:.2f}, Rayleigh p "
        f"{stats['rayleigh_p']:.2g}"
    )


def main(argv: list[str] | None = None) -> int:
    from analysis.neural.item_loss import LOW_GAIN, item_loss, item_readouts
    from analysis.viz.item_loss import plot_item_loss
    from vwm_agents import load_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs=2, type=Path, help="the model's run, then the control's")
    parser.add_argument("--labels", nargs=2, default=["new model", "control"])
    parser.add_argument("--trials", type=int, default=500, help="trials per set size")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--bootstrap", type=int, default=200, help="Silverman null resamples")
    parser.add_argument("--figure", type=Path, default=Path("docs/human_fit/item_loss.png"))
    parser.add_argument("--out", type=Path, default=Path("docs/human_fit/item_loss.json"))
    args = parser.parse_args(argv)
    results, summary = [], {}
    for label, run_dir in zip(args.labels, args.runs, strict=True):
        loaded = load_run(run_dir, checkpoint="best")
        env = evaluation_env(loaded.config)
        result = item_loss(
            item_readouts(loaded.model, env, n_trials=args.trials, seed=args.seed),
            n_boot=args.bootstrap,
            seed=args.seed,
        )
        results.append((label, result))
        summary[label] = {"run_dir": str(run_dir), **result.to_dict()}
        for n in result.set_sizes:
            split = result.split[n] or {}
            print(
                f"{label:>10} n={n}: quantiles {[round(q, 3) for q in result.quantiles[n]]} "
                f"Silverman p={result.modes[n]['p_value']:.3f} "
                f"below trough {split.get('fraction_below', float('nan')):.2f} "
                f"MAE below/above {split.get('mae_below') or float('nan'):.2f}/"
                f"{split.get('mae_above') or float('nan'):.2f}"
                + (
                    ""
                    if result.gain_error is None
                    else f" gain-|error| Spearman {result.gain_error[n]:.2f}; gain < "
                    f"{LOW_GAIN}: {_group(result.low_gain[n]['below'])}; above: "
                    f"{_group(result.low_gain[n]['above'])}"
                )
            )
    plot_item_loss(results, args.figure)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {args.figure} and {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How human-like is a trained model? The criteria of the shipped ``configs/human_fit.yaml``.

Evaluates a run directory on fresh trials at set sizes 1-8 against van den Berg et al. (2012)'s
orientation observers (the data shipped with ``analysis``) and checks three criteria:

1. MAE within +-25 % of people's at every set size 1-8;
2. the guess rate of a von Mises + uniform fit rises by at least 0.3 from set size 1 to 8;
3. the excess circular kurtosis over a von Mises with the same resultant length is > 0 at every
   set size >= 2.

**What is scored.** The task is uncued: the network reports every item of a trial, and *every*
reported item is scored (a trial of set size n gives n errors). Trials are drawn as in training
(``env.sample_batch``, the task's item-location noise and the network's spiking noise on),
``--trials`` per set size, from ``--seed`` (not a training seed), so none of them was seen in
training. The run's env is rebuilt with set sizes 1-8 whatever set sizes it trained on (its
``task.max_items`` must be >= 8). Nothing is added to the decoded angles.

The statistics, fits and distance are the ``human`` analysis's (``analysis.human.comparison.run``; see
docs/model.md, section Human comparison). The model's own sampling SEs come from a bootstrap over
its items (``--bootstrap`` resamples per set size).

    python benchmarks/human_fit.py RUN_DIR [--trials 2000] [--seed 12345] [--bootstrap 50]
        [--checkpoint best|latest] [--out benchmarks/results/human_fit.json] [--figure-dir DIR]
    python benchmarks/human_fit.py --train configs/human_fit.yaml [--train-out DIR] ...

With ``--train CONFIG`` it first trains that config (``python -m vwm_agents.train``, timed) and
then evaluates the new run. Prints a table and writes JSON (criteria, per-set-size values, the
people's values and SEs, the distance, training wall time when it trained).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from analysis.human.criteria import BROAD_VM_SD, GUESS_RISE, SET_SIZES, criteria

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "human_fit.json"


def evaluation_env(config):
    """The run's env with set sizes 1-8 (errors: max_items < 8)."""
    from vwm_agents.training.run import make_env

    max_items = config.task.kwargs.get("max_items", 10)
    if max_items < max(SET_SIZES):
        raise SystemExit(
            f"task.max_items: must be >= {max(SET_SIZES)} to test set sizes 1-8, got {max_items}"
        )
    return make_env(config.with_value("task.set_sizes", SET_SIZES)).unwrapped


def evaluate(
    run_dir: Path,
    *,
    trials: int,
    seed: int,
    n_bootstrap: int,
    checkpoint: str,
    figure_dir: Path | None = None,
) -> dict:
    from analysis.core.trials import model_errors
    from analysis.human import comparison as human
    from analysis.human.distance import bootstrap_se
    from vwm_agents import load_run

    loaded = load_run(run_dir, checkpoint=checkpoint)
    env = evaluation_env(loaded.config)
    start = time.perf_counter()
    data = model_errors(loaded.model, env, n_trials=trials, seed=seed)
    comparison = human.run(loaded.model, env, n_trials=trials, seed=seed, data=data)
    se = (
        bootstrap_se(data.errors, data.set_size, n_bootstrap=n_bootstrap, seed=seed)
        if n_bootstrap > 1
        else None
    )
    elapsed = time.perf_counter() - start
    if figure_dir is not None:
        from analysis.viz.human import plot_human

        figure_dir.mkdir(parents=True, exist_ok=True)
        plot_human(comparison, figure_dir)
    model = {
        k: comparison.model[k]
        for k in ("mae", "p_guess", "vm_sd", "excess_kurtosis", "circular_kurtosis", "p_nontarget")
    }
    people = {k: comparison.human[k] for k in model}
    items = {int(n): int(np.sum(data.set_size == n)) for n in SET_SIZES}
    history = _history(run_dir)
    return {
        "run_dir": str(run_dir),
        "checkpoint": loaded.checkpoint,
        "iteration": loaded.iteration,
        "config": loaded.config.to_dict(),
        "scored": "every item of every trial (uncued task: all items are reported)",
        "trials_per_set_size": trials,
        "items_per_set_size": items,
        "seed": seed,
        "set_sizes": SET_SIZES,
        "model": model,
        "model_se": (
            {
                "mae": se["mae"].tolist(),
                "p_guess": se["guess_rate"].tolist(),
                "excess_kurtosis": se["excess_kurtosis"].tolist(),
            }
            if se is not None
            else None
        ),
        "model_se_source": f"bootstrap over items ({n_bootstrap} resamples per set size)",
        "human": people,
        "human_se": {k: comparison.human_se.get(k) for k in model},
        "human_source": comparison.human_source,
        "distance": comparison.distance.to_dict() if comparison.distance else None,
        "criteria": criteria(model, people),
        "training": history,
        "evaluation_wall_s": round(elapsed, 1),
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
    }


def _history(run_dir: Path) -> dict:
    """Iterations and wall time of the training, from the run's history (when recorded)."""
    from vwm_agents.training.rundir import read_history

    try:
        records = read_history(run_dir)
    except Exception:  # noqa: BLE001 - a run without a readable history still evaluates
        return {}
    if not records:
        return {}
    last = records[-1]
    return {k: last[k] for k in ("iteration", "time", "elapsed_s", "wall_s") if k in last}


def _fmt(x, spec=".3f") -> str:
    return "  -  " if x is None else format(x, spec)


def table(result: dict) -> str:
    m, h, hs = result["model"], result["human"], result["human_se"]
    c = result["criteria"]
    lines = [
        f"{result['run_dir']} ({result['checkpoint']} checkpoint, iteration "
        f"{result['iteration']}); {result['trials_per_set_size']} trials per set size, "
        f"{result['scored']}",
        "  n | MAE model  people (SE)   ratio | guess model  people (SE) | "
        "VM SD model people | excess kurt model  people (SE)",
    ]
    for i, n in enumerate(result["set_sizes"]):
        lines.append(
            f"  {n} | {_fmt(m['mae'][i])}  {_fmt(h['mae'][i])} ({_fmt(hs['mae'][i])})  "
            f"{c['mae_within_25pct']['ratio'][i]:5.2f} | {_fmt(m['p_guess'][i])}  "
            f"{_fmt(h['p_guess'][i])} ({_fmt((hs['p_guess'] or [None] * 8)[i])}) | "
            f"{_fmt(m['vm_sd'][i])}  {_fmt(h['vm_sd'][i])} | "
            f"{_fmt(m['excess_kurtosis'][i], '6.2f')}  {_fmt(h['excess_kurtosis'][i], '5.2f')} "
            f"({_fmt((hs['excess_kurtosis'] or [None] * 8)[i], '.2f')})"
        )
    mae = c["mae_within_25pct"]
    lines += [
        f"MAE within +-25% at every set size: {'MET' if mae['met'] else 'not met'} "
        f"({mae['n_met']}/8 set sizes)",
        f"guess rate rise 1 -> 8 >= {GUESS_RISE}: "
        f"{'MET' if c['guess_rate_rise']['met'] else 'not met'} "
        f"({c['guess_rate_rise']['rise']:.3f}; people {c['guess_rate_rise']['human_rise']:.3f})"
        + (
            f"; von Mises SD > {BROAD_VM_SD} rad (guess rate ill-determined) at set sizes "
            f"{c['guess_rate_rise']['broad_fits']}"
            if c["guess_rate_rise"]["broad_fits"]
            else ""
        ),
        f"excess kurtosis > 0 at set sizes 2-8: "
        f"{'MET' if c['excess_kurtosis_positive']['met'] else 'not met'} (min "
        f"{c['excess_kurtosis_positive']['min_at_set_size_2_plus']:.2f})",
    ]
    if result.get("distance"):
        lines.append(f"distance to people (sum of squared z): {result['distance']['total']:.1f}")
    if result.get("training_wall_s") is not None:
        lines.append(f"training wall time: {result['training_wall_s']:.0f} s")
    return "\n".join(lines)


def _train(config: Path, out: Path) -> tuple[Path, float]:
    """Train ``config`` into ``out`` (timed); the new run directory."""
    out.mkdir(parents=True, exist_ok=True)
    before = {p for p in out.iterdir()}
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vwm_agents.train",
            "--config",
            str(config),
            "--out",
            str(out),
            "--no-progress",
        ],
        check=True,
    )
    wall = time.perf_counter() - start
    new = sorted(p for p in out.iterdir() if p not in before and p.is_dir())
    if len(new) != 1:
        raise SystemExit(
            f"--train-out: expected one new run directory in {out}, found {[p.name for p in new]}"
        )
    return new[0], wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="a trained run directory")
    parser.add_argument(
        "--train",
        type=Path,
        metavar="CONFIG",
        help="train this config first, then evaluate the new run",
    )
    parser.add_argument(
        "--train-out",
        type=Path,
        default=Path("runs"),
        help="directory for the run trained by --train (default: runs)",
    )
    parser.add_argument("--trials", type=int, default=2000, help="trials per set size")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the test trials")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=50,
        help="bootstrap resamples for the model's SEs (0: none)",
    )
    parser.add_argument("--checkpoint", choices=("best", "latest"), default="best")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output")
    parser.add_argument(
        "--figure-dir",
        type=Path,
        default=None,
        help="also save human_statistics_model_vs_people.png and human_error_histograms_model_vs_people.png here",
    )
    args = parser.parse_args(argv)
    if (args.run_dir is None) == (args.train is None):
        parser.error("give either RUN_DIR or --train CONFIG")
    if args.trials < 1:
        parser.error(f"--trials: must be >= 1, got {args.trials}")
    wall = None
    run_dir = args.run_dir
    if args.train is not None:
        run_dir, wall = _train(args.train, args.train_out)
    result = evaluate(
        run_dir,
        trials=args.trials,
        seed=args.seed,
        n_bootstrap=args.bootstrap,
        checkpoint=args.checkpoint,
        figure_dir=args.figure_dir,
    )
    if wall is not None:
        result["training_wall_s"] = round(wall, 1)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The mechanism search of issue 23: train tries one at a time, score them, tabulate them.

Each try is the resource model ``configs/human_fit_resource.yaml`` with a few keys set (a
mechanism's options, with size and noise). ``run`` trains a try with ``python -m
vwm_agents.train`` (one thread) and scores it with ``benchmarks/human_fit.py`` on all 8 set
sizes; ``table`` prints one markdown row per scored try, the **selection** set sizes (1, 2, 4, 8:
what the search chose on) apart from the **held-out** ones (3, 5, 6, 7: reported as a
prediction).

    python benchmarks/human_fit_mechanisms.py run NAME key=value ... [--trials 500] [--seed 0]
        [--dir runs/mechanisms]
    python benchmarks/human_fit_mechanisms.py table [--dir runs/mechanisms] [NAME ...]

Values are YAML (``task.item_gain={scale: 0.05}``, ``training.report_cost=0.5``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from analysis.human.criteria import split_scores

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "configs" / "human_fit_resource.yaml"
SELECTION = (1, 2, 4, 8)
HELD_OUT = (3, 5, 6, 7)


def try_config(overrides: list[str], seed: int) -> dict:
    """The base config with ``key=value`` overrides (YAML values) and the training seed."""
    config = yaml.safe_load(BASE.read_text())
    for item in [*overrides, f"training.seed={seed}"]:
        key, _, value = item.partition("=")
        section, name = key.split(".", 1)
        config.setdefault(section, {})[name] = yaml.safe_load(value)
    return config


def run(name: str, overrides: list[str], *, trials: int, seed: int, directory: Path) -> Path:
    """Train try ``name`` and score it; returns the score's JSON path."""
    out = directory / name
    out.mkdir(parents=True, exist_ok=True)
    config = try_config(overrides, seed)
    config["logging"]["run_name"] = name
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.process_time()
    started = time.perf_counter()
    train = subprocess.run(
        [
            sys.executable,
            "-m",
            "vwm_agents.train",
            "--config",
            str(out / "config.yaml"),
            "--out",
            str(out / "run"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    (out / "train.log").write_text(train.stdout + train.stderr)
    if train.returncode != 0:
        raise SystemExit(f"{name}: training failed, see {out / 'train.log'}")
    run_dir = next(p for p in (out / "run").iterdir() if p.is_dir())
    score = out / "score.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "human_fit.py"),
            str(run_dir),
            "--trials",
            str(trials),
            "--bootstrap",
            "0",
            "--out",
            str(score),
        ],
        check=True,
        capture_output=True,
    )
    result = json.loads(score.read_text())
    result["search"] = {
        "name": name,
        "overrides": overrides,
        "training_wall_s": round(wall, 1),
        "child_cpu_s": round(time.process_time() - start, 1),
    }
    score.write_text(json.dumps(result, indent=1))
    return score


def row(result: dict) -> str:
    """One markdown row: selection statistics, then the held-out ones."""
    s = split_scores(result, SELECTION)
    h = split_scores(result, HELD_OUT)
    g = result["model"]["p_guess"]
    sd8 = result["model"]["vm_sd"][7]
    search = result.get("search", {})
    label = f"{search.get('name', '?')}: {', '.join(search.get('overrides', []))}"

    def ratios(part: dict) -> str:
        return " ".join(f"{r:.2f}" for r in part["mae_ratio"])

    def kurt(part: dict) -> str:
        return " ".join(f"{k:.1f}" for k in part["excess_kurtosis"])

    return (
        f"| {label} | {result['iteration']} | {search.get('training_wall_s', '')} | "
        f"{result['trials_per_set_size']} | {ratios(s)} | {g[0]:.2f} -> {g[-1]:.2f} | "
        f"{sd8:.2f} | {kurt(s)} | {s['distance']:.0f} | {ratios(h)} | {kurt(h)} | "
        f"{h['distance']:.0f} | {result['distance']['total']:.0f} |"
    )


HEADER = (
    "| try | best iteration | train wall s | test trials / set size | "
    "MAE model/people at 1 2 4 8 | guess rate 1 -> 8 | VM SD at 8 (rad) | "
    "excess kurt. at 1 2 4 8 | distance (1 2 4 8) | held out: MAE ratio at 3 5 6 7 | "
    "held out: excess kurt. at 3 5 6 7 | held-out distance | distance (all 8) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="train and score one try")
    run_parser.add_argument("name")
    run_parser.add_argument("overrides", nargs="*", help="key=value (YAML value)")
    run_parser.add_argument("--trials", type=int, default=500)
    run_parser.add_argument("--seed", type=int, default=0, help="training seed")
    table_parser = sub.add_parser("table", help="markdown table of scored tries")
    table_parser.add_argument("names", nargs="*", help="tries in this order (default: all)")
    for p in (run_parser, table_parser):
        p.add_argument("--dir", type=Path, default=Path("runs/mechanisms"))
    args = parser.parse_args(argv)
    if args.command == "run":
        print(
            run(args.name, args.overrides, trials=args.trials, seed=args.seed, directory=args.dir)
        )
        return 0
    names = args.names or sorted(p.name for p in args.dir.iterdir() if (p / "score.json").exists())
    print(HEADER)
    for name in names:
        print(row(json.loads((args.dir / name / "score.json").read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

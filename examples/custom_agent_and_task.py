"""Plug your own agent and your own neurogym task into vwm-rnn.

Two swaps, each trained end to end by the toolkit's trainer:

1. **Your agent on our task.** ``LSTMAgent`` below is a plain ``nn.Module`` that follows the agent
   protocol (docs/agents.md, "Plug in your own agent"): its constructor takes ``(n_inputs, n_outputs,
   **kwargs)`` and ``forward(ob)`` maps ``(B, T, n_inputs)`` to outputs ``(B, T, n_outputs)``,
   here with its hidden states as a second return value (the "rates"). It learns
   ``VWMRecall-v0`` and is compared with people like our own network.
2. **Our agent on your task.** ``OrientationComparison`` is an ordinary neurogym ``TrialEnv``
   (discrete actions): an orientation, a delay, then a second orientation turned clockwise or
   anticlockwise from the first; report which. Registered with gymnasium, it is named in the
   config like any other task, and the Dale's-law RNN learns it.

Run::

    python examples/custom_agent_and_task.py            # ~1 CPU-minute (5 min on a busy machine)
    python examples/custom_agent_and_task.py --tiny     # seconds: a smoke test (the tests run it)

Each run lands in ``--out`` (default ``runs/examples``) with its ``report.html``. One full run
(seed 0): the LSTM recalls with mean absolute errors of 0.046 / 0.106 / 0.142 rad at set sizes
1 / 2 / 3; the Dale RNN compares orientations with 98.9% accuracy on held-out trials.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from neurogym import spaces
from neurogym.core import TrialEnv
from torch import nn

# ----------------------------------------------------------------------------------------------
# 1. An agent: any nn.Module with __init__(n_inputs, n_outputs, **kwargs) and forward(ob)


class LSTMAgent(nn.Module):
    """An LSTM with a linear readout. Keyword arguments come from the config's ``agent`` section."""

    def __init__(self, n_inputs: int, n_outputs: int, hidden_size: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_inputs, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, n_outputs)

    def forward(self, ob: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, _ = self.lstm(ob)
        # (outputs, "rates"): the trainer reports their mean and can penalise them
        # (training.lambda_reg); return only the outputs if your agent has no such states
        return self.readout(hidden), hidden


# ----------------------------------------------------------------------------------------------
# 2. A task: any neurogym TrialEnv (Discrete actions: cross-entropy; Box: our recall error)


class OrientationComparison(TrialEnv):
    """Remember an orientation, then say whether a second one is turned clockwise (action 1) or
    anticlockwise (action 2) from it. Inputs: fixation, and ``strength`` x (1 + cos, 1 + sin) of
    the shown orientation (non-negative, as a Dale's-law network's input weights expect; strong
    enough to drive its rate neurons, whose gain is centred at an input of ~30 Hz)."""

    def __init__(
        self,
        dt: int = 20,
        timing: dict | None = None,
        turn: tuple[float, float] = (0.3, 1.2),
        strength: float = 10.0,
    ) -> None:
        super().__init__(dt=dt)
        self.turn = turn  # rad: how far the second orientation turns, drawn uniformly
        self.strength = strength
        self.timing = {"fixation": 100, "sample": 200, "delay": 400, "test": 200, "decision": 200}
        if timing:
            self.timing.update(timing)
        self.observation_space = spaces.Box(
            0.0, np.inf, shape=(3,), dtype=np.float32, name={"fixation": 0, "stimulus": [1, 2]}
        )
        self.action_space = spaces.Discrete(3, name={"fixation": 0, "choice": [1, 2]})

    def _new_trial(self, **kwargs):
        trial = {
            "theta": self.rng.uniform(-np.pi, np.pi),
            "clockwise": bool(self.rng.rand() < 0.5),  # neurogym's rng is a RandomState
            "turn": self.rng.uniform(*self.turn),
        }
        trial.update(kwargs)
        test = trial["theta"] + (-1 if trial["clockwise"] else 1) * trial["turn"]
        self.add_period(["fixation", "sample", "delay", "test", "decision"])
        self.add_ob(self.strength, where="fixation")
        self.set_ob(0, "decision", where="fixation")
        for period, angle in (("sample", trial["theta"]), ("test", test)):
            self.add_ob(
                [self.strength * (1 + np.cos(angle)), self.strength * (1 + np.sin(angle))],
                period,
                where="stimulus",
            )
        self.set_groundtruth(1 if trial["clockwise"] else 2, "decision")
        # the loss and the accuracy count the decision only (collect_batch reads env.mask)
        self.mask = np.zeros(len(self.gt), dtype=np.float32)
        self.mask[self.start_ind["decision"] : self.end_ind["decision"]] = 1.0
        return trial

    def _step(self, action):
        new_trial = self.in_period("decision") and action != 0
        reward = float(action == self.gt_now) if new_trial else 0.0
        if new_trial:
            self.performance = reward
        return self.ob_now, reward, False, False, {"new_trial": new_trial, "gt": self.gt_now}


TASK_ID = "OrientationComparison-v0"


def register_task() -> None:
    """Make ``gym.make(TASK_ID)`` (and so the config's ``task.id``) find the task."""
    if TASK_ID not in gym.envs.registry:
        gym.register(id=TASK_ID, entry_point=OrientationComparison)


# ----------------------------------------------------------------------------------------------
# Training both with the toolkit


def configs(tiny: bool, out: Path) -> dict[str, dict]:
    iterations, batch = (20, 32) if tiny else (600, 128)
    training = {
        "num_iterations": iterations,
        "batch_size": batch,
        "learning_rate": 3e-3,
        "grad_clip": 1.0,
        "eval_batch_size": 64 if tiny else 500,
        "threads": 1,
        "device": "cpu",
        "seed": 0,
    }
    logging = {"out_dir": str(out), "period": max(iterations // 10, 1), "progress": not tiny}
    # The agent is named by import path; a script's classes live in "__main__". In your own
    # project put the class in a module (e.g. "mylab.agents:LSTMAgent") so that a later
    # `python -m analysis RUN_DIR` in another process can import it too.
    return {
        "our_task_your_agent": {
            "task": {
                "id": "VWMRecall-v0",
                "max_items": 3,
                "dt": 20,
                "timing": {"init": 20, "stimulus": 200, "delay": 400, "decode": 200},
            },
            "agent": {"name": f"{__name__}:LSTMAgent", "hidden_size": 16 if tiny else 64},
            "training": training,
            "logging": {**logging, "run_name": "lstm_on_vwm"},
        },
        "your_task_our_agent": {
            "task": {"id": TASK_ID, "dt": 20},
            "agent": {
                "name": "dale_rnn",
                "n_neurons": 24 if tiny else 64,
                "dt": 20,
                "tau_min": 40,
                "tau_max": 200,
                "spike_noise_factor": 0.05,
            },
            "training": training,
            "logging": {**logging, "run_name": "dale_on_comparison"},
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few iterations (a smoke test)")
    parser.add_argument("--out", type=Path, default=Path("runs/examples"))
    args = parser.parse_args(argv)

    from analysis.__main__ import main as analyse
    from analysis.report import write_report
    from vwm_agents import train
    from vwm_agents.config import Config

    register_task()
    shutil.rmtree(args.out, ignore_errors=True)  # start afresh on every run of the example
    runs = {}
    for label, config in configs(args.tiny, args.out).items():
        run_dir = train(Config.from_dict(config))
        runs[label] = run_dir
        metrics = json.loads((run_dir / "metrics.json").read_text())
        per_size = {n: round(m["error"], 3) for n, m in metrics.get("per_set_size", {}).items()}
        print(
            f"{label}: error {metrics['error']:.3f}"
            + (f", accuracy {metrics['accuracy']:.3f}" if "accuracy" in metrics else "")
            + (f", per set size {per_size}" if per_size else "")
            + f" -> {run_dir}"
        )

    # The behavioural analyses only need the agent's outputs: compare the LSTM with people.
    trials = ["--trials", "40" if args.tiny else "500", "--no-progress"]
    # --trust-code: the run names code from outside vwm-rnn (our LSTMAgent), which loading
    # imports; a run directory is only opened that way when you trust whoever wrote it.
    analyse([str(runs["our_task_your_agent"]), "--trust-code", "--only", "errors,human", *trials])
    # On any task, analyses that need our recall task say so and are skipped; performance per
    # epoch and condition, trajectories, weights and fixed points run on every task.
    only = ["--only", "performance,trajectories,weights"] if args.tiny else []
    analyse([str(runs["your_task_our_agent"]), *only, *trials])
    for run_dir in runs.values():
        print(f"report: {write_report(run_dir)}")
    return runs


if __name__ == "__main__":
    main()

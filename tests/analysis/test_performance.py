"""Task-generic performance (``analysis.behaviour.performance``) with agents whose score is known."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import neurogym  # noqa: F401 - registers DelayMatchSample-v0
import numpy as np
import pytest
import torch
from torch import nn

from analysis.behaviour.performance import performance, unavailable


class Constant(nn.Module):
    """Outputs the same vector at every step (logits, or a point for Box tasks)."""

    def __init__(self, output: list[float]) -> None:
        super().__init__()
        self.output = nn.Parameter(torch.tensor(output), requires_grad=False)

    def forward(self, ob: torch.Tensor) -> torch.Tensor:
        return self.output.expand(*ob.shape[:2], -1)


def _dms():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_modes.*")
        return gym.make("DelayMatchSample-v0", dt=100, disable_env_checker=True)


def test_always_match_scores_the_share_of_match_trials():
    # DelayMatchSample: action 1 = match, 2 = non-match. Always answering 1 is right exactly on
    # the match trials: accuracy 1 for ground_truth 1, 0 for ground_truth 2.
    result = performance(Constant([0.0, 5.0, 0.0]), _dms(), n_trials=200, seed=0)
    by_truth = result.by_condition["ground_truth"]
    assert by_truth["1"]["score"] == 1.0 and by_truth["2"]["score"] == 0.0
    assert by_truth["1"]["n"] + by_truth["2"]["n"] == 200
    assert result.score == pytest.approx(by_truth["1"]["n"] / 200)
    assert result.metric == "accuracy" and result.chance == 0.5
    assert result.response_epoch == "decision"
    # Per step, answering 1 during fixation is wrong (fixation's ground truth is 0).
    assert result.by_epoch["fixation"] == 0.0
    json.dumps(result.to_dict(), allow_nan=False)


def test_fixating_forever_is_never_correct():
    result = performance(Constant([5.0, 0.0, 0.0]), _dms(), n_trials=50, seed=1)
    assert result.score == 0.0
    assert result.by_epoch["fixation"] == 1.0 and result.by_epoch["decision"] == 0.0


def test_box_task_scores_squared_error_on_the_scored_steps():
    # VWMRecall targets are (cos, sin) pairs: a zero output misses each column by a squared
    # error averaging cos^2 + sin^2 = 1 per pair, i.e. exactly 0.5 per column.
    env = gym.make("VWMRecall-v0", max_items=3, disable_env_checker=True)
    result = performance(Constant([0.0] * 6), env, n_trials=60, seed=2)
    assert result.metric == "mse" and result.score == pytest.approx(0.5, abs=1e-6)
    assert result.by_epoch["decode"] == pytest.approx(0.5, abs=1e-6)
    assert result.by_epoch["delay"] is None  # nothing scored outside decode
    assert set(result.by_condition["set_size"]) == {"1", "2", "3"}


def test_every_neurogym_task_is_available():
    assert unavailable(None, _dms()) is None
    assert "needs a neurogym task" in unavailable(None, object())


def test_bad_trial_count():
    with pytest.raises(ValueError, match="n_trials"):
        performance(Constant([0.0, 0.0, 0.0]), _dms(), n_trials=0)


def test_seeded():
    a = performance(Constant([0.0, 5.0, 0.0]), _dms(), n_trials=40, seed=3)
    b = performance(Constant([0.0, 5.0, 0.0]), _dms(), n_trials=40, seed=3)
    assert a.to_dict() == b.to_dict()
    assert np.isfinite(a.score)

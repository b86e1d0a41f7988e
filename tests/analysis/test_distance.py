"""The model-people distance (``analysis.human.distance``) on synthetic observers with known answers.

An observer drawn from the same population as P participants, with as many trials as each,
has statistics distributed exactly like one more participant's. Then for each statistic and set
size (x: the observer's value, m and s: the participants' mean and SD, SE = s / sqrt(P)),

    (x - m) / (s sqrt(1 + 1/P)) ~ t(P - 1)   so   z = (x - m) / SE = sqrt(P + 1) t(P - 1),

E[z^2] = (P + 1) nu / (nu - 2) and Var[z^2] = (P + 1)^2 2 nu^2 (nu - 1) / ((nu - 2)^2 (nu - 4))
with nu = P - 1 (to the accuracy of the statistics' normality over participants; finite-trial
biases cancel because observer and participants share the trial count). Set sizes are
independent, so a component (a sum over S set sizes) has S times that mean and variance; the
total's SD is at most the sum of the components' SDs (Cauchy-Schwarz).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analysis.human import distance
from analysis.human.comparison import human_statistics
from analysis.human.data import HumanTrials, read_behaviour_csv

P, T, REPLICATES = 8, 200, 10
SET_SIZES = (1, 3, 6)
POPULATION = {1: (10.0, 0.02), 3: (4.0, 0.15), 6: (2.0, 0.35)}  # set size: (kappa, guess rate)


def _observer(rng, n_trials: int, kappa_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One person of the population: own kappa and guess rate, von Mises + uniform errors."""
    errors, set_size = [], []
    jitter = math.exp(0.2 * rng.standard_normal())  # between-participant spread of precision
    for n in SET_SIZES:
        kappa, guess = POPULATION[n]
        g = min(max(guess + 0.03 * rng.standard_normal(), 0.0), 0.9)
        k = kappa * jitter * kappa_scale
        guessed = rng.random(n_trials) < g
        errors.append(
            np.where(guessed, rng.uniform(-np.pi, np.pi, n_trials), rng.vonmises(0.0, k, n_trials))
        )
        set_size.append(np.full(n_trials, n))
    return np.concatenate(errors), np.concatenate(set_size)


def _people(rng) -> HumanTrials:
    parts = [_observer(rng, T) for _ in range(P)]
    errors = np.concatenate([e for e, _ in parts])
    set_size = np.concatenate([s for _, s in parts])
    participant = np.repeat([f"p{i}" for i in range(P)], len(SET_SIZES) * T)
    zeros = np.zeros(errors.size)
    return HumanTrials(
        participant=participant,
        set_size=set_size,
        target=zeros,
        response=errors,
        errors=errors,
        nontarget_errors=np.full((errors.size, 0), np.nan),
    )


@pytest.fixture(scope="module")
def replicates() -> list[tuple[distance.Distance, distance.Distance]]:
    """(equal observer, less precise observer) distances over independent replicates."""
    rng = np.random.default_rng(2024)
    out = []
    for _ in range(REPLICATES):
        reference = human_statistics(_people(rng)).reference
        reference.target = "synthetic"
        equal = distance.human_distance(distance.observer_statistics(*_observer(rng, T)), reference)
        worse = distance.human_distance(
            distance.observer_statistics(*_observer(rng, T, kappa_scale=0.5)), reference
        )
        out.append((equal, worse))
    return out


def _expected_z2(p: int) -> tuple[float, float]:
    nu = p - 1
    mean = (p + 1) * nu / (nu - 2)
    var = (p + 1) ** 2 * 2 * nu**2 * (nu - 1) / ((nu - 2) ** 2 * (nu - 4))
    return mean, var


def test_equal_observer_scores_within_its_sampling_noise(replicates):
    mean_z2, var_z2 = _expected_z2(P)
    s = len(SET_SIZES)
    component_mean, component_sd = s * mean_z2, math.sqrt(s * var_z2)
    for name in distance.DISTANCE_STATISTICS:
        values = np.array([equal.components[name] for equal, _ in replicates])
        se = component_sd / math.sqrt(REPLICATES)
        assert abs(values.mean() - component_mean) < 3 * se, (name, values.mean(), component_mean)
    totals = np.array([equal.total for equal, _ in replicates])
    total_sd_bound = len(distance.DISTANCE_STATISTICS) * component_sd
    assert abs(totals.mean() - 3 * component_mean) < 3 * total_sd_bound / math.sqrt(REPLICATES)


def test_less_precise_observer_scores_worse(replicates):
    """Half the precision at every set size: paired over replicates (same people), its total
    exceeds the equal observer's by more than 3 SEs of the paired difference, and its MAE
    z-scores are positive (it errs more) by more than 3 SEs at every set size."""
    difference = np.array([w.total - e.total for e, w in replicates])
    assert difference.mean() > 3 * difference.std(ddof=1) / math.sqrt(REPLICATES)
    for i, n in enumerate(SET_SIZES):
        z = np.array([w.per_set_size[i]["mae"] for _, w in replicates])
        assert z.mean() > 3 * z.std(ddof=1) / math.sqrt(REPLICATES), n


def test_schema_of_the_distance(replicates):
    data = json.loads(json.dumps(replicates[0][0].to_dict(), allow_nan=False))
    assert set(data) >= {"total", "components", "per_set_size", "target"}
    assert set(data["components"]) == {"mae", "guess_rate", "excess_kurtosis"}
    assert [row["set_size"] for row in data["per_set_size"]] == list(SET_SIZES)
    assert data["target"] == "synthetic"
    rows = data["per_set_size"]
    assert data["components"]["mae"] == pytest.approx(sum(r["mae"] ** 2 for r in rows))
    assert data["total"] == pytest.approx(sum(data["components"].values()))


def test_one_participant_uses_a_bootstrap_se(tmp_path):
    """A CSV without a participant column is one participant: its SEs are its own sampling
    error (bootstrap over trials), and an observer from the same distribution with as many
    trials scores z^2 of order 2 per term (sampling noise of both), not 100s."""
    rng = np.random.default_rng(5)
    errors, set_size = _observer(rng, 400)
    path = tmp_path / "one.csv"
    rows = ["set_size,target,response"] + [
        f"{n},0,{float(e)!r}" for n, e in zip(set_size, errors, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")
    trials = read_behaviour_csv(path).to_trials()
    reference = human_statistics(trials, n_bootstrap=50).reference
    assert reference.n_participants == 1 and "bootstrap" in reference.se_source
    assert all(se > 0 for values in reference.se.values() for se in values)
    same = distance.human_distance(distance.observer_statistics(errors + 0.0, set_size), reference)
    assert same.total == pytest.approx(0.0, abs=1e-9)  # the person against themself
    # MAE SE from the bootstrap matches the analytic SE of a mean: SD(|e|) / sqrt(n)
    rows = set_size == 3
    analytic = np.abs(errors[rows]).std(ddof=1) / math.sqrt(rows.sum())
    assert reference.se["mae"][1] == pytest.approx(analytic, rel=0.3)


def test_zero_se_is_excluded_not_infinite():
    reference = distance.HumanReference(
        set_sizes=[1],
        mean={"mae": [0.2], "guess_rate": [0.0], "excess_kurtosis": [1.0]},
        se={"mae": [0.1], "guess_rate": [0.0], "excess_kurtosis": [0.5]},
        n_participants=3,
        se_source="between participants",
        target="t",
    )
    result = distance.human_distance(
        {1: {"mae": 0.4, "guess_rate": 0.1, "excess_kurtosis": 1.0}}, reference
    )
    assert result.per_set_size == [
        {"set_size": 1, "mae": pytest.approx(2.0), "guess_rate": None, "excess_kurtosis": 0.0}
    ]
    assert result.total == pytest.approx(4.0)
    assert result.excluded and "guess_rate" in result.excluded[0]

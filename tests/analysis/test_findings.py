"""The report's one-line findings read their direction from the numbers they state."""

from __future__ import annotations

from analysis.report import findings


def _dn_result(model_sum: float) -> dict:
    def side(total: float) -> dict:
        return {"w_sum_mean": total, "w_sum_se": 0.05, "w1": [total / 2] * 3, "w2": [total / 2] * 3}

    return {
        "n_trials": 3,
        "summation": {
            "model": {"baseline_subtracted": side(model_sum)},
            "linear_null": {"baseline_subtracted": side(2.0)},
        },
    }


def test_the_dn_finding_says_sublinear_only_below_the_linear_null():
    below = findings.dn(_dn_result(1.2))
    above = findings.dn(_dn_result(3.0))
    assert "below the null: sublinear" in below and "supralinear" not in below
    assert "above the null: supralinear" in above and "sublinear" not in above
    assert "median per trial 1.20" in below

"""The report's one-line findings read their direction from the numbers they state."""

from __future__ import annotations

from analysis.report import findings


def _dn_result(model_sum: float) -> dict:
    def side(total: float) -> dict:
        # heavy-tailed per-trial weights: the finding reads the pooled fit, not their mean
        return {
            "w_sum_mean": 40.0,
            "w_sum_se": 20.0,
            "w_sum_median": total,
            "pooled_w_sum": total,
            "pooled_w_sum_se": 0.05,
        }

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
    assert "1.20 ± 0.05 (pooled fit); per-trial median 1.20" in below

"""One sentence per analysis: what it found, against its control, from its own JSON.

Each function is a :class:`analysis.registry.Finding` (a row's ``finding`` names it): it takes
the parsed JSON file the analysis wrote and returns one sentence whose every number comes from
that file, so the report's summary cannot drift from the results. A function raises KeyError
(or TypeError, ValueError) where the file lacks what it needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "errors",
    "mixture",
    "human",
    "performance",
    "snr",
    "dn",
    "selectivity",
    "fixed_points",
    "weights",
    "trajectories",
    "item_loss",
]


def _by_set_size(rows: Mapping[str, Any]) -> dict[int, Any]:
    return {int(n): row for n, row in rows.items() if str(n).isdigit()}


def _range(rows: Mapping[str, Any]) -> tuple[int, int]:
    sizes = sorted(_by_set_size(rows))
    return sizes[0], sizes[-1]


def _pm(value: float, se: float | None, digits: int = 2) -> str:
    return f"{value:.{digits}f}" + ("" if se is None else f" ± {se:.{digits}f}")


def errors(result: Mapping[str, Any]) -> str:
    """MAE at the smallest and largest set size (± bootstrap SE), beside the untrained network
    and chance."""
    rows = _by_set_size(result["per_set_size"])
    first, last = min(rows), max(rows)
    text = (
        f"MAE {_pm(rows[first]['mae'], rows[first].get('se', {}).get('mae'))} rad at set size "
        f"{first}, {_pm(rows[last]['mae'], rows[last].get('se', {}).get('mae'))} at {last} "
        f"({result['n_trials_per_set_size']} trials per set size)"
    )
    controls = result.get("controls") or {}
    untrained = _by_set_size(controls.get("untrained_mae") or {})
    if untrained:
        text += (
            f"; untrained network {untrained[min(untrained)]:.2f} -> "
            f"{untrained[max(untrained)]:.2f}"
        )
    if controls.get("chance_mae") is not None:
        text += f"; chance (guessing) {controls['chance_mae']:.2f}"
    return text + "."


def mixture(result: Mapping[str, Any]) -> str:
    """Guess rate and target SD (von Mises + uniform) across set sizes, and where the two
    mixture models disagree most."""
    rows = _by_set_size(result)
    first, last = min(rows), max(rows)

    def value(n: int, parameter: str) -> str:
        se = rows[n].get("se", {}).get("vm_uniform", {}).get(parameter)
        return _pm(rows[n]["vm_uniform"][parameter], se)

    worst = max(rows, key=lambda n: abs(rows[n]["uncertainty"]["guess_rate_gauss_minus_vm"]))
    return (
        f"Guess rate (VM + U) {value(first, 'p_guess')} at set size {first}, "
        f"{value(last, 'p_guess')} at {last} (a model that never guesses: 0); target SD "
        f"{value(first, 'sd')} -> {value(last, 'sd')} rad; the Gauss + U guess rate differs "
        f"from it by up to {rows[worst]['uncertainty']['guess_rate_gauss_minus_vm']:+.2f} "
        f"(set size {worst})."
    )


def human(result: Mapping[str, Any]) -> str:
    """The distance to people and how many of its z-scores lie within 2."""
    distance = result["distance"]
    z = [
        row[s]
        for row in distance["per_set_size"]
        for s in ("mae", "guess_rate", "excess_kurtosis")
        if row.get(s) is not None
    ]
    ratio = [r for r in result["ratio"]["mae"] if r is not None]
    return (
        f"Distance to people {distance['total']:.1f} (sum of {len(z)} z²; |z| < 2 for "
        f"{sum(abs(v) < 2 for v in z)} of {len(z)}); model / people MAE {min(ratio):.2f} to "
        f"{max(ratio):.2f} over {result['n_participants']} participants."
    )


def performance(result: Mapping[str, Any]) -> str:
    """The task's score against its chance level, where the task defines one."""
    metric = "accuracy" if result["metric"] == "accuracy" else "MSE"
    chance = result.get("chance")
    return f"{metric} {result['score']:.3g} over {result['n_trials']} trials; " + (
        f"chance {chance:.3g}." if chance is not None else "the task defines no chance level."
    )


def snr(result: Mapping[str, Any]) -> str:
    """The time-averaged SNR's slope against set size, against the normalisation prediction."""
    slope = result["slope_db_per_decade"]
    low, high = slope["SNR2_ci95"]
    return (
        f"SNR slope {_pm(slope['SNR2'], slope['SNR2_se'], 1)} dB per decade of set size (95% CI "
        f"{low:.1f} to {high:.1f}) against {slope['normalisation_prediction']:g} for divisive "
        f"normalisation ({result['n_stimuli_per_set_size']} stimuli per set size)."
    )


def dn(result: Mapping[str, Any]) -> str:
    """Two-item summation weights of the model against a linear network's (pooled fits)."""
    summation = result["summation"]
    model = summation["model"]["baseline_subtracted"]
    null = summation["linear_null"]["baseline_subtracted"]
    model_sum, model_se = _dn_sum(model)
    null_sum, null_se = _dn_sum(null)
    z = (model_sum - null_sum) / math.hypot(model_se, null_se)
    # The direction is read from the numbers, never assumed: sublinear only below the null.
    reading = "below the null: sublinear" if z < 0 else "above the null: supralinear"
    median = model.get("w_sum_median")
    median = f"; per-trial median {median:.2f}" if median is not None else ""
    return (
        f"w1 + w2 {_pm(model_sum, model_se)} (pooled fit){median} against the linear "
        f"null's {_pm(null_sum, null_se)} (z = {z:.1f}; {reading} "
        f"summation) over {result['n_trials']} trials."
    )


def _dn_sum(fits: Mapping[str, Any]) -> tuple[float, float]:
    """The pooled fit's w1 + w2 and SE (the per-trial mean's in results that predate it)."""
    if fits.get("pooled_w_sum") is not None:
        return fits["pooled_w_sum"], fits["pooled_w_sum_se"]
    return fits["w_sum_mean"], fits["w_sum_se"]


def selectivity(result: Mapping[str, Any]) -> str:
    """Selective neurons among the active ones, and their mixing against shuffled chance."""
    summary = result["summary"]
    effect = summary["IPR_minus_chance"]
    active = result["n_neurons"] - summary["n_silent"]
    text = (
        f"{summary['n_selective']} of {active} active neurons selective ({summary['n_silent']} "
        f"silent below {summary['min_rate']:g} Hz, excluded)"
    )
    if effect.get("se") is not None:
        text += (
            f"; IPR - chance IPR {_pm(effect['mean'], effect['se'])}, d_z "
            f"{effect['effect_size_dz']:.2f}"
        )
    decode = (result.get("rates_by_epoch") or {}).get("decode")
    if decode:
        text += (
            f"; decode epoch {decode['mean_rate']:.3g} Hz, "
            f"{100 * decode['fraction_silent']:.0f}% of neurons silent"
        )
    return text + "."


def fixed_points(result: Mapping[str, Any]) -> str:
    """The fixed-point verdict with the searches' seeding."""
    return f"{result['verdict'].rstrip('.')} (searches seeded from the {result['epoch']} epoch)."


def weights(result: Mapping[str, Any]) -> str:
    """Whether the sign constraints (Dale's law) hold."""
    checks = result.get("checks") or {}
    if not checks:
        return f"{result['agent']}: no sign constraints to check."
    failed = [name for name, ok in checks.items() if not ok]
    return f"{result['agent']}: " + (
        f"violates {', '.join(failed)}." if failed else f"{'; '.join(checks)}: all hold."
    )


def trajectories(result: Mapping[str, Any]) -> str:
    """Variance the first principal components explain."""
    ratios = result["explained_variance_ratio"]
    return (
        f"The first {len(ratios)} principal components explain {100 * sum(ratios):.0f}% of the "
        f"variance of {result['n_states']} state dimensions over {result['n_trials']} trials."
    )


def item_loss(result: Mapping[str, Any]) -> str:
    """Silverman's test of one mode of the readout lengths at the largest set size."""
    largest = str(max(int(n) for n in result["set_sizes"]))
    mode = result["silverman_log_length"][largest]
    verdict = (
        "one mode (a resource spread over all items)"
        if mode["p_value"] >= 0.05
        else ("more than one mode (items held or dropped)")
    )
    return (
        f"At set size {largest}, readout lengths of {mode['n']} items: Silverman p = "
        f"{mode['p_value']:.2f}, {verdict}."
    )

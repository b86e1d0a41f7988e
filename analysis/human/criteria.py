"""The criteria of a human-like fit: what ``benchmarks/human_fit.py`` scores a trained model by,
against van den Berg et al. (2012)'s orientation observers (docs/human_fit.md).

1. MAE within +-25 % of people's at every set size 1-8;
2. the guess rate of a von Mises + uniform fit rises by at least 0.3 from set size 1 to 8;
3. the excess circular kurtosis over a von Mises with the same resultant length is > 0 at every
   set size >= 2.
"""

from __future__ import annotations

from analysis.human.comparison import model_human_ratio

__all__ = [
    "SET_SIZES",
    "MAE_TOLERANCE",
    "GUESS_RISE",
    "BROAD_VM_SD",
    "MAX_VM_SD_AT_8",
    "MIN_KURTOSIS_AT_2_TO_4",
    "RESOURCE_MODEL_DISTANCE",
    "criteria",
    "item_loss_criteria",
    "split_scores",
]

SET_SIZES = list(range(1, 9))
MAE_TOLERANCE = 0.25
GUESS_RISE = 0.3

# Above this von Mises SD (rad) the von Mises of a von Mises + uniform fit is itself nearly flat,
# so the split between it and the uniform (the guess rate) is ill-determined: such set sizes are
# flagged (people's largest VM SD is 0.57 rad).
BROAD_VM_SD = 1.0

# The forgetting criteria (docs/human_fit.md, "Result"): people's von Mises SD levels off near
# 0.55 rad from four items on and their excess kurtosis is 3-5 at set sizes 1-4; a model that
# loses items as they do must reach these as well as the three criteria above.
MAX_VM_SD_AT_8 = 0.8
MIN_KURTOSIS_AT_2_TO_4 = 1.0
RESOURCE_MODEL_DISTANCE = 154.0  # configs/human_fit_resource.yaml's distance to people


def criteria(model: dict, human: dict) -> dict:
    """The three pass/fail criteria from model and people's per-set-size values.

    The guess-rate criterion is reported as is; ``broad_fits`` lists the set sizes whose fit is
    too broad for its guess rate to mean much (see ``BROAD_VM_SD``).
    """
    ratios = model_human_ratio(model["mae"], human["mae"])
    mae_ok = [abs(r - 1.0) <= MAE_TOLERANCE for r in ratios]
    rise = model["p_guess"][-1] - model["p_guess"][0]
    kurt = model["excess_kurtosis"][1:]
    return {
        "mae_within_25pct": {
            "met": all(mae_ok),
            "ratio": ratios,
            "per_set_size": mae_ok,
            "n_met": int(sum(mae_ok)),
        },
        "guess_rate_rise": {
            "met": rise >= GUESS_RISE,
            "rise": rise,
            "human_rise": human["p_guess"][-1] - human["p_guess"][0],
            "broad_fits": [
                i + 1
                for i, sd in enumerate(model.get("vm_sd") or [])
                if sd is not None and sd > BROAD_VM_SD
            ],
        },
        "excess_kurtosis_positive": {
            "met": all(k > 0 for k in kurt),
            "min_at_set_size_2_plus": min(kurt),
        },
    }


def item_loss_criteria(model: dict, human: dict, distance: float) -> dict[str, bool]:
    """The six criteria of a model that forgets like people, on per-set-size statistics (set
    sizes 1-8: ``mae``, ``p_guess``, ``vm_sd``, ``excess_kurtosis``) and its distance to people:
    MAE within +-25 % at every set size; guess rate rising by >= 0.3 from 1 to 8; von Mises SD at
    8 <= 0.8 rad; excess kurtosis > 0 at every set size >= 2 and >= 1 at 2-4; distance under half
    of the resource model's."""
    ratios = model_human_ratio(model["mae"], human["mae"])
    kurt = model["excess_kurtosis"]
    return {
        "mae_within_25pct": all(abs(r - 1.0) <= MAE_TOLERANCE for r in ratios),
        "guess_rate_rise": model["p_guess"][-1] - model["p_guess"][0] >= GUESS_RISE,
        "vm_sd_at_8": model["vm_sd"][-1] <= MAX_VM_SD_AT_8,
        "excess_kurtosis_positive": all(k > 0 for k in kurt[1:]),
        "excess_kurtosis_at_2_to_4": all(k >= MIN_KURTOSIS_AT_2_TO_4 for k in kurt[1:4]),
        "distance_halved": distance < RESOURCE_MODEL_DISTANCE / 2,
    }


def split_scores(result: dict, set_sizes) -> dict:
    """A benchmark result's statistics at ``set_sizes`` only, for scoring a search on some set
    sizes (the selection) and reporting the others apart (held out, a prediction).

    Returns the MAE ratios (model / people), guess rates, von Mises SDs and excess kurtoses at
    those set sizes and the distance to people summed over them (the benchmark's squared z of
    MAE, guess rate and excess kurtosis).
    """
    index = [SET_SIZES.index(n) for n in set_sizes]
    ratios = result["criteria"]["mae_within_25pct"]["ratio"]
    per_set_size = result["distance"]["per_set_size"]
    distance = sum(
        z * z
        for i in index
        for key, z in per_set_size[i].items()
        if key != "set_size" and z is not None
    )
    return {
        "set_sizes": list(set_sizes),
        "mae_ratio": [ratios[i] for i in index],
        "p_guess": [result["model"]["p_guess"][i] for i in index],
        "vm_sd": [result["model"]["vm_sd"][i] for i in index],
        "excess_kurtosis": [result["model"]["excess_kurtosis"][i] for i in index],
        "distance": distance,
    }

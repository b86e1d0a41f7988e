"""The caption of every figure the toolkit draws, keyed by the figure's file stem.

Each caption has two lines: what the figure shows, and how to read it (what a good model, or
people, look like in it). A figure without an entry still appears in the report, with a visible
"no caption" note; ``tests/analysis/test_report.py`` runs every analysis and fails for any figure
missing here, so a new figure comes with its caption.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

__all__ = ["Caption", "CAPTIONS", "caption_for", "caption_order"]


@dataclass(frozen=True)
class Caption:
    """``title``; ``what`` the figure shows; ``how`` to read it; ``facts``: the sentence of
    numbers, made from the analysis' JSON when the caption is shown (so no number in a caption
    can drift from the result it describes; the static text states none)."""

    title: str
    what: str
    how: str
    facts: Callable[[Mapping[str, Any]], str] | None = None

    def with_facts(self, result: Mapping[str, Any] | None) -> Caption:
        """This caption with its facts read from ``result`` appended to ``what`` (unchanged
        without a result, or where the result lacks what the facts need)."""
        if self.facts is None or not isinstance(result, Mapping):
            return self
        try:
            facts = self.facts(result)
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
            return self
        return replace(self, what=f"{self.what} {facts}".strip())


def _item_loss_facts(result: Mapping[str, Any]) -> str:
    largest = str(max(result["set_sizes"]))
    mode = result["silverman_log_length"][largest]
    text = (
        f"At set size {largest} ({mode['n']} items, {result['n_trials']} trials): one mode "
        f"p = {mode['p_value']:.2f}."
    )
    low = (result.get("low_gain") or {}).get(largest)
    if low and low["below"]["n"]:
        below, above = low["below"], low["above"]
        text += (
            f" {100 * below['share']:.0f} % of items drew a gain below "
            f"{result['low_gain_threshold']:g} of a lone item's: MAE {below['mae']:.2f} rad "
            f"(the others {above['mae']:.2f}; a guess pi/2 = 1.57)."
        )
    return text


def _set_size_rows(
    result: Mapping[str, Any], key: str | None = "per_set_size"
) -> dict[int, Mapping]:
    rows = result[key] if key else result
    return {int(n): row for n, row in rows.items() if str(n).isdigit()}


def _set_size_facts(result: Mapping[str, Any]) -> str:
    text = f"Model: {result['model_source']}."
    if result.get("human_source"):
        people = result.get("n_participants")
        # a citation up to its year ("van den Berg, ... & Ma, W. J. (2012)"), else its start
        source = re.match(r"(.*?\(\d{4}\))", result["human_source"])
        text += f" People: {source.group(1) if source else result['human_source'][:60]}" + (
            f", {people} participants." if people else "."
        )
    if not result.get("untrained"):
        text += " No untrained network in this run's errors analysis (none drawn)."
    if result.get("chance") is None:
        text += " No chance level stated (none drawn)."
    return text


def _error_count_facts(result: Mapping[str, Any]) -> str:
    rows = _set_size_rows(result)
    counts = ", ".join(f"{rows[n]['n']} at set size {n}" for n in sorted(rows))
    return f"{result['n_trials_per_set_size']} trials per set size; errors: {counts}."


def _errors_facts(result: Mapping[str, Any]) -> str:
    boot = result.get("bootstrap", {})
    text = _error_count_facts(result)
    if boot:
        text += f" Error bars: bootstrap SE over {boot['n_resamples']} resamples of whole trials."
    return text


def _mixture_fits_facts(result: Mapping[str, Any]) -> str:
    rows = _set_size_rows(result, None)
    return (
        "Errors fitted: "
        + ", ".join(f"{rows[n]['n_trials']} at set size {n}" for n in sorted(rows))
        + "."
    )


def _mixture_parameter_facts(result: Mapping[str, Any]) -> str:
    rows = _set_size_rows(result, None)
    worst = max(rows, key=lambda n: abs(rows[n]["uncertainty"]["guess_rate_gauss_minus_vm"]))
    row = rows[worst]
    text = (
        f"Error bars: bootstrap SE over whole trials. The two guess rates differ most at set "
        f"size {worst} (Gauss+U {row['gauss_uniform']['p_guess']:.2f}, VM+U "
        f"{row['vm_uniform']['p_guess']:.2f})."
    )
    falls = [
        (n, r["uncertainty"])
        for n, r in sorted(rows.items())
        if "guess_rate_falls_from" in r["uncertainty"]
    ]
    for n, u in falls:
        z = u.get("guess_rate_fall_z")
        text += (
            f" The VM+U guess rate falls by {u['guess_rate_fall']:.2f} from set size "
            f"{u['guess_rate_falls_from']} to {n}" + (f" ({z:.1f} SE)." if z is not None else ".")
        )
    return text


def _human_facts(result: Mapping[str, Any]) -> str:
    distance = result.get("distance")
    text = f"People: {result['n_participants']} participants."
    if distance:
        z = [
            row[s]
            for row in distance["per_set_size"]
            for s in ("mae", "guess_rate", "excess_kurtosis")
            if row.get(s) is not None
        ]
        inside = sum(abs(v) < 2 for v in z)
        text += (
            f" Distance {distance['total']:.1f} (sum of {len(z)} z²); |z| < 2 for "
            f"{inside} of {len(z)}. Model SE: {distance.get('model_se_source', 'none')}."
        )
    return text


def _performance_facts(result: Mapping[str, Any]) -> str:
    missing = [e for e, v in result["by_epoch"].items() if v is None]
    text = f"{result['n_trials']} trials. " + (
        f"Chance {result['chance']:.3g} (dotted). "
        if result.get("chance") is not None
        else "The task defines no chance level (none drawn). "
    )
    if missing:
        text += f"No score (not drawn): {', '.join(missing)}."
    return text.strip()


def _fixed_point_facts(result: Mapping[str, Any]) -> str:
    settings = result.get("settings", {})
    return (
        f"{result['verdict']} Searches seeded from the {result['epoch']} epoch of "
        f"{settings.get('n_trials')} trials, {settings.get('max_iters')} Adam and "
        f"{settings.get('newton_iterations')} Newton iterations."
    )


def _snr_count_facts(result: Mapping[str, Any]) -> str:
    return (
        f"{result['n_stimuli_per_set_size']} stimuli per set size, "
        f"{result['repeats_per_stimulus']} repeats each."
    )


def _snr_facts(result: Mapping[str, Any]) -> str:
    slope = result["slope_db_per_decade"]
    text = _snr_count_facts(result)
    if slope["SNR2"] is not None and slope["SNR2_se"] is not None:
        low, high = slope["SNR2_ci95"]
        text += (
            f" Time-averaged slope {slope['SNR2']:.1f} ± {slope['SNR2_se']:.1f} "
            f"dB/decade (95% CI {low:.1f} to {high:.1f})."
        )
    return text


def _selectivity_facts(result: Mapping[str, Any]) -> str:
    summary = result["summary"]
    text = (
        f"{result['n_trials']} set-size-1 trials, {result['n_shuffles']} shuffles; "
        f"{summary['n_selective']} of {result['n_neurons']} neurons selective, "
        f"{summary['n_silent']} silent (decode-window rate below {summary['min_rate']:g} Hz) "
        "and excluded."
    )
    epochs = result.get("rates_by_epoch") or {}
    if epochs:
        text += (
            " Mean rate per epoch (set size 1): "
            + "; ".join(
                f"{name} {row['mean_rate']:.3g} Hz ({100 * row['fraction_silent']:.0f}% of neurons "
                "silent)"
                for name, row in epochs.items()
            )
            + "."
        )
    effect = summary.get("IPR_minus_chance") or {}
    if effect.get("se") is not None:
        text += (
            f" IPR - chance IPR: {effect['mean']:.2f} ± {effect['se']:.2f} (SE), effect "
            f"size d_z {effect['effect_size_dz']:.2f}."
        )
    return text


def _dn_summation_facts(result: Mapping[str, Any]) -> str:
    summation = result["summation"]
    model = summation["model"]["baseline_subtracted"]
    null = summation["linear_null"]["baseline_subtracted"]
    text = f"{result['n_trials']} trials."
    if model.get("pooled_w_sum") is not None:
        text += (
            f" Pooled w1 + w2 (one fit over every trial's neurons): model "
            f"{model['pooled_w_sum']:.3f} ± {model['pooled_w_sum_se']:.3f}, linear null "
            f"{null['pooled_w_sum']:.3f} ± {null['pooled_w_sum_se']:.3f} (these ± are SEs from a "
            f"bootstrap over trials). Per-trial median: model {model['w_sum_median']:.2f}, null "
            f"{null['w_sum_median']:.2f}."
        )
    return text + (
        f" Per-trial mean w1 + w2: model {model['w_sum_mean']:.3f} ± "
        f"{model['w_sum_se']:.3f}, linear null {null['w_sum_mean']:.3f} ± "
        f"{null['w_sum_se']:.3f} (mean ± SE over trials)."
    )


def _dn_load_facts(result: Mapping[str, Any]) -> str:
    load = result["load"]
    growth = load["growth_relative_to_set_size_1"]
    last = load["set_sizes"][-1]
    return (
        f"From set size 1 to {last}: input x{growth['input'][-1]:.1f}, model rate "
        f"x{growth['rate'][-1]:.1f}, linear null's rate x{growth['null_rate'][-1]:.1f}."
    )


_CAPTIONS: dict[str, Caption] = {
    # --- the run ---------------------------------------------------------------------------
    "training_history": Caption(
        "Training curves",
        "Error (rad; per set size, overall and on the fixed validation batch), mean firing "
        "rate and learning rate against training iteration.",
        "Errors should fall and flatten; training trials are fresh every iteration, so the "
        "validation curve follows the training curve; steps in the learning rate mark plateaus "
        "(and noise-curriculum stages).",
    ),
    "mae_vs_set_size_model_people_controls": Caption(
        "Set size: model against people",
        "Mean absolute recall error against set size for the model (± bootstrap SE where the "
        "errors analysis ran) and for people (mean ± between-participant SE), with the untrained "
        "network (grey, dashed) and chance (dotted) as controls where the errors analysis "
        "computed them.",
        "People get worse with every added item; a model that captures working-memory limits "
        "rises the same way, ideally on top of the human curve, and far below the untrained "
        "network and chance.",
        _set_size_facts,
    ),
    # --- errors ---------------------------------------------------------------------------
    "error_histograms_by_set_size": Caption(
        "Error distributions",
        "Histogram (density) of recall errors, response minus target on the full circle, one "
        "panel per set size (dotted: pure guessing).",
        "A narrow peak at 0 is precise memory; wider peaks and a raised flat floor (guesses) "
        "with more items are the signatures of limited working memory.",
        _error_count_facts,
    ),
    "error_sd_and_kurtosis_vs_set_size": Caption(
        "Error statistics against set size",
        "The model's circular SD, circular kurtosis and excess kurtosis over a von Mises with "
        "the same resultant length against set size (people: the human comparison figure).",
        "The SD should rise with set size; excess kurtosis above 0 (dotted) means heavy-tailed "
        "errors (a mixture of precisions or guesses).",
        _errors_facts,
    ),
    # --- mixture --------------------------------------------------------------------------
    "mixture_parameters_vs_set_size": Caption(
        "Mixture-model parameters",
        "Maximum-likelihood parameters per set size: guess (uniform) and non-target (swap) "
        "weights on the left, the SD of the target component on the right, for each model.",
        "Rising guess rates mean items are lost; a rising SD means items are kept less "
        "precisely; where the two guess rates disagree by more than their SEs, the guess rate "
        "is not identified by these errors.",
        _mixture_parameter_facts,
    ),
    "mixture_fits_on_error_histograms": Caption(
        "Mixture fits on the error histograms",
        "Error histogram per set size with the fitted von Mises + uniform and truncated "
        "Gaussian + uniform densities on top.",
        "Curves that follow the histogram's peak and floor are good fits; a floor the curves "
        "miss points to errors neither model explains (e.g. swaps).",
        _mixture_fits_facts,
    ),
    # --- human ----------------------------------------------------------------------------
    "human_statistics_model_vs_people": Caption(
        "Model against people",
        "Per set size, model (blue, ± bootstrap SE over its trials) against people (black, "
        "mean ± between-participant SE): linear SD, circular kurtosis, excess kurtosis, guess "
        "rate, von Mises SD, swap rate (the MAE is the report's first figure); last panel: z = "
        "(model - people) / sqrt(SE_people² + SE_model²) of MAE, guess rate and excess "
        "kurtosis.",
        "|z| < 2 (dotted) means the model's statistic is within the combined sampling error "
        "of people's; a consistent offset means the model is too precise or too noisy "
        "overall.",
        _human_facts,
    ),
    "human_error_histograms_model_vs_people": Caption(
        "Error distributions: model against people",
        "Density of recall errors of the model (blue line) over people's (grey fill), one panel "
        "per set size; the dotted line is pure guessing.",
        "Matching peak width says the precision is human; matching tails and floor say the "
        "model guesses and swaps as often as people do.",
    ),
    # --- performance ----------------------------------------------------------------------
    "performance_by_epoch_and_condition": Caption(
        "Performance by epoch and trial condition",
        "The task's score (error or accuracy) per epoch that has one, and per trial condition "
        "(one panel per condition variable of the task's trials; each bar ± SE over its "
        "trials, with its trial count under it).",
        "Low error (or high accuracy) in the response epoch means the task is solved; bars that "
        "differ by more than their SEs across conditions show which trials are hard.",
        _performance_facts,
    ),
    # --- snr ------------------------------------------------------------------------------
    "snr_decoded_points_per_step": Caption(
        "Decoded points per time step",
        "Readout (cos, sin) at every decode step of repeated stimuli, each rotated so that its "
        "true orientation is the star at (1, 0), one colour per set size, with 95% ellipses of "
        "the within-stimulus noise (crosses: the mean; its x is the signal).",
        "Ellipses that grow and means that move left towards the origin with set size mean a "
        "falling signal-to-noise ratio.",
        _snr_count_facts,
    ),
    "snr_decoded_points_time_averaged": Caption(
        "Decoded points averaged over the decode epoch",
        "The same readout averaged over the decode epoch per trial (what the reported angle "
        "is read from), with 95% ellipses per set size.",
        "Smaller ellipses than per step show how much averaging removes; their growth with "
        "set size is the noise that limits recall.",
        _snr_count_facts,
    ),
    "snr_db_vs_set_size": Caption(
        "SNR against set size",
        "Signal-to-noise ratio (dB; signal: the mean decode's projection on the true "
        "orientation) per step and time-averaged against set size (log axis), ± bootstrap SE "
        "over stimuli, with the fitted slopes and their 95% intervals (shaded).",
        "A straight falling line is a power law; divisive normalisation predicts about -10 dB "
        "per decade (signal shared out among the items).",
        _snr_facts,
    ),
    "snr_neuron_mean_vs_sd": Caption(
        "Per-neuron mean against variability",
        "For stimuli each shown many times: each neuron's mean against its SD across repeats "
        "(averaged over stimuli), for the delay rate, the recurrent input W_eff r and, where it "
        "varies across repeats (input noise), the external input B u; one colour per set "
        "size.",
        "Points on a rising line mean Poisson-like noise (SD grows with the mean); clouds that "
        "move left with set size show the mean signal per neuron shrinking with load.",
    ),
    "snr_sample_trials_rates_and_decodes": Caption(
        "Sample trials per set size",
        "Top: rates of sample neurons over one trial, epochs shaded; bottom: the decoded (cos, "
        "sin) path of sample trials over the decode epoch with the true orientation as a "
        "star, one column per set size (at most 4).",
        "Paths that end near the star are correct recalls; their spread around it, "
        "growing with set size, is the noise that the SNR figures quantify.",
    ),
    # --- dn -------------------------------------------------------------------------------
    "dn_two_item_summation_weights": Caption(
        "Summation of two items",
        "Per trial, weights of r12 - r0 ~ w1 (r1 - r0) + w2 (r2 - r0) (responses above the "
        "no-item baseline r0) for the model (black), a linear network of the same size (grey) "
        "and the model's raw rates (red); an axis whose weights exceed 10 is symlog (linear "
        "within ±3, logarithmic beyond).",
        "Model points below the linear null's (whose fits are given below), in the green "
        "square, are sublinear summation, the divisive-normalisation regime; points far out "
        "along one axis are trials whose one-item response is near zero, which the pooled fit "
        "weighs by their small size.",
        _dn_summation_facts,
    ),
    "dn_input_and_rate_vs_set_size": Caption(
        "Input against rate with load",
        "Left: stimulus-epoch input B u and rate above baseline relative to set size 1, for the "
        "model and a linear null; right: the decode-epoch mean rate against set size.",
        "A rate that grows less than the input and less than the linear null's shows that "
        "the network normalises its total activity.",
        _dn_load_facts,
    ),
    # --- selectivity ----------------------------------------------------------------------
    "selectivity_slot_tuning_by_neuron": Caption(
        "Selectivity of each neuron to each slot",
        "Vector strength R of each neuron's rate for the orientation in each slot (heat map; "
        "cyan dots: above the 95th percentile of a shuffle control), neurons sorted by their "
        "participation ratio IPR (top, with the chance IPR in grey).",
        "A neuron tuned to one slot has one marked cell (IPR near 1/K, dotted); marked cells "
        "across many slots (IPR near 1, above chance) mean mixed selectivity.",
        _selectivity_facts,
    ),
    "selectivity_participation_ratio_histogram": Caption(
        "Participation ratio across neurons",
        "Histogram of the participation ratio IPR = (sum R)^2 / (K sum R^2) of the selective "
        "neurons (black) against the IPR their shuffled controls give (grey).",
        "Mass near 1/K (red dotted) means slot-specific neurons, mass near 1 neurons that mix "
        "all slots; only a shift away from the grey chance histogram counts.",
        _selectivity_facts,
    ),
    # --- fixed points ---------------------------------------------------------------------
    "fixed_points_on_pca_trajectories": Caption(
        "Trajectories and fixed points",
        "Network trajectories (noise off) projected on their first principal components, "
        "coloured by epoch, with the fixed points found (black: stable, red: unstable).",
        "Delay-epoch trajectories that settle near stable points show attractor memory; "
        "trajectories that keep drifting hold the items dynamically.",
        _fixed_point_facts,
    ),
    "fixed_points_decoded_angles": Caption(
        "What the fixed points hold",
        "Left: fixed points (circles) coloured by the angle the readout decodes from them, and "
        "trial end states (triangles) coloured by the item's angle, in PC1-PC2; right: the "
        "decoded angles on the circle.",
        "Points spread around the circle in step with the trial ends form a ring attractor "
        "that can store any angle; a few clustered points can store only a few values.",
    ),
    "fixed_points_search_paths": Caption(
        "Fixed-point searches",
        "Each search from its initial state on a trajectory (grey) to where it ended "
        "(black: converged, x: slow point), in PC1-PC2.",
        "Many starts ending on the same few points mean few attractors; ends spread along a "
        "line or ring mean a continuum of slow states.",
    ),
    "fixed_points_eigenvalues_and_time_constants": Caption(
        "Stability of the fixed points",
        "Left: eigenvalues of the one-step Jacobian at every fixed point in the complex plane "
        "(zoomed on them), with the unit circle; right: each mode's decay time constant "
        "-dt / ln|λ| in ms, slowest first.",
        "Eigenvalues inside the circle are stable directions; time constants near the delay's "
        "length are slow directions that can hold a memory; any outside the circle make the "
        "point unstable.",
        _fixed_point_facts,
    ),
    # --- trajectories and weights -----------------------------------------------------------
    "trajectories_pca_by_epoch": Caption(
        "Population trajectories",
        "Trials projected on the first principal components of the network's activity "
        "(variance explained in the title), coloured by the task's epochs.",
        "Epochs that occupy separate regions show the network's state tracks the task; the "
        "spread of the delay epoch is the room it uses to hold the stimuli.",
    ),
    "weights_input_recurrent_readout": Caption(
        "Weights",
        "The trained weight matrices (input B, recurrent W_eff, readout F^T) in a diverging "
        "colour map centred at 0 (red positive, blue negative), E and I blocks of the neuron "
        "axes marked.",
        "Under Dale's law each presynaptic column has one sign (E columns positive, I columns "
        "negative); structure within the blocks shows which neurons carry the inputs.",
    ),
    "item_loss_readout_length_and_error": Caption(
        "How items are lost",
        "Per item, the length of its decode-window readout (the network's own estimate of the "
        "item's (cos, sin), without the readout's noise) at up to four set sizes, with "
        "Silverman's test of one mode on the log length; then the MAE of the items in each "
        "decile of readout length and, where the items drew a gain (task item_gain or agent "
        "item_synapse_noise), of drawn gain. The dotted line is a guess's MAE (pi/2).",
        "Two modes at large set sizes would mean items held or dropped outright; one mode that "
        "slides down means the resource is spread over all items. One curve of error against "
        "gain at every set size means an item's error depends on its own resource alone.",
        facts=_item_loss_facts,
    ),
    # --- sweeps ---------------------------------------------------------------------------
    "sweep_error_vs_set_size": Caption(
        "Sweep: error against set size",
        "Held-out error against set size, one curve per swept setting (mean ± SEM over seeds).",
        "Curves that separate show the swept setting changes memory; their slope says how it "
        "changes the cost of each extra item.",
    ),
}

CAPTIONS = MappingProxyType(_CAPTIONS)
"""Figure file stem -> :class:`Caption` (read-only; add entries in this module)."""


def caption_for(stem: str, result: Mapping[str, Any] | None = None) -> Caption | None:
    """The caption of the figure with file stem ``stem`` (its facts read from ``result``, the
    JSON of the analysis that drew it), or None when there is none."""
    caption = CAPTIONS.get(stem)
    return None if caption is None else caption.with_facts(result)


def caption_order(stem: str) -> tuple[int, str]:
    """Sort key of figures: the registry's order (analysis by analysis), then by name."""
    order = list(CAPTIONS)
    return (order.index(stem) if stem in order else len(order), stem)

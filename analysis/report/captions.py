"""The caption of every figure the toolkit draws, keyed by the figure's file stem.

Each caption has two lines: what the figure shows, and how to read it (what a good model, or
people, look like in it). A figure without an entry still appears in the report, with a visible
"no caption" note; ``tests/analysis/test_report.py`` runs every analysis and fails for any figure
missing here, so a new figure comes with its caption.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["Caption", "CAPTIONS", "caption_for", "caption_order"]


@dataclass(frozen=True)
class Caption:
    """``title``; ``what`` the figure shows; ``how`` to read it."""

    title: str
    what: str
    how: str


_CAPTIONS: dict[str, Caption] = {
    # --- the run ---------------------------------------------------------------------------
    "training_history": Caption(
        "Training curves",
        "Error (rad; per set size, overall and on the fixed validation batch), mean firing "
        "rate and learning rate against training iteration.",
        "Errors should fall and flatten; training trials are fresh every iteration, so the "
        "validation curve follows the training curve; steps in the learning rate mark plateaus "
        "(and noise-curriculum stages)."),
    "set_size_vs_people": Caption(
        "Set size: model against people",
        "Mean absolute recall error against set size for the model and for people (van den Berg "
        "et al. 2012, orientation; mean ± SE over 6 participants).",
        "People get worse with every added item; a model that captures working-memory limits "
        "rises the same way, ideally on top of the human curve."),
    # --- errors ---------------------------------------------------------------------------
    "error_hist": Caption(
        "Error distributions",
        "Histogram (density) of recall errors, response minus target on the full circle, one "
        "panel per set size.",
        "A narrow peak at 0 is precise memory; wider peaks and a raised flat floor (guesses) "
        "with more items are the signatures of limited working memory."),
    "error_statistics": Caption(
        "Error statistics against set size",
        "Mean absolute error, circular variance (-2 ln R), circular SD and circular kurtosis "
        "against set size; model (colour) next to people (black) where known.",
        "All but kurtosis should rise with set size; kurtosis above a von Mises' means "
        "heavy-tailed errors (a mixture of precisions or guesses)."),
    # --- mixture --------------------------------------------------------------------------
    "mixture_parameters": Caption(
        "Mixture-model parameters",
        "Maximum-likelihood parameters per set size: guess (uniform) and non-target (swap) "
        "weights on the left, the SD of the target component on the right, for each model.",
        "Rising guess rates mean items are lost; a rising SD means items are kept less "
        "precisely; the models agree when both are well identified."),
    "mixture_fits": Caption(
        "Mixture fits on the error histograms",
        "Error histogram per set size with the fitted von Mises + uniform and truncated "
        "Gaussian + uniform densities on top.",
        "Curves that follow the histogram's peak and floor are good fits; a floor the curves "
        "miss points to errors neither model explains (e.g. swaps)."),
    # --- human ----------------------------------------------------------------------------
    "human_comparison": Caption(
        "Model against people",
        "Per set size, model (blue) against people (black, mean ± between-participant SE; van "
        "den Berg et al. 2012): MAE, linear SD, kurtosis, guess rate, von Mises SD, swap rate; "
        "last panel: z = (model - people) / SE.",
        "Model points inside the human error bars reproduce behaviour, |z| < 2 (dotted) per "
        "statistic; a consistent offset means the model is too precise or too noisy overall."),
    "human_histograms": Caption(
        "Error distributions: model against people",
        "Density of recall errors of the model (blue line) over people's (grey fill), one panel "
        "per set size; the dotted line is pure guessing.",
        "Matching peak width says the precision is human; matching tails and floor say the "
        "model guesses and swaps as often as people do."),
    # --- performance ----------------------------------------------------------------------
    "performance": Caption(
        "Performance by epoch and trial condition",
        "The task's score (error or accuracy) per epoch, and per trial condition (one panel per "
        "condition variable of the task's trials), with chance (dotted) where defined.",
        "Bars far from chance in the decision epoch mean the task is solved; unequal bars "
        "across conditions show which trials are hard."),
    # --- snr ------------------------------------------------------------------------------
    "snr_points_per_step": Caption(
        "Decoded points per time step",
        "Readout (cos, sin) of one repeated stimulus at every decode step, one colour per "
        "set size, with 95% ellipses of the noise covariance (crosses: the mean, the signal).",
        "Ellipses that grow and means that shrink towards the origin with set size mean a "
        "falling signal-to-noise ratio."),
    "snr_points_time_averaged": Caption(
        "Decoded points averaged over the decode epoch",
        "The same readout averaged over the decode epoch per trial (what the reported angle "
        "is read from), with 95% ellipses per set size.",
        "Smaller ellipses than per step show how much averaging removes; their growth with "
        "set size is the noise that limits recall."),
    "snr_vs_set_size": Caption(
        "SNR against set size",
        "Signal-to-noise ratio (dB) of the decoded points per step and time-averaged against "
        "set size (log axis), with the fitted slopes in dB per decade.",
        "A straight falling line is a power law; divisive normalisation predicts about -10 dB "
        "per decade (signal shared out among the items)."),
    "snr_mean_vs_sd": Caption(
        "Per-neuron mean against variability",
        "For one stimulus shown many times: each neuron's mean against its SD across repeats, "
        "for the delay rate, the recurrent input W_eff r and the external input B u; one colour "
        "per set size.",
        "Points on a rising line mean Poisson-like noise (SD grows with the mean); clouds that "
        "move left with set size show the mean signal per neuron shrinking with load."),
    "snr_sample_trajectories": Caption(
        "Sample trials per set size",
        "Top: rates of sample neurons over one trial, epochs shaded; bottom: the decoded (cos, "
        "sin) path of sample trials with the true orientation dashed, one column per set size.",
        "Paths that end near the dashed line are correct recalls; their spread around it, "
        "growing with set size, is the noise that the SNR figures quantify."),
    # --- dn -------------------------------------------------------------------------------
    "dn_sublinearity": Caption(
        "Summation of two items",
        "Per trial, weights of r12 - r0 ~ w1 (r1 - r0) + w2 (r2 - r0) (responses above the "
        "no-item baseline r0) for the model (black), a linear network of the same size (grey) "
        "and the model's raw rates (red).",
        "The linear null sits on w1 + w2 = 2 (dashed); model points well below it, in the green "
        "square, are sublinear summation, the divisive-normalisation regime."),
    "dn_input_vs_rate": Caption(
        "Input against rate with load",
        "Left: stimulus-epoch input B u and rate above baseline relative to set size 1, for the "
        "model and a linear null; right: the decode-epoch mean rate against set size.",
        "Input that grows with the items while the model's rate stays flat (the null's grows) "
        "shows that the network normalises its total activity."),
    # --- selectivity ----------------------------------------------------------------------
    "selectivity_R_with_IPR": Caption(
        "Selectivity of each neuron to each slot",
        "Vector strength R of each neuron's rate for the orientation in each slot (heat map; "
        "cyan dots: above the 95th percentile of a shuffle control), neurons sorted by their "
        "participation ratio IPR (top, with the chance IPR in grey).",
        "A neuron tuned to one slot has one marked cell (IPR near 1/K, dotted); marked cells "
        "across many slots (IPR near 1, above chance) mean mixed selectivity."),
    "selectivity_ipr_hist": Caption(
        "Participation ratio across neurons",
        "Histogram of the participation ratio IPR = (sum R)^2 / (K sum R^2) of the selective "
        "neurons (black) against the IPR their shuffled controls give (grey).",
        "Mass near 1/K (red dotted) means slot-specific neurons, mass near 1 neurons that mix "
        "all slots; only a shift away from the grey chance histogram counts."),
    # --- fixed points ---------------------------------------------------------------------
    "fixed_points_pca": Caption(
        "Trajectories and fixed points",
        "Network trajectories (noise off) projected on their first principal components, "
        "coloured by epoch, with the fixed points found (black: stable, red: unstable).",
        "Delay-epoch trajectories that settle near stable points show attractor memory; "
        "trajectories that keep drifting hold the items dynamically."),
    "fixed_points_decoded": Caption(
        "What the fixed points hold",
        "Left: fixed points (circles) coloured by the angle the readout decodes from them, and "
        "trial end states (triangles) coloured by the item's angle, in PC1-PC2; right: the "
        "decoded angles on the circle.",
        "Points spread around the circle in step with the trial ends form a ring attractor "
        "that can store any angle; a few clustered points can store only a few values."),
    "fixed_points_search": Caption(
        "Fixed-point searches",
        "Each search from its initial state on a trajectory (grey) to where it ended "
        "(black: converged, x: slow point), in PC1-PC2.",
        "Many starts ending on the same few points mean few attractors; ends spread along a "
        "line or ring mean a continuum of slow states."),
    "fixed_points_eigenvalues": Caption(
        "Stability of the fixed points",
        "Eigenvalues of the one-step Jacobian at every fixed point in the complex plane, with "
        "the unit circle.",
        "Eigenvalues inside the circle are stable directions; those close to 1 are slow "
        "directions that can hold a memory; any outside make the point unstable."),
    # --- trajectories and weights -----------------------------------------------------------
    "trajectories_pca": Caption(
        "Population trajectories",
        "Trials projected on the first principal components of the network's activity "
        "(variance explained in the title), coloured by the task's epochs.",
        "Epochs that occupy separate regions show the network's state tracks the task; the "
        "spread of the delay epoch is the room it uses to hold the stimuli."),
    "weights": Caption(
        "Weights",
        "The trained weight matrices (input B, recurrent W_eff, readout F^T) in a diverging "
        "colour map centred at 0 (red positive, blue negative), E and I blocks of the neuron "
        "axes marked.",
        "Under Dale's law each presynaptic column has one sign (E columns positive, I columns "
        "negative); structure within the blocks shows which neurons carry the inputs."),
    # --- sweeps ---------------------------------------------------------------------------
    "sweep_error_vs_set_size": Caption(
        "Sweep: error against set size",
        "Held-out error against set size, one curve per swept setting (mean ± SEM over "
        "seeds).",
        "Curves that separate show the swept setting changes memory; their slope says how it "
        "changes the cost of each extra item."),
}

CAPTIONS = MappingProxyType(_CAPTIONS)
"""Figure file stem -> :class:`Caption` (read-only; add entries in this module)."""


def caption_for(stem: str) -> Caption | None:
    """The caption of the figure with file stem ``stem``, or None when there is none."""
    return CAPTIONS.get(stem)


def caption_order(stem: str) -> tuple[int, str]:
    """Sort key of figures: the registry's order (analysis by analysis), then by name."""
    order = list(CAPTIONS)
    return (order.index(stem) if stem in order else len(order), stem)

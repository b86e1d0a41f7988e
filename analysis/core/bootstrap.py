"""Bootstrap resampling of a model's errors: the model's own sampling uncertainty.

A model is simulated on a finite number of trials, so each statistic of its errors has a
sampling error, as people's have. Two resampling units are offered:

* ``"trials"``: whole trials are drawn with replacement and every item of a drawn trial comes
  with it (the items of one trial share the network's noise and are not independent), the SE
  the comparisons use;
* ``"items"``: items are drawn independently (the SE the same number of independent errors
  would have; smaller than the trials' one when items of a trial are correlated).

Resampling is within one set size and seeded, so every SE is reproducible.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RESAMPLING_UNITS", "resample_indices", "standard_error"]

RESAMPLING_UNITS = ("trials", "items")


def resample_indices(
    trial: np.ndarray, n_bootstrap: int, rng: np.random.Generator, unit: str = "trials"
) -> np.ndarray:
    """(n_bootstrap, n) indices into the n items of one set size, one bootstrap sample a row.

    Args:
        trial: (n,) the trial each item belongs to.
        n_bootstrap: resamples.
        rng: the seeded generator.
        unit: ``"trials"`` (whole trials drawn; needs the same number of items in every trial,
            true within a set size) or ``"items"``.
    """
    if unit not in RESAMPLING_UNITS:
        raise ValueError(f"unit: expected one of {RESAMPLING_UNITS}, got {unit!r}")
    trial = np.asarray(trial).ravel()
    if unit == "items":
        return rng.integers(0, trial.size, size=(n_bootstrap, trial.size))
    order = np.argsort(trial, kind="stable")
    _, counts = np.unique(trial[order], return_counts=True)
    if np.any(counts != counts[0]):
        raise ValueError(
            "trial: resampling whole trials needs the same number of items in "
            f"every trial; got {sorted(set(counts.tolist()))}"
        )
    items_of_trial = order.reshape(counts.size, counts[0])  # (trials, items per trial)
    drawn = rng.integers(0, counts.size, size=(n_bootstrap, counts.size))
    return items_of_trial[drawn].reshape(n_bootstrap, -1)


def standard_error(draws) -> float:
    """The bootstrap SE: the SD (ddof 1) of a statistic over its resamples; nan where one of
    them is not finite (e.g. the kurtosis of a resample whose angles are all equal, or the
    von Mises SD of a flat fit, kappa = 0): the SE is then undefined, not a warning."""
    values = np.asarray(draws, dtype=float)
    if not np.all(np.isfinite(values)):
        return float("nan")
    return float(np.std(values, ddof=1))

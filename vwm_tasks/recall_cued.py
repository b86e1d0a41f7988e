"""Cued recall (``VWMRecallCued-v0``): all items shown, one probed slot reported."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from vwm_tasks.encoding import angles_to_targets
from vwm_tasks.recall import TrialVectors, VWMRecall


class VWMRecallCued(VWMRecall):
    """Delayed recall of one cued item out of several (the human delayed-estimation paradigm).

    ## Description
    As ``VWMRecall-v0`` (same epochs, sampling, encoding and ILC noise; see its docstring), but
    at ``decode`` a cue input names one present slot, drawn uniformly among the present ones
    (``trial["probe"]``), and the agent reports only that item's ``(cos theta, sin theta)``.
    This is the variant of the human experiments (Bays et al. 2009, van den Berg et al. 2012).

    ## Observation Space
    ``Box(n_stim + K,)`` float32: the ``VWMRecall`` stimulus channels (``n_stim = 3K`` or
    ``2K``), then ``K`` cue channels, a one-hot of the probed slot held over the decode epoch.
    The cue has the scale of a stimulus channel, ``input_strength / K`` (12 at the defaults; a
    stimulus channel carries 12 on average), so that it drives the network as strongly as an item
    does (see docs/model.md, section What is ours).

    ## Action Space
    ``Box(-1, 1, (2,))`` float32: ``(cos, sin)`` of the probed item, scored over the decode epoch.

    ## Rewards
    As ``VWMRecall-v0``: ``rewards["error"]`` (default -1) times the squared error on decode steps;
    ``info["performance"] = 1 - |angular error| / pi`` at the end of each trial.

    ## Arguments
    Same as ``VWMRecall-v0``. ``new_trial(probe=k)`` forces the probed slot (must be present).

    ## Version History
    - v0: initial version. The cue was first a one-hot of amplitude 1, about 12 times weaker than
      a stimulus channel: at initialisation it moved decode-epoch rates by ~0.001 Hz, and trained
      Dale RNNs ignored it (errors of a network reporting a random present item). It now has the
      stimulus scale ``input_strength / K``.
    """

    metadata = {
        **VWMRecall.metadata,
        "paper_link": "https://doi.org/10.1167/9.10.7",
        "paper_name": "The precision of visual working memory is set by allocation of a shared "
        "resource (Bays, Catalao & Husain 2009)",
    }

    @property
    def n_cue_channels(self) -> int:  # type: ignore[override]
        return self.max_items

    @property
    def n_outputs(self) -> int:
        return 2

    def _choose_probe(
        self, pick: np.ndarray, order: np.ndarray, set_size: np.ndarray
    ) -> np.ndarray:
        position = np.floor(pick * set_size).astype(np.int64)
        return np.take_along_axis(order, position[:, None], axis=1)[:, 0].astype(np.int64)

    def _check_probe(self, probe: Any, presence: np.ndarray) -> int:
        if (
            not isinstance(probe, numbers.Integral)
            or not 0 <= probe < self.max_items
            or not presence[probe]
        ):
            raise ValueError(
                f"probe must be a present slot {np.flatnonzero(presence).tolist()}, got {probe!r}"
            )
        return int(probe)

    def trial_vectors(
        self, theta: np.ndarray, theta_input: np.ndarray, presence: np.ndarray, probe: np.ndarray
    ) -> TrialVectors:
        shown = super().trial_vectors(theta, theta_input, presence, probe)
        probe = np.asarray(probe)
        # The cue's amplitude is a stimulus channel's (strength / K, as in encode_angles).
        scale = self.input_strength / self.max_items
        cue = ((np.arange(self.max_items) == probe[..., None]) * scale).astype(np.float32)
        blank_stimulus = np.zeros_like(shown.stimulus)
        probed_theta = np.take_along_axis(theta, probe[..., None], axis=-1)
        target = angles_to_targets(probed_theta, np.ones_like(probed_theta))
        return TrialVectors(
            stimulus=np.concatenate([shown.stimulus, np.zeros_like(cue)], -1),
            cue=np.concatenate([blank_stimulus, cue], -1),
            target=target.astype(np.float32),
            target_mask=np.ones_like(target, dtype=np.float32),
        )

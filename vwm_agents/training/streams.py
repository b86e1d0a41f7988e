"""The random streams of one training process, their seeds and their saved state.

Three streams feed a training: the trials (a numpy ``Generator``), the model's noise (a torch
``Generator`` on the run's device) and torch's global generator (for agents that draw from it;
forked and seeded by :func:`vwm_agents.training.api.run_random_state`). Their seeds come from
``training.seed`` (:func:`~vwm_agents.training.evaluation.run_seeds`); under torchrun each rank's
from ``(seed, rank, P)``, so the ranks draw different trials and noise. A ``latest.pt`` holds their
states, so a resume draws exactly what the run would have drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vwm_agents.training.checkpoint import numpy_rng_state, set_numpy_rng_state
from vwm_agents.training.distributed import Distributed, rank_seed
from vwm_agents.training.evaluation import RunSeeds, make_generator

__all__ = ["RandomStreams"]


@dataclass
class RandomStreams:
    """The trial and noise generators of one process, and torch's global generators' state."""

    data: np.random.Generator
    noise: torch.Generator
    device: torch.device

    @classmethod
    def of_run(cls, seeds: RunSeeds, device: torch.device, dist: Distributed) -> RandomStreams:
        data_seed, noise_seed = seeds.data, seeds.noise
        if dist.active:  # each rank its own trials and noise
            data_seed = rank_seed(data_seed, dist.rank, dist.world_size)
            noise_seed = rank_seed(noise_seed, dist.rank, dist.world_size)
        return cls(np.random.default_rng(data_seed), make_generator(device, noise_seed), device)

    def state(self) -> dict[str, Any]:
        state = {
            "torch_cpu": torch.get_rng_state(),
            "noise": self.noise.get_state(),
            "numpy_data": numpy_rng_state(self.data),
        }
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch_cpu"])
        self.noise.set_state(state["noise"])
        set_numpy_rng_state(self.data, state["numpy_data"])
        if self.device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], self.device)

"""Batches, forward passes and metrics of a run: training samples and the fixed evaluation batches.

A run evaluates on two fixed batches drawn once from its seed: the **validation** batch picks
``best.pt`` (the lowest error over the logging steps) and the **test** batch, with other trials
and another noise seed, is what ``metrics.json`` reports, so the reported error is not the
minimum it was selected as (no selection bias).

Every random number of a run comes from a generator derived from ``training.seed`` by
:func:`run_seeds`: numpy generators for the data, torch generators for the model's noise.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vwm_agents.training import losses

__all__ = [
    "RunSeeds",
    "run_seeds",
    "Sample",
    "sample",
    "FixedBatch",
    "fixed_batches",
    "evaluate",
    "batch_metrics",
    "window_mean",
    "forward_model",
    "forward_parameters",
    "takes_generator",
    "make_generator",
    "first_loss_step",
]


@dataclass(frozen=True)
class RunSeeds:
    """The independent seeds of one run's random streams (from one ``training.seed``)."""

    data: int
    noise: int
    val_data: int
    val_noise: int
    test_data: int
    test_noise: int
    torch_global: int


def run_seeds(seed: int) -> RunSeeds:
    """Seeds of the streams of a run with ``training.seed`` = ``seed`` (``SeedSequence`` words).

    The first four are those of earlier versions (training data and noise, and the held-out
    batch, now the validation batch), so trainings are unchanged.
    """
    return RunSeeds(*np.random.SeedSequence(int(seed)).generate_state(7).tolist())


@dataclass
class Sample:
    """One batch of trials: the env's ``TrialBatch`` and its tensors on the device."""

    batch: Any
    ob: Tensor
    gt: Tensor
    mask: Tensor

    @property
    def tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.ob, self.gt, self.mask


def sample(
    env: Any,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
    *,
    balance_set_sizes: bool = True,
) -> Sample:
    """``batch_size`` fresh trials from ``env`` drawn with ``rng`` (VWM tasks: vectorised)."""
    from vwm_tasks.batch import batch_tensors, collect_batch

    unwrapped = env.unwrapped
    if hasattr(unwrapped, "sample_batch"):
        batch = unwrapped.sample_batch(
            batch_size, rng, dense=False, balance_set_sizes=balance_set_sizes
        )
    else:
        batch = collect_batch(env, batch_size, rng)  # through the wrappers
    return Sample(batch, *batch_tensors(env, batch, device))


@dataclass
class FixedBatch:
    """A batch drawn once and evaluated with the same noise seed every time."""

    name: str
    sample: Sample
    data_seed: int
    noise_seed: int

    @property
    def size(self) -> int:
        return int(self.sample.ob.shape[0])

    def describe(self) -> str:
        return (
            f"{self.name} batch: {self.size} trials, data seed {self.data_seed}, "
            f"noise seed {self.noise_seed}"
        )


def fixed_batches(
    env: Any,
    seeds: RunSeeds,
    batch_size: int,
    device: torch.device,
    *,
    balance_set_sizes: bool = True,
) -> tuple[FixedBatch, FixedBatch]:
    """The run's (validation, test) batches: other trials and other noise seeds each."""
    out = []
    for name, data_seed, noise_seed in (
        ("validation", seeds.val_data, seeds.val_noise),
        ("test", seeds.test_data, seeds.test_noise),
    ):
        drawn = sample(
            env,
            batch_size,
            np.random.default_rng(data_seed),
            device,
            balance_set_sizes=balance_set_sizes,
        )
        out.append(FixedBatch(name, drawn, data_seed, noise_seed))
    return out[0], out[1]


def forward_model(
    model: nn.Module,
    ob: Tensor,
    generator: torch.Generator | None,
    takes_generator: bool,
    **options: Any,
) -> tuple[Tensor, Tensor | None]:
    """``(outputs, rates or None)`` of any agent (those that take no generator draw nothing)."""
    out = model(ob, generator=generator, **options) if takes_generator else model(ob, **options)
    if isinstance(out, tuple):
        return out[0], out[1]
    return out, None


@torch.no_grad()
def evaluate(model: nn.Module, batch: FixedBatch, *, discrete: bool) -> dict[str, Any]:
    """Metrics of ``model`` on a fixed batch, its noise drawn from the batch's own seed.

    VWM (Box) tasks: ``{"error", "error_std", "rate", "per_set_size": {"1": {"error",
    "error_std", "rate"}, ...}}`` (rad, rad, Hz). Discrete tasks: ``{"error" (1 - accuracy),
    "accuracy", "rate"}``. ``rate`` is None for agents that return no rates.
    """
    was_training = model.training
    model.eval()
    generator = make_generator(batch.sample.ob.device, batch.noise_seed)
    outputs, rates = forward_model(model, batch.sample.ob, generator, takes_generator(model))
    model.train(was_training)
    return batch_metrics(
        outputs,
        batch.sample.gt,
        batch.sample.mask,
        rates,
        getattr(batch.sample.batch, "set_size", None),
        discrete,
    )


def batch_metrics(
    outputs: Tensor,
    gt: Tensor,
    mask: Tensor,
    rates: Tensor | None,
    set_size: np.ndarray | None,
    discrete: bool,
) -> dict[str, Any]:
    """The metrics of one batch as plain floats (NaN/inf as None).

    VWM: ``{"error", "error_std", "rate", "per_set_size"}``; Discrete: ``{"error",
    "accuracy", "rate"}`` (``rate``: mean rate, None for agents without rates).
    """
    if discrete:
        metrics = losses.classification_metrics(outputs, gt, mask)
        metrics["rate"] = rates.mean().item() if rates is not None else None
    else:
        metrics = losses.vwm_metrics(outputs, gt, mask, rates, set_size)
    return _finite_floats(metrics)


def _finite_floats(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _finite_floats(value) for key, value in tree.items()}
    if tree is None:
        return None
    value = float(tree)
    return value if math.isfinite(value) else None


def window_mean(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Leaf-wise mean of nested metric dicts, skipping None (e.g. a set size absent from a batch)."""
    keys = list(dict.fromkeys(key for record in records for key in record))
    out: dict[str, Any] = {}
    for key in keys:
        values = [record[key] for record in records if record.get(key) is not None]
        if values and isinstance(values[0], dict):
            out[key] = window_mean(values)
        else:
            out[key] = float(np.mean(values)) if values else None
    return out


def first_loss_step(batch: Any) -> int:
    """The first time step any loss term can see: the earliest decode start (VWM tasks), else 0.

    Outputs before it never enter the loss (the VWM mask is on the decode epoch only), so the
    trainer lets the agent read them out without drawing noise (``readout_from``).
    """
    decode = (getattr(batch, "epochs", None) or {}).get("decode")
    return int(np.min(decode[:, 0])) if decode is not None and len(decode) else 0


def forward_parameters(model: nn.Module) -> set[str]:
    """Names of the arguments ``model.forward`` takes (the agent protocol's options); none when
    its signature cannot be read (a compiled or C-implemented forward)."""
    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return set()


def takes_generator(model: nn.Module) -> bool:
    return "generator" in forward_parameters(model)


def make_generator(device: torch.device, seed: int) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator

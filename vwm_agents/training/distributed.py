"""Data-parallel training of one model on P processes (``torchrun``), rank 0 writing.

Launched by ``torchrun --nproc_per_node=P -m vwm_agents.train ...`` (which sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous), the trainer runs on every process:

* each rank draws ``training.batch_size / P`` trials and its noise from its own generators,
  seeded from ``(training.seed, rank, P)``: a run repeats for a given P (not across P);
* after the backward pass the gradients, the loss and the finiteness flags of all ranks are
  summed in one all-reduce (:meth:`Distributed.reduce_step`); every rank then holds the gradient
  of the mean loss over the global batch, the same loss and the same divergence verdict, so the
  optimiser step, gradient clipping, learning-rate schedule, early stopping and noise curriculum
  decide the same everywhere and the parameters never drift apart;
* rank 0 alone writes the run directory, evaluates the validation and test batches and shows the
  progress bar; a checkpoint holds every rank's random state, so a resume with the same P
  continues exactly.

Why one all-reduce of a flat buffer and not the ``DistributedDataParallel`` wrapper: the wrapper
overlaps communication with the backward pass through per-parameter hooks, but the Dale RNN's
fast path computes all gradients at once in a hand-written backward, so there is nothing to
overlap; one collective of ~0.3 MB (N = 256) per iteration is the same maths as the wrapper's
bucketed average, keeps ``state_dict`` keys and the agent's own methods unwrapped, works for any
agent, and carries the loss and the stop flags in the same message.

Faults: a collective that fails (a peer died or was killed: its sockets close, the survivors'
all-reduce fails at once) or times out (a peer hangs: ``training.distributed_timeout_s``) raises
:class:`RanksLost`, a :class:`~vwm_agents.training.trainer.TrainingFailed` naming the iteration
and the checkpoint that is kept.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vwm_agents.config import DISTRIBUTED_BACKENDS

__all__ = [
    "BACKENDS",
    "Distributed",
    "RanksLost",
    "SINGLE",
    "launched_by_torchrun",
    "process_group",
    "rank_seed",
]

BACKENDS = DISTRIBUTED_BACKENDS  # the schema owns the names


class RanksLost(RuntimeError):
    """A collective failed or timed out: another rank died, was killed or hangs."""


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by ``torchrun`` (or ``srun`` + env)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def environment_rank() -> int:
    """This process's rank from the launcher's environment (0 when not launched)."""
    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else 0


def rank_seed(seed: int, rank: int, world_size: int) -> int:
    """The seed of rank ``rank``'s stream among ``world_size`` from a run stream's ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(rank), int(world_size)]).generate_state(1)[0])


@dataclass(frozen=True)
class Distributed:
    """Where this process stands among the ranks of one training (one rank when not launched)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def local_batch_size(self, batch_size: int) -> int:
        """Each rank's share of the global ``training.batch_size``."""
        return batch_size // self.world_size

    # -- collectives (no-ops for one rank) ----------------------------------------------------
    def reduce_step(
        self, params: Sequence[Tensor], checks: Tensor, stop: bool
    ) -> tuple[list[float], bool]:
        """Average the gradients of ``params`` over the ranks and sum ``checks`` and ``stop``.

        ``checks`` holds this rank's loss and its finiteness flags (1.0 for finite); returned
        summed over the ranks, with whether any rank asked to stop (Ctrl-C, SIGTERM). One
        all-reduce of one flat buffer.
        """
        if not self.active:
            return checks.tolist(), stop
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat(
            [g.reshape(-1) for g in grads] + [checks.to(grads[0].dtype), _flag(stop, grads[0])]
        )
        self._collective(torch.distributed.all_reduce, flat)
        offset = 0
        for param, grad in zip(params, grads, strict=True):
            size = grad.numel()
            param.grad = flat[offset : offset + size].view_as(grad).div_(self.world_size)
            offset += size
        summed = flat[offset:].tolist()
        return summed[:-1], summed[-1] > 0

    def gather(self, value: Any) -> list[Any] | None:
        """Every rank's ``value`` (picklable), in rank order, on rank 0; None elsewhere."""
        if not self.active:
            return [value]
        out = [None] * self.world_size if self.is_main else None
        self._collective(torch.distributed.gather_object, value, out, dst=0)
        return out

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (picklable) on every rank."""
        if not self.active:
            return value
        box = [value if self.is_main else None]
        self._collective(torch.distributed.broadcast_object_list, box, src=0)
        return box[0]

    def max_difference(self, params: Sequence[Tensor]) -> float:
        """The largest difference of any parameter between this rank and rank 0 (over ranks)."""
        if not self.active:
            return 0.0
        flat = torch.cat([p.detach().reshape(-1) for p in params]).clone()
        reference = flat.clone()
        self._collective(torch.distributed.broadcast, reference, src=0)
        difference = (flat - reference).abs().max().reshape(1)
        self._collective(
            torch.distributed.all_reduce, difference, op=torch.distributed.ReduceOp.MAX
        )
        return float(difference)

    def _collective(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (RuntimeError, ValueError) as exc:  # DistBackendError, gloo's closed connection
            raise RanksLost(
                f"rank {self.rank} of {self.world_size} lost the other ranks (a rank failed, "
                f"was killed or hangs: {_first_sentence(exc)})"
            ) from None


SINGLE = Distributed()


def _first_sentence(exc: BaseException) -> str:
    """The backend's reason without its source location (``[.../pair.cc:553] Connection
    closed by peer [127.0.0.1]:1452. This is...`` -> ``Connection closed by peer``)."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", " ".join(str(exc).split()))
    text = re.split(r"(?<=[a-z])\.\s|\s\[", text, maxsplit=1)[0]
    return text[:160] or type(exc).__name__


def _flag(value: bool, like: Tensor) -> Tensor:
    return torch.tensor([1.0 if value else 0.0], dtype=like.dtype, device=like.device)


def resolve_backend(requested: str, device: torch.device) -> str:
    """``auto``: nccl for CUDA devices, gloo for the CPU."""
    if requested not in BACKENDS:
        raise ValueError(
            f"training.distributed_backend must be one of {BACKENDS}, got {requested!r}"
        )
    if requested == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    return requested


@contextlib.contextmanager
def process_group(backend: str, device: torch.device, timeout_s: float) -> Iterator[Distributed]:
    """The process group of a ``torchrun`` launch for the duration of a training.

    Without a launcher (``WORLD_SIZE`` unset or 1) yields :data:`SINGLE` and touches nothing.
    A group that already exists (the caller made it) is used and left alone.
    """
    if not launched_by_torchrun():
        yield SINGLE
        return
    dist = torch.distributed
    owned = not dist.is_initialized()
    if owned:
        # torch._dynamo imported while a group exists (the optimiser's first step imports it)
        # keeps that group alive after destroy_process_group (torch 2.13): its gloo threads
        # then die with the interpreter, and now and then abort the process at exit
        # (SIGABRT, "terminate called without an active exception") after a good run.
        # Imported before the group, it holds nothing.
        importlib.import_module("torch._dynamo")
        dist.init_process_group(
            backend=resolve_backend(backend, device),
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    try:
        yield Distributed(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            backend=dist.get_backend(),
        )
    finally:
        if owned and dist.is_initialized():
            with contextlib.suppress(Exception):  # a group whose peers are gone
                dist.destroy_process_group()

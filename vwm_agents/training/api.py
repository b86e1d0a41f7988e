"""``train``: one straight path from a validated config to a trained run directory.

config -> :func:`~vwm_agents.training.run.resolve_run` (env, model(s), device, :class:`RunDir`;
nothing written) -> :meth:`RunDir.start` (fresh or resume, decided once for single runs and
ensembles alike) -> :class:`~vwm_agents.training.trainer.Trainer` (or the ensemble trainer) ->
the run directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from vwm_agents.config import Config, ConfigError
from vwm_agents.training.checkpoint import CheckpointError
from vwm_agents.training.distributed import Distributed, process_group, rank_seed
from vwm_agents.training.ensemble_trainer import member_config, train_ensemble
from vwm_agents.training.evaluation import run_seeds
from vwm_agents.training.resources import is_out_of_memory
from vwm_agents.training.run import ResolvedRun, resolve_device, resolve_run
from vwm_agents.training.rundir import RunDirError
from vwm_agents.training.trainer import (
    Trainer,
    TrainingDiverged,
    TrainingInterrupted,
    TrainingOutOfMemory,
    TrainingRanksLost,
)

__all__ = ["train", "run_random_state"]


@contextlib.contextmanager
def run_random_state(run: ResolvedRun, dist: Distributed | None = None) -> Iterator[None]:
    """The global torch generator of a run: forked from the caller's, seeded from the run seed
    (and the rank, under torchrun; a resume then restores the saved state), restored
    afterwards. Also sets the CPU threads."""
    if run.config.training.threads is not None:
        torch.set_num_threads(run.config.training.threads)
    cuda = run.device.type == "cuda"
    index = (
        run.device.index
        if run.device.index is not None
        else torch.cuda.current_device()
        if cuda
        else None
    )
    with torch.random.fork_rng(devices=[index] if cuda else []):
        seed = run_seeds(run.config.training.seed).torch_global
        if dist is not None and dist.active:
            seed = rank_seed(seed, dist.rank, dist.world_size)
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def train(
    config: Config,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    device: str | None = None,
    callback: Callable[[dict], None] | None = None,
    progress: bool | None = None,
) -> Path:
    """Train ``config``'s agent on its task and return the run directory.

    Args:
        out_dir: where run directories go; None: ``logging.out_dir``.
        resume: continue the run in ``out_dir/run_name(config)`` from ``checkpoints/latest.pt``
            exactly (the config may differ only in ``RESUMABLE_CHANGES``, e.g. more iterations).
            Without ``resume`` an existing run directory is an error.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:<i>``; None: ``training.device``.
        callback: called with each history record (a dict) at every logging step.
        progress: show the tqdm bar; None: ``logging.progress``.

    Everything that can be wrong with the config is checked (env and model are built) before
    anything is written. Launched by ``torchrun`` (several processes), the processes train one
    model together (:mod:`vwm_agents.training.distributed`): ``training.batch_size`` is the
    global batch and must divide among them; rank 0 alone writes the run directory. ``training.num_models: S > 1`` trains an ensemble (members in
    ``seed_<s>/``, see :mod:`vwm_agents.training.ensemble_trainer`).

    Raises:
        ConfigError: bad config (nothing written).
        RunDirError: the run directory exists without ``resume``, or ``resume`` finds no
            checkpoint / a different config.
        CheckpointError: ``latest.pt`` is truncated, foreign or does not fit the config.
        TrainingDiverged: non-finite loss or rates (the last good checkpoint is kept).
        TrainingOutOfMemory: an allocation failed during training (one line naming the
            iteration and what to lower; the last good checkpoint is kept).
        ResourceError: (a ConfigError) the config needs more memory than the machine has.
        RunDirError: also when another training holds the run directory.
        TrainingInterrupted: Ctrl-C (a checkpoint was saved).

    >>> import tempfile
    >>> from vwm_agents import load_config, train
    >>> config = load_config(overrides=[
    ...     "task.max_items=1", "agent.n_neurons=8", "training.num_iterations=2",
    ...     "training.batch_size=4", "training.eval_batch_size=8", "training.threads=1",
    ...     "training.device=cpu", "logging.period=1", "logging.progress=false"])
    >>> run_dir = train(config, tempfile.mkdtemp())
    >>> sorted(path.name for path in run_dir.iterdir())
    ['checkpoints', 'config.yaml', 'history.jsonl', 'metrics.json', 'training_history.png']
    """
    cfg = config.training
    requested = resolve_device(cfg.device if device is None else device)
    with process_group(cfg.distributed_backend, requested, cfg.distributed_timeout_s) as dist:
        if dist.active:
            _check_distributed(config, dist)
            if requested.type == "cuda":  # one GPU per process on each machine
                device = f"cuda:{dist.local_rank}"
        return _train(config, dist, out_dir, resume, device, callback, progress)


def _check_distributed(config: Config, dist: Distributed) -> None:
    """What a torchrun launch cannot do, said once (every rank raises, rank 0 reports)."""
    cfg = config.training
    if cfg.num_models > 1:
        raise ConfigError(
            f"training.num_models: {cfg.num_models} models side by side cannot be combined with "
            "torchrun (which trains one model on several processes); use 1, or run without "
            "torchrun"
        )
    if cfg.batch_size % dist.world_size:
        raise ConfigError(
            f"training.batch_size: {cfg.batch_size} does not divide among {dist.world_size} "
            f"processes (torchrun --nproc_per_node x --nnodes); use a multiple of "
            f"{dist.world_size}"
        )


def _train(
    config: Config,
    dist: Distributed,
    out_dir: str | Path | None,
    resume: bool,
    device: str | None,
    callback: Callable[[dict], None] | None,
    progress: bool | None,
) -> Path:
    run = resolve_run(config, out_dir=out_dir, device=device, progress=progress, resume=resume)
    ensemble = run.config.training.num_models > 1
    configs = (
        [member_config(run.config, index) for index in range(len(run.models))] if ensemble else []
    )
    members = [(run.run_dir.member(member.training.seed), member) for member in configs]
    trainer = None
    keep = (TrainingDiverged, TrainingInterrupted, TrainingRanksLost)
    with (
        run.run_dir.session(fresh=not resume, keep=keep)
        if dist.is_main  # rank 0 alone makes, locks and writes the directory
        else contextlib.nullcontext(),
        run_random_state(run, dist),
    ):
        payloads = _start(run, members, resume, dist)
        try:
            if ensemble:
                train_ensemble(run, members, payloads, callback=callback)
            else:
                trainer = Trainer.from_run(run, callback=callback, dist=dist)
                trainer.begin(payloads[0])
                trainer.run()
        except (MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            raise _out_of_memory(run, trainer, exc) from None
    return run.run_dir.path


def _start(run: ResolvedRun, members: list, resume: bool, dist: Distributed) -> list[dict | None]:
    """:meth:`RunDir.start` on rank 0 first: the other ranks wait for its verdict (a refusal is
    theirs too), then a resume reads the same ``latest.pt`` on every rank."""
    if not dist.active:
        return run.run_dir.start(run.config, members, resume=resume)
    refusal = None
    if dist.is_main:
        try:
            payloads = run.run_dir.start(run.config, members, resume=resume)
        except (RunDirError, CheckpointError) as exc:
            refusal = exc
    refusal = dist.broadcast(refusal)
    if refusal is not None:
        raise refusal
    if dist.is_main:
        return payloads
    return run.run_dir.start(run.config, members, resume=True) if resume else [None]


def _out_of_memory(
    run: ResolvedRun, trainer: Trainer | None, exc: BaseException
) -> TrainingOutOfMemory:
    iteration = trainer.iteration + 1 if trainer is not None else None
    where = f"in iteration {iteration}" if iteration is not None else "during training"
    latest = run.run_dir.checkpoint("latest")
    kept = (
        f"the last good checkpoint {latest} is kept (continue with --resume)"
        if latest.exists()
        else "no checkpoint was written yet"
    )
    first_line = " ".join(str(exc).split())[:160] or type(exc).__name__
    message = (
        f"{run.run_dir.path}: out of memory {where} ({first_line}); {kept}; lower "
        "training.batch_size, training.eval_batch_size or agent.n_neurons"
    )
    return TrainingOutOfMemory(message, run.run_dir.path, iteration or 0)

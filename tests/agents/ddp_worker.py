"""One rank of the torchrun tests (tests/agents/test_distributed.py); not a test module.

``python -m torch.distributed.run --standalone --nproc_per_node=2 ddp_worker.py MODE OUT KEY=VALUE...``
(``config=PATH`` among them: the config file the overrides apply to)

* ``gradient``: draw this rank's batch, backward, all-reduce; save the batch and the averaged
  gradients to ``OUT/rank<r>.pt``.
* ``train``: train through the CLI's library path (``vwm_agents.train``) with an audit hook on
  every rank but 0 that records each file it opens for writing, or makes, renames or removes;
  save the final parameters, the recorded writes and the gloo threads still running after
  the training returned to ``OUT/rank<r>.pt``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from vwm_agents import load_config
from vwm_agents.training.api import train
from vwm_agents.training.distributed import process_group
from vwm_agents.training.run import resolve_run
from vwm_agents.training.trainer import Trainer

WRITE_EVENTS = ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree")


def record_writes(writes: list[str], under: Path) -> None:
    """Record writes to files and folders under ``under`` (libraries' temporary files aside)."""
    prefix = str(under.resolve())

    def hook(event: str, args: tuple) -> None:
        if not args or not str(
            os.path.abspath(
                os.fsdecode(args[0]) if isinstance(args[0], (str, bytes, os.PathLike)) else ""
            )
        ).startswith(prefix):
            return
        if event == "open" and len(args) > 1 and isinstance(args[1], str):
            if any(flag in args[1] for flag in "wax+"):
                writes.append(f"open {args[0]} {args[1]}")
        elif event == "open" and len(args) > 2 and isinstance(args[2], int):
            if args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                writes.append(f"open {args[0]} flags={args[2]}")
        elif event in WRITE_EVENTS:
            writes.append(f"{event} {args[0]}")

    sys.addaudithook(hook)


def gloo_threads() -> list[str] | None:
    """The names of this process's threads that belong to gloo (None without /proc)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return None
    names = []
    for comm in tasks.glob("*/comm"):
        try:
            names.append(comm.read_text().strip())
        except OSError:  # a thread that ended while we looked
            continue
    return sorted(name for name in names if "gloo" in name)


def main() -> None:
    mode, out, overrides = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    files = [o.split("=", 1)[1] for o in overrides if o.startswith("config=")]
    overrides = [o for o in overrides if not o.startswith("config=")]
    config = load_config(files[0] if files else None, overrides)
    rank = int(os.environ["RANK"])
    if mode == "gradient":
        cfg = config.training
        with process_group(cfg.distributed_backend, torch.device("cpu"), 60) as dist:
            run = resolve_run(config)
            trainer = Trainer.from_run(run, dist=dist)
            drawn = trainer.draw()
            readout_from = trainer.readout_from(drawn.batch)
            loss, *_ = trainer.loss_step(*drawn.tensors, readout_from=readout_from)
            checks = torch.stack([loss.detach(), torch.ones(()), torch.ones(())])
            summed, _ = dist.reduce_step(trainer.loss_step.params, checks, False)
            result = {
                "tensors": drawn.tensors,
                "readout_from": readout_from,
                "loss": loss.item(),
                "summed_loss": summed[0],
                "grads": [p.grad.clone() for p in trainer.loss_step.params],
            }
    else:
        writes: list[str] = []
        if rank != 0:
            record_writes(writes, Path(config.logging.out_dir))
        captured = {}

        class Capture(Trainer):
            def wrap_up(self, interrupted: bool) -> None:
                super().wrap_up(interrupted)
                captured["params"] = [p.detach().clone() for p in self.model.parameters()]

        import vwm_agents.training.api as api

        api.Trainer = Capture
        train(config, resume=mode == "resume")
        result = {
            "params": captured["params"],
            "writes": list(writes),
            "gloo_threads": gloo_threads(),
        }
    out.mkdir(parents=True, exist_ok=True)
    torch.save(result, out / f"rank{rank}.pt")


if __name__ == "__main__":
    main()

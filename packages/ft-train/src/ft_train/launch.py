"""Several training processes on one machine or many, through torchrun (``ft train --nproc N``).

``launch`` starts ``torch.distributed.run`` with this module as each process's entry point; each
process runs ``run_training`` and the Trainer (through accelerate) joins them: gloo on CPUs, NCCL
on GPUs; DeepSpeed or FSDP configs pass through as ``train:`` keys (``deepspeed``, ``fsdp``,
``fsdp_config``), multi-node runs through the launcher's own flags (``launcher_args``).
``check_sharding`` and ``sharding_dropped`` say plainly what transformers and accelerate do with
a sharding request that cannot run: refuse it in a single process, run DDP on CPU processes.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def launch(config: str | Path, nproc: int, *, rerun: str = "auto", launcher_args: Sequence[str] = ()) -> int:
    """Run ``config`` in ``nproc`` processes per node; returns the launcher's exit code."""
    from ft_core import FtError

    if nproc < 1:
        raise FtError(f"--nproc must be at least 1, found {nproc}")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", *launcher_args,
               "-m", "ft_train.launch", str(config), "--rerun", rerun]
    return subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}).returncode


def check_sharding(args) -> None:
    """Refuse ``fsdp`` or ``deepspeed`` in a run that no launcher started: transformers' own errors
    ("Using fsdp only works in distributed training"; DeepSpeed's "environment variable RANK
    expected") name no way out, and DeepSpeed's comes after the model has loaded."""
    from transformers.training_args import ParallelMode

    from ft_core import FtError

    if getattr(args, "fsdp", None) and not (args.fsdp_config or {}).get("xla") \
            and args.parallel_mode != ParallelMode.DISTRIBUTED:
        raise FtError("train.fsdp shards a model across processes: start the run with `ft train CONFIG --nproc N` "
                      "(N processes, one per GPU), or remove train.fsdp")
    if getattr(args, "deepspeed", None) and "LOCAL_RANK" not in os.environ:
        raise FtError("train.deepspeed runs in processes a launcher starts: `ft train CONFIG --nproc N` "
                      "(N processes, one per GPU; --nproc 1 for one), or remove train.deepspeed")


def sharding_dropped(args, trainer) -> str | None:
    """The sharding ``args`` asked for that the trainer does not run (``fsdp``/``deepspeed``), or
    None: accelerate shards on GPUs and other accelerators only, and runs CPU processes as DDP."""
    if getattr(args, "fsdp", None) and not getattr(trainer, "is_fsdp_enabled", False):
        return "fsdp"
    if getattr(args, "deepspeed", None) and not getattr(trainer, "is_deepspeed_enabled", False):
        return "deepspeed"
    return None


def _show_logs(rank: int) -> None:
    """Rank 0 prints the ``ft: ...`` lines; the others only warnings."""
    handler = logging.StreamHandler(sys.stdout if rank == 0 else sys.stderr)
    handler.setFormatter(logging.Formatter("ft: %(message)s" if rank == 0 else f"ft[rank {rank}]: %(message)s"))
    for name in ("ft_data", "ft_models", "ft_train"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
        logger.propagate = False


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one process of a multi-process ft training run")
    parser.add_argument("config")
    parser.add_argument("--rerun", default="auto", choices=("auto", "resume", "restart"))
    args = parser.parse_args(argv)
    _show_logs(int(os.environ.get("RANK", "0")))
    from ft_core import FtError
    from ft_train import run_training

    try:
        run_training(args.config, rerun=args.rerun)
    except FtError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

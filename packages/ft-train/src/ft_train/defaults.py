"""Trainer defaults that depend on the machine, applied where the YAML says nothing."""

from __future__ import annotations

from typing import Any

BASE: dict[str, Any] = {"report_to": "none", "logging_steps": 5, "save_total_limit": 2}


def trainer_defaults(user_args: dict[str, Any]) -> dict[str, Any]:
    """Our defaults merged under the user's ``train:`` keys.

    TRL defaults bf16 and gradient checkpointing on; on a CPU bf16 fails and checkpointing
    only costs time, so both follow the hardware unless the user sets them.
    """
    import torch

    bf16_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    cuda = torch.cuda.is_available()
    # use_cpu where there is no GPU: it is also what lets torchrun's processes join over gloo
    args = {**BASE, "gradient_checkpointing": cuda, "dataloader_pin_memory": cuda, "use_cpu": not cuda, **user_args}
    if "bf16" not in user_args and not args.get("fp16"):
        args["bf16"] = bf16_ok
    if args.get("gradient_checkpointing"):
        args.setdefault("gradient_checkpointing_kwargs", {"use_reentrant": False})
    return args

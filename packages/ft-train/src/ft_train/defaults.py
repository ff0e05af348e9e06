"""Trainer defaults that depend on the machine, applied where the YAML says nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ft_train.memory import StepMemory, checkpointing_choice

BASE: dict[str, Any] = {"report_to": "none", "logging_steps": 5, "save_total_limit": 2}
log = logging.getLogger("ft_train")


def _gpu_bytes() -> int:
    import torch

    return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory


def trainer_defaults(user_args: dict[str, Any], estimate: Callable[[], StepMemory] | None = None,
                     gpu_bytes: Callable[[], int] = _gpu_bytes) -> dict[str, Any]:
    """Our defaults merged under the user's ``train:`` keys.

    TRL turns bf16 and gradient checkpointing on everywhere. On a CPU both are off: a bf16 model
    already computes in bf16 there without autocast (``bf16: true`` works too), and checkpointing
    only costs time. On a GPU checkpointing costs a third more compute per step (a 135M
    LoRA run on an H100 did ~2 steps/s with it), so it is on only when ``estimate`` (a step's
    memory without it) says the step would not fit. liger-kernel is used only where the user asks
    (``use_liger_kernel``), even where it is installed: under TRL 1.16 it brings its layer kernels
    only (TRL's own fused LM head already never holds the logits), and on an H100 they made ft's
    packed step 25-30% slower for 18% less memory. Every key the user sets wins.
    """
    import torch

    cuda = torch.cuda.is_available()
    # use_cpu where there is no GPU: it is also what lets torchrun's processes join over gloo
    args = {**BASE, "dataloader_pin_memory": cuda, "use_cpu": not cuda, **user_args}
    if "gradient_checkpointing" not in user_args:
        args["gradient_checkpointing"] = False
        if cuda and estimate is not None:
            args["gradient_checkpointing"], reason = checkpointing_choice(estimate(), gpu_bytes())
            log.info(reason)
    if "bf16" not in user_args and not args.get("fp16"):
        args["bf16"] = cuda and torch.cuda.is_bf16_supported()
    if args.get("gradient_checkpointing"):
        args.setdefault("gradient_checkpointing_kwargs", {"use_reentrant": False})
    return args

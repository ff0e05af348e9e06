"""A run's final weights (adapter or model folder), written atomically by the first process.

Under FSDP or DeepSpeed every process holds a shard, and ``Trainer.save_model`` gathers them
collectively: all processes must call it with the same folder (the first one writes). Under a
single process or DDP only the first process saves, and the others wait.

Example:
    >>> save_weights(trainer, tokenizer, weights_dir, card, is_main=True)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

from ft_core import atomic_dir

log = logging.getLogger("ft_train")


def sharded(trainer) -> bool:
    return bool(getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False))


def _broadcast(value: str | None) -> str:
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


def _write(trainer, tokenizer, folder: Path, card: str, initial_adapter: Path | None) -> None:
    if initial_adapter is not None:  # a plain LoRA (rank 2r) for the original base, not for PiSSA's residual weights
        trainer.model.save_pretrained(folder, path_initial_model_for_weight_conversion=str(initial_adapter))
    else:
        trainer.save_model(str(folder))
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text(card, encoding="utf-8")  # ours, over peft's empty template


def save_weights(trainer, tokenizer, weights: Path, card: str, *, is_main: bool,
                 initial_adapter: Path | None = None) -> None:
    """Write ``weights`` (replacing an earlier run's) from every process's call; see the module doc."""
    if not sharded(trainer):
        if is_main:
            with atomic_dir(weights, force=True, made_by="ft train") as tmp:
                _write(trainer, tokenizer, tmp, card, initial_adapter)
        return
    if not is_main:
        trainer.save_model(_broadcast(None))  # gathers this process's shard; the first process writes
        return
    if initial_adapter is not None:
        log.warning("the adapter is saved for PiSSA's residual base: its conversion to a plain LoRA does not "
                    "gather sharded weights (convert it with one process)")
    with atomic_dir(weights, force=True, made_by="ft train") as tmp:
        _broadcast(str(tmp))
        _write(trainer, tokenizer, tmp, card, None)

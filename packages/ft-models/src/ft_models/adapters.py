"""PEFT adapters: add a LoRA, load a saved one, count trainable parameters."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ft_core import FtError


def add_lora(model, *, r: int = 16, alpha: int = 32, dropout: float = 0.05,
             target_modules: str | Sequence[str] = "all-linear"):
    """Wrap ``model`` in a trainable LoRA adapter (peft); ``all-linear`` skips the LM head.

    Example:
        >>> peft_model = add_lora(model, r=8, alpha=16)  # doctest: +SKIP
    """
    from peft import LoraConfig, get_peft_model

    targets = target_modules if isinstance(target_modules, str) else list(target_modules)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def load_adapter(model, adapter_dir: str, *, trainable: bool = False):
    """Attach the adapter saved in ``adapter_dir`` to ``model``."""
    from peft import PeftModel

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise FtError(f"adapter folder {adapter_dir} has no adapter_config.json; pass the run's output_dir/adapter")
    return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total

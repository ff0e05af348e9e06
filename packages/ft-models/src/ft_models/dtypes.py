"""Choose a torch dtype from a user string."""

from __future__ import annotations

from ft_core import FtError, did_you_mean

_NAMES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def resolve_dtype(name: str = "auto"):
    """``auto`` gives bfloat16 on a CUDA device that supports it, else float32.

    Example:
        >>> str(resolve_dtype("bf16"))
        'torch.bfloat16'
    """
    import torch

    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in _NAMES:
        raise FtError(f"unknown dtype '{name}'{did_you_mean(name, [*_NAMES, 'auto'])}; use auto, float32, bfloat16 or float16")
    return getattr(torch, _NAMES[name])


def saved_dtype(config) -> str:
    """The dtype a checkpoint's config records (``bfloat16``, ``float16`` or ``float32``; float32 where
    it records none): what an export keeps, so a merge neither doubles a bf16 model nor rounds an
    fp32 one.

    Example:
        >>> from transformers import PretrainedConfig
        >>> saved_dtype(PretrainedConfig(dtype="bfloat16"))
        'bfloat16'
    """
    recorded = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    name = str(recorded).removeprefix("torch.") if recorded is not None else "float32"
    return name if name in ("bfloat16", "float16", "float32") else "float32"

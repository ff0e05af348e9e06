"""Which attention implementations work on this machine, and why not for the others."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class AttentionOption:
    name: str
    available: bool
    reason: str


def _flash_attention_2() -> AttentionOption:
    import torch

    name = "flash_attention_2"
    if importlib.util.find_spec("flash_attn") is None:
        return AttentionOption(name, False, "flash-attn is not installed (pip install ft-models[flash] on a CUDA machine)")
    if not torch.cuda.is_available():
        return AttentionOption(name, False, "no CUDA device")
    major, minor = torch.cuda.get_device_capability()
    if major < 8:
        return AttentionOption(name, False, f"CUDA compute capability {major}.{minor} < 8.0")
    return AttentionOption(name, True, f"flash-attn on compute capability {major}.{minor} (fp16/bf16 only)")


def _sdpa() -> AttentionOption:
    import torch

    ok = hasattr(torch.nn.functional, "scaled_dot_product_attention")
    reason = f"torch {torch.__version__} scaled_dot_product_attention" if ok else "torch has no scaled_dot_product_attention"
    return AttentionOption("sdpa", ok, reason)


def attention_report() -> list[AttentionOption]:
    """Each implementation in order of preference, with whether it works here and why.

    Example:
        >>> [o.name for o in attention_report()]
        ['flash_attention_2', 'sdpa', 'eager']
    """
    return [_flash_attention_2(), _sdpa(), AttentionOption("eager", True, "plain PyTorch, always available")]


def device_report() -> dict[str, str]:
    """torch version, the device training would use, and its name."""
    import torch

    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s))"
    else:
        device = f"cpu ({torch.get_num_threads()} threads)"
    return {"torch": torch.__version__, "device": device, "cuda build": str(torch.version.cuda or "none")}

"""Which attention implementations work on this machine, and why not for the others."""

from __future__ import annotations

from dataclasses import dataclass

from ft_core import FtError
from ft_models.patches import ATTENTION, choose_attention


@dataclass(frozen=True)
class AttentionOption:
    name: str
    available: bool
    reason: str


def attention_report() -> list[AttentionOption]:
    """Each implementation in order of preference, with whether it works here (on the device and
    in the dtype ``auto`` would pick) and why.

    Example:
        >>> [o.name for o in attention_report()]
        ['flash_attention_2', 'sdpa', 'eager']
    """
    import torch

    from ft_models.dtypes import resolve_dtype

    device = "cuda" if torch.cuda.is_available() else "cpu"
    options = []
    for name in ATTENTION:
        try:
            choose_attention(name, dtype=resolve_dtype("auto"), device=device)
            options.append(AttentionOption(name, True, f"works on {device}"))
        except FtError as e:
            options.append(AttentionOption(name, False, str(e).split(": ", 1)[1].rsplit("; use", 1)[0]))
    return options


def device_report() -> dict[str, str]:
    """torch version, the device training would use, and its name."""
    import torch

    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s))"
    else:
        device = f"cpu ({torch.get_num_threads()} threads)"
    return {"torch": torch.__version__, "device": device, "cuda build": str(torch.version.cuda or "none")}

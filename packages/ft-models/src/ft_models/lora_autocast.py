"""LoRA layers that leave their input's dtype to autocast.

PEFT keeps LoRA weights in fp32 beside a bf16 base and casts each LoRA layer's input to fp32
before the adapter branch. Under autocast (every bf16 GPU run) that cast is undone at once: the
branch's first linear casts its input back to bf16. A step pays for two copies per adapter in
the forward pass and two more in the backward, and the backward keeps a bf16 copy of the input
for each adapter where the input itself would do (q, k and v share one). Skipping the cast gives
the same numbers; PEFT's own 4-bit LoRA layer already skips it under autocast. Outside autocast
the cast stays: there an fp32 adapter needs an fp32 input.

Example:
    >>> from ft_models import add_lora
    >>> model = add_lora(model)  # add_lora and apply_adapter call it  # doctest: +SKIP
    >>> skip_input_casts_under_autocast(model)  # layers newly changed  # doctest: +SKIP
    0
"""

from __future__ import annotations

import types

import torch


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:  # a device autocast does not know (meta): no autocast there
        return False


def _cast_input_dtype(self, x, dtype: torch.dtype):
    """PEFT's ``LoraLayer._cast_input_dtype``, but a no-op where autocast will cast ``x`` anyway."""
    if x is None or x.dtype == dtype or _autocast_on(x.device.type):
        return x
    return x.to(dtype=dtype)


def skip_input_casts_under_autocast(model) -> int:
    """Make ``model``'s plain LoRA linear layers skip PEFT's input cast under autocast; returns how
    many layers it changed. Variants (DoRA) and quantized layers keep PEFT's own behaviour."""
    try:
        from peft.tuners.lora.layer import Linear
    except ImportError:  # no peft: no LoRA layers
        return 0
    count = 0
    for module in model.modules():
        if type(module) is not Linear or getattr(module, "lora_variant", None) or "_cast_input_dtype" in vars(module):
            continue
        if not hasattr(module, "_cast_input_dtype"):  # a PEFT without the hook: nothing to skip
            return count
        module._cast_input_dtype = types.MethodType(_cast_input_dtype, module)
        count += 1
    return count

"""LoRA in the base model's dtype, with fp32 weights kept for the optimizer.

PEFT keeps LoRA weights in fp32 beside a bf16 base (its ``autocast_adapter_dtype``, what every
trainer wants: bf16 would round small Adam updates away) and computes the adapter branch in fp32:
each of a step's ~200 LoRA layers casts its whole input to fp32, multiplies the output by the
scaling and casts it back. On a CPU those casts and multiplies were a quarter of a LoRA SFT step
on SmolLM2 in a profile. Here the branch runs in the input's dtype instead: only the small A and
B matrices are cast (scaling folded into B), gradients flow back through the casts to the fp32
weights, and the branch is added to the base output inside its second GEMM (``addmm``). The
result is what PEFT adds to a bf16 output anyway, up to bf16 rounding. Anything else (dropout,
DoRA and other variants, several adapters, merged or disabled adapters) runs PEFT's own forward.

Example:
    >>> patched = install(model)  # doctest: +SKIP
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F


def _plain_branch(module) -> tuple | None:
    """(A, B, scaling) of the one active vanilla adapter without dropout, or None."""
    if module.disable_adapters or module.merged or len(module.active_adapters) != 1:
        return None
    name = module.active_adapters[0]
    if name not in module.lora_A or name in getattr(module, "lora_variant", {}):
        return None
    if not isinstance(module.lora_dropout[name], torch.nn.Identity):
        return None
    return module.lora_A[name].weight, module.lora_B[name].weight, module.scaling[name]


def _forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    branch = _plain_branch(self) if not args and not kwargs else None
    if branch is None or x.dtype == branch[0].dtype:
        return self._ft_peft_forward(x, *args, **kwargs)
    a, b, scaling = branch
    result = self.base_layer(x)
    low = F.linear(x, a.to(x.dtype))
    # the add rides in B's GEMM (addmm): one pass less over the layer's output
    added = torch.addmm(result.reshape(-1, result.size(-1)), low.reshape(-1, low.size(-1)), (b * scaling).to(x.dtype).t())
    return added.view(result.shape)


def install(model) -> int:
    """Route ``model``'s PEFT LoRA linear layers through the input-dtype branch; returns how many."""
    from peft.tuners.lora.layer import Linear

    count = 0
    for module in model.modules():
        if type(module) is Linear and not hasattr(module, "_ft_peft_forward"):
            module._ft_peft_forward = module.forward
            module.forward = types.MethodType(_forward, module)
            count += 1
    return count

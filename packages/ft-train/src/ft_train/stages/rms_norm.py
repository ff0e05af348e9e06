"""Llama's RMSNorm with a hand-written backward, for frozen norms on the CPU.

A LoRA run keeps every norm frozen, yet autograd replays the norm's fp32 chain backwards op by
op (a copy for ``pow``'s derivative, a division for ``mean``'s, casts each way): about a dozen
passes over the activations for each of a step's 2 x layers + 1 norms. Here the backward is
the closed form ``dx = rstd * g - x * rstd^3 * mean(g * x)`` (``g`` the incoming gradient times
the weight, rounded to the input dtype as autograd rounds it), in fp32 like the original, in
five passes. The forward computes exactly what the module's own forward computes.

Only modules whose ``forward`` is Llama's RMSNorm code, byte for byte (Qwen2, Qwen3, Mistral,
Phi-3, SmolLM3, Granite, ... share it; Gemma's ``1 + weight`` and OLMo-2's order do not), and
only while their weight takes no gradient; anything else runs the module's own forward.

Example:
    >>> import torch
    >>> from transformers.models.llama.modeling_llama import LlamaRMSNorm
    >>> norm = LlamaRMSNorm(8).requires_grad_(False)
    >>> x = torch.randn(2, 8, requires_grad=True)
    >>> install(torch.nn.Sequential(norm))
    1
    >>> torch.allclose(norm(x), LlamaRMSNorm(8)(x))
    True
"""

from __future__ import annotations

import types

import torch


class _FrozenRMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        xf = x.float()
        rstd = xf.pow(2).mean(-1, keepdim=True).add_(eps).rsqrt_()
        ctx.save_for_backward(x, weight, rstd)
        return weight * (xf * rstd).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, rstd = ctx.saved_tensors
        # every operand in fp32 first: mixed-dtype elementwise ops take a slow path on the CPU
        g, xf = (grad_out * weight).to(x.dtype).float(), x.float()
        coef = torch.linalg.vecdot(g, xf).unsqueeze_(-1).mul_(rstd.pow(3)).div_(x.size(-1))
        return (g * rstd).sub_(xf * coef).to(x.dtype), None, None


def _llama_code():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    return LlamaRMSNorm.forward.__code__


def runs_llama_rms_norm(module) -> bool:
    """Whether ``module``'s forward is Llama's RMSNorm, byte for byte."""
    forward = getattr(type(module), "forward", None)
    code, llama = getattr(forward, "__code__", None), _llama_code()
    return (code is not None and code.co_code == llama.co_code and code.co_consts == llama.co_consts
            and code.co_names == llama.co_names and isinstance(getattr(module, "weight", None), torch.Tensor)
            and hasattr(module, "variance_epsilon"))


def _forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    if self.weight.requires_grad or not hidden_states.requires_grad:
        return self._ft_own_forward(hidden_states)
    return _FrozenRMSNorm.apply(hidden_states, self.weight, self.variance_epsilon)


def install(model) -> int:
    """Give ``model``'s Llama-style RMSNorm modules the hand-written backward; returns how many."""
    count = 0
    for module in model.modules():
        if runs_llama_rms_norm(module) and not hasattr(module, "_ft_own_forward"):
            module._ft_own_forward = module.forward
            module.forward = types.MethodType(_forward, module)
            count += 1
    return count

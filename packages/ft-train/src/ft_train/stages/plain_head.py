"""TRL 1.16 scores every token through its fused LM head (``fused_lm_head=True``), which on a CPU
runs a tiled Python fallback: 39% of a LoRA SFT step on SmolLM2 in a profile. On the CPU, hooks
turn such calls into the model's plain forward and compute the same fields (log-probs, entropy,
top-1) from the full logits, so TRL's loss and metrics code runs unchanged.

Example:
    >>> handles = install(model)  # doctest: +SKIP
"""

from __future__ import annotations

import torch


def fused_fields(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None):
    """What TRL's fused head returns (``FusedCausalLMOutput``) for next-token ``labels``."""
    from trl.trainer.utils import FusedCausalLMOutput

    target = labels[:, 1:]
    mask = target != -100
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    log_probs = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1).masked_fill(~mask, 0)
    with torch.no_grad():
        entropy = -(logp.exp() * logp).sum(-1).masked_fill(~mask, 0)
        is_top1 = (logp.argmax(-1) == target) & mask
        mean_logits = logits[:, :-1].float().mean(-1).masked_fill(~mask, 0)
        log_sum_sq_probs = torch.logsumexp(2 * logp, dim=-1).masked_fill(~mask, 0)
    count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs, entropy=entropy,
                               log_sum_sq_probs=log_sum_sq_probs, mean_logits=mean_logits, is_top1=is_top1,
                               label_mask=mask)


def install(model) -> list:
    """Serve ``model``'s fused-head calls from its plain forward; returns the hook handles. The
    output hook runs before any other (padding_free's unpacking expects the fused fields)."""
    state: dict = {}

    def before(module, args, kwargs):
        if args or not kwargs.get("fused_lm_head") or kwargs.get("labels") is None or "shift_labels" in kwargs:
            state.clear()
            return None
        kwargs = dict(kwargs)
        kwargs.pop("fused_lm_head")
        state.update(labels=kwargs.pop("labels"), count=kwargs.pop("num_items_in_batch", None))
        return args, kwargs

    def after(module, args, kwargs, output):
        if not state:
            return None
        labels, count = state.pop("labels"), state.pop("count")
        return fused_fields(output.logits, labels, count)

    return [model.register_forward_pre_hook(before, with_kwargs=True),
            model.register_forward_hook(after, with_kwargs=True, prepend=True)]

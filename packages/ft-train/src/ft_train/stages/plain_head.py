"""TRL 1.16 scores every token through its fused LM head (``fused_lm_head=True``), which on a CPU
runs a tiled Python fallback: 39% of a LoRA SFT step on SmolLM2 in a profile. On the CPU, hooks
turn such calls into the model's plain forward and compute the same fields (log-probs, entropy,
top-1) from the logits, so TRL's loss and metrics code runs unchanged.

Only the positions that predict a label are projected onto the vocabulary (``logits_to_keep``):
prompts, system turns and padding never reach the LM head or the softmax, which is where an
SFT or DPO step on a small model spends much of its time (49k-wide fp32 rows).

Example:
    >>> handles = install(model)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import sys

import torch


def label_positions(labels: torch.Tensor) -> torch.Tensor:
    """Columns whose next token is a label in any row: the logits the loss reads, for models
    that keep columns only.

    Example:
        >>> label_positions(torch.tensor([[-100, -100, 5, 6], [-100, 7, -100, -100]])).tolist()
        [0, 1, 2]
    """
    return (labels[:, 1:] != -100).any(0).nonzero().squeeze(-1)


def label_mask(labels: torch.Tensor) -> torch.Tensor:
    """``[batch, length]``: True where the next token is a label (never in the last column).

    Example:
        >>> label_mask(torch.tensor([[-100, -100, 5, 6]])).tolist()
        [[False, True, True, False]]
    """
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != -100
    return mask


def fused_fields(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None,
                 kept: torch.Tensor | None = None):
    """What TRL's fused head returns (``FusedCausalLMOutput``) for next-token ``labels``, in the
    full ``[batch, length - 1]`` layout. ``logits`` were computed for every position (``kept``
    None), for the columns ``kept`` (1-d, ``label_positions``), or only where ``kept`` (2-d,
    ``label_mask``) is True: then they come flat, ``[labels, vocab]``."""
    from trl.trainer.utils import FusedCausalLMOutput

    target = labels[:, 1:]
    mask = target != -100
    if kept is not None and kept.dim() == 2:
        rows = logits.float()  # one row per label, in the row-major order of ``mask``
    else:
        if kept is None:
            kept = torch.arange(target.size(1), device=target.device)
            logits = logits[:, : target.size(1)]
        rows = logits[mask[:, kept]].float()
    logp = torch.log_softmax(rows, dim=-1)
    wanted = target[mask]
    log_probs = logp.gather(-1, wanted.unsqueeze(-1)).squeeze(-1)

    def spread(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(mask.shape, dtype=values.dtype, device=values.device).masked_scatter(mask, values)

    with torch.no_grad():
        entropy = -(logp.exp() * logp).sum(-1)
        is_top1 = logp.argmax(-1) == wanted
        mean_logits = rows.mean(-1)
        log_sum_sq_probs = torch.logsumexp(2 * logp, dim=-1)
    count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    log_probs = spread(log_probs)
    return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs, entropy=spread(entropy),
                               log_sum_sq_probs=spread(log_sum_sq_probs), mean_logits=spread(mean_logits),
                               is_top1=spread(is_top1), label_mask=mask)


def keeping(model) -> str | None:
    """How the causal LM under ``model`` (PEFT wrappers included) limits its logits: ``mask``
    (any positions, per row: transformers' ``slice_logits_to_keep``), ``columns`` (the same
    columns in every row) or None (it computes them all)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return None
    code = sys.modules.get(type(base).__module__)
    return "mask" if getattr(code, "slice_logits_to_keep", None) is not None else "columns"


def install(model) -> list:
    """Serve ``model``'s fused-head calls from its plain forward; returns the hook handles. The
    output hook runs before any other (padding_free's unpacking expects the fused fields)."""
    state: dict = {}
    keep = keeping(model)

    def before(module, args, kwargs):
        if args or not kwargs.get("fused_lm_head") or kwargs.get("labels") is None or "shift_labels" in kwargs:
            state.clear()
            return None
        kwargs = dict(kwargs)
        kwargs.pop("fused_lm_head")
        labels = kwargs.pop("labels")
        state.update(labels=labels, count=kwargs.pop("num_items_in_batch", None), kept=None)
        if keep and "logits_to_keep" not in kwargs:
            kept = label_mask(labels) if keep == "mask" else label_positions(labels)
            state["kept"] = kwargs["logits_to_keep"] = kept
        return args, kwargs

    def after(module, args, kwargs, output):
        if not state:
            return None
        return fused_fields(output.logits, state.pop("labels"), state.pop("count"), state.pop("kept"))

    return [model.register_forward_pre_hook(before, with_kwargs=True),
            model.register_forward_hook(after, with_kwargs=True, prepend=True)]

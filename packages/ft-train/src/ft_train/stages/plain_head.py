"""TRL 1.16 scores every token through its fused LM head (``fused_lm_head=True``), which on a CPU
runs a tiled Python fallback: 39% of a LoRA SFT step on SmolLM2 in a profile. On the CPU, hooks
turn such calls into the model's plain forward and compute the same fields (log-probs, entropy,
top-1) from the logits, so TRL's loss and metrics code runs unchanged.

Only the positions that predict a label are projected onto the vocabulary: prompts, system turns
and padding never reach the LM head or the softmax, which is where an SFT or DPO step on a small
model spends much of its time (49k-wide fp32 rows). Where the head is a frozen plain linear layer
(LoRA and freeze runs), it is skipped in the forward and ``label_logprobs`` projects those
positions chunk by chunk with the gradient in the same pass, computing only the fields the
trainer asked TRL's head for; on every transformers 5.x (before 5.21 models slice hidden states
by columns only, and the labelled rows are picked after the forward). A trained or scaled head
projects the labelled positions (``logits_to_keep``) and the fields come from its logits.

Example:
    >>> handles = install(model)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import sys

import torch

from ft_train.kernels import FUSED_SOFTMAX
from ft_train.stages.label_logprobs import METRICS as ALL_FIELDS
from ft_train.stages.label_logprobs import label_logprobs


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


SCALED_LOGITS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")


def label_rows(values: torch.Tensor, mask: torch.Tensor, kept: torch.Tensor | None) -> torch.Tensor:
    """The rows of ``values`` (logits or hidden states from a forward that kept all positions,
    the columns ``kept`` or the positions ``kept``) at the labelled positions ``mask``
    (``[batch, length - 1]``), flat in row-major order."""
    if kept is not None and kept.dim() == 2:
        return values  # the model kept exactly those positions, in that order
    if kept is None:
        kept = torch.arange(mask.size(1), device=mask.device)
        values = values[:, : mask.size(1)]
    return values[mask[:, kept]]


def _plain_fields(logits: torch.Tensor, wanted: torch.Tensor, wanted_fields) -> dict:
    logp = torch.log_softmax(logits.float(), dim=-1)
    fields = {"log_probs": logp.gather(-1, wanted.unsqueeze(-1)).squeeze(-1)}
    with torch.no_grad():
        if "entropy" in wanted_fields:
            fields["entropy"] = -(logp.exp() * logp).sum(-1)
        if "is_top1" in wanted_fields:
            fields["is_top1"] = logp.argmax(-1) == wanted
        if "mean_logits" in wanted_fields:
            fields["mean_logits"] = logits.float().mean(-1)
        if "log_sum_sq_probs" in wanted_fields:
            fields["log_sum_sq_probs"] = torch.logsumexp(2 * logp, dim=-1)
    return fields


def fused_fields(values: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None,
                 kept: torch.Tensor | None = None, head=None, wanted_fields=ALL_FIELDS):
    """What TRL's fused head returns (``FusedCausalLMOutput``) for next-token ``labels``, in the
    full ``[batch, length - 1]`` layout; fields not in ``wanted_fields`` are None, as TRL leaves
    them. ``values`` are logits, or hidden states where ``head`` (the frozen linear head) is
    given; computed for every position (``kept`` None), for the columns ``kept`` (1-d,
    ``label_positions``) or only where ``kept`` (2-d, ``label_mask``) is True."""
    from trl.trainer.utils import FusedCausalLMOutput

    target = labels[:, 1:]
    mask = target != -100
    rows, wanted = label_rows(values, mask, kept), target[mask]
    if head is not None:
        fields = label_logprobs(rows, head.weight, wanted, wanted_fields, fused=getattr(head, FUSED_SOFTMAX, False))
    else:
        fields = _plain_fields(rows, wanted, wanted_fields)

    def spread(values: torch.Tensor | None) -> torch.Tensor | None:
        if values is None:
            return None
        return torch.zeros(mask.shape, dtype=values.dtype, device=values.device).masked_scatter(mask, values)

    count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    log_probs = spread(fields["log_probs"])
    return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs, label_mask=mask,
                               **{name: spread(fields.get(name)) for name in ALL_FIELDS})


def requested_fields(model) -> tuple[str, ...]:
    """The fields the trainer asked TRL's fused head for (``add_fused_lm_head(outputs=...)``,
    kept in the patched forward's closure); all of them where that cannot be read."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    function = getattr(base.forward, "__func__", None)
    try:
        asked = inspect.getclosurevars(function).nonlocals["outputs"]
    except (TypeError, KeyError, ValueError):
        return ALL_FIELDS
    return tuple(name for name in ALL_FIELDS if name in asked)


def frozen_linear_head(model):
    """The LM head where it is a plain linear layer without bias and the model applies nothing to
    the logits after it (scaling, soft-capping); else None. Whether its weight is frozen (what
    the bypass needs) is checked at each call: a run may unfreeze it after install."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if type(head) is not torch.nn.Linear or head.bias is not None:
        return None
    text = base.config.get_text_config()
    if any(getattr(text, name, None) not in (None, 1, 1.0) for name in SCALED_LOGITS):
        return None
    return head


class _HeadBypass:
    """Makes ``head`` return its input while ``state["bypass"]`` is set; ``remove()`` undoes it."""

    def __init__(self, head, state: dict):
        self.head, original = head, head.forward
        head.forward = lambda x: x if state.get("bypass") else original(x)

    def remove(self) -> None:
        self.head.__dict__.pop("forward", None)


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
    wanted_fields = requested_fields(model)
    head = frozen_linear_head(model) if keep else None
    bypass = [_HeadBypass(head, state)] if head is not None else []

    def before(module, args, kwargs):
        state.clear()
        if args or not kwargs.get("fused_lm_head") or kwargs.get("labels") is None or "shift_labels" in kwargs:
            return None
        kwargs = dict(kwargs)
        kwargs.pop("fused_lm_head")
        labels = kwargs.pop("labels")
        state.update(labels=labels, count=kwargs.pop("num_items_in_batch", None), kept=None)
        if "logits_to_keep" in kwargs:
            return args, kwargs
        state["bypass"] = head is not None and not head.weight.requires_grad
        # A bypassed head passes hidden states through: where the model cannot slice them by mask
        # (transformers before 5.21), all of them, which costs nothing (a view), and label_rows
        # picks the labelled ones. Logits are worth slicing by columns only where the head projects.
        if keep == "mask" or (keep == "columns" and not state["bypass"]):
            kept = label_mask(labels) if keep == "mask" else label_positions(labels)
            state["kept"] = kwargs["logits_to_keep"] = kept
        return args, kwargs

    def after(module, args, kwargs, output):
        if not state:
            return None
        fused = state.pop("bypass", False)
        return fused_fields(output.logits, state.pop("labels"), state.pop("count"), state.pop("kept"),
                            head if fused else None, wanted_fields)

    return bypass + [model.register_forward_pre_hook(before, with_kwargs=True),
                     model.register_forward_hook(after, with_kwargs=True, prepend=True)]

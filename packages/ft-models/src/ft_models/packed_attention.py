"""Attention for packed rows that computes each packed sequence on its own.

A packed row holds several examples with restarting ``position_ids``. transformers gives sdpa a
block-diagonal 4-d mask for it, and a masked sdpa computes (and, in training, differentiates) the
whole row x row score matrix: on a CPU that was a fifth of a LoRA SFT step on SmolLM2 (rows of
512 holding a few chats each). Here every sequence runs as its own causal sdpa call, so the work
is the sum of each sequence's own triangle. Flash-attention varlen does the same on CUDA; this is
for devices without it. Anything that is not a packed prefill (a KV cache, a padded batch, one
sequence per row) goes to transformers' sdpa unchanged.

Example:
    >>> from ft_models.packed_attention import NAME, register
    >>> register()  # then: model.set_attn_implementation(NAME)
    'ft_packed_sdpa'
"""

from __future__ import annotations

import torch

NAME = "ft_packed_sdpa"
_plans: dict = {}


def segments(position_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per row, the ``(start, end)`` of each sequence: one starts wherever a position does not
    follow the one before (the rule transformers uses for packed rows; padding, at position 0,
    becomes sequences of one token).

    Example:
        >>> segments(torch.tensor([[0, 1, 2, 0, 1, 0, 0]]))
        [[(0, 3), (3, 5), (5, 6), (6, 7)]]
    """
    key = (position_ids.data_ptr(), tuple(position_ids.shape), position_ids._version)
    if key in _plans:
        return _plans[key]
    starts = torch.ones_like(position_ids, dtype=torch.bool)
    starts[:, 1:] = position_ids[:, 1:] != position_ids[:, :-1] + 1
    plan = []
    for row in starts.tolist():
        begin = [i for i, s in enumerate(row) if s]
        plan.append(list(zip(begin, [*begin[1:], len(row)], strict=True)))
    _plans.clear()  # one plan lives at a time: every layer of one forward shares it
    _plans[key] = plan
    return plan


def packed_sdpa_forward(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                        position_ids: torch.Tensor | None = None, **kwargs):
    """transformers' attention interface: ``query`` ``[batch, heads, length, dim]``, ``key`` and
    ``value`` with the model's KV heads; returns ``([batch, length, heads, dim], None)``."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    length = query.shape[2]
    plan = None
    if position_ids is not None and position_ids.dim() == 2 and key.shape[2] == length \
            and position_ids.shape == (query.shape[0], length):
        plan = segments(position_ids)
    if plan is None or all(len(row) == 1 for row in plan):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      position_ids=position_ids, **kwargs)
    groups = query.shape[1] // key.shape[1]
    rows = [torch.cat([_sequence(query[b], key[b], value[b], s, e, lone, groups, dropout, scaling)
                       for s, e, lone in _runs(row)], dim=1) for b, row in enumerate(plan)]
    return torch.stack(rows).transpose(1, 2).contiguous(), None


def _runs(row: list[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """The row's sequences, with each run of one-token sequences (padding) joined into one piece."""
    runs: list[tuple[int, int, bool]] = []
    for start, end in row:
        lone = end - start == 1
        if lone and runs and runs[-1][2]:
            runs[-1] = (runs[-1][0], end, True)
        else:
            runs.append((start, end, lone))
    return runs


def _sequence(q, k, v, start: int, end: int, lone: bool, groups: int, dropout: float, scaling) -> torch.Tensor:
    """One sequence's causal attention, ``[heads, end - start, dim]``."""
    if lone:  # tokens that each attend only to themselves (padding, mostly): their values
        return v[:, start:end].repeat_interleave(groups, dim=0)
    return torch.nn.functional.scaled_dot_product_attention(
        q[None, :, start:end], k[None, :, start:end], v[None, :, start:end], dropout_p=dropout, scale=scaling,
        is_causal=True, enable_gqa=groups > 1)[0]


def register() -> str:
    """Make ``NAME`` an attention implementation transformers knows (idempotent); returns it.
    Its mask is sdpa's, for the batches it hands on to sdpa."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, packed_sdpa_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    return NAME

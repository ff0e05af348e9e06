"""Attention over packed rows on the CPU, one causal piece at a time, as batched GEMMs.

Packed rows reach sdpa as a block-causal 4-d mask, and PyTorch's CPU flash kernel then works on
the whole row: it computes every block the mask removes, runs at about 65 GFLOP/s, and its bf16
backward costs about as much for 64-token pieces as for 512-token rows (30-45 ms a layer for
4 x 512 tokens on a 2-core CPU), a third of a LoRA SFT step on SmolLM2. Here each piece of a row
runs alone, as eager attention would compute it: scores by one GEMM with the causal mask added
inside it (``baddbmm``), ``softmax``, then a GEMM with the values; the heads sharing a key/value
head are laid side by side, so keys and values are never repeated. The probabilities are kept
for the backward pass (five GEMM-shaped steps: dV, dP, dS, dQ, dK) when they are small beside
the layer's activations, and recomputed otherwise (long pieces).

The path is taken only where it computes what sdpa would: a boolean mask that is exactly
causal-within-pieces (checked, not assumed) with some row holding several pieces, queries as
long as keys, no dropout, softcap, sliding window, sinks or position bias, a CPU tensor.
Anything else goes to transformers' own sdpa function unchanged.

Example:
    >>> import torch
    >>> mask = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    >>> pieces_of(mask[None, None])
    [(0, 0, 2), (0, 2, 2)]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

NAME = "ft_cpu_packed"
_UNSUPPORTED = ("softcap", "sliding_window", "s_aux", "sinks", "position_bias")
KEEP_PROBS_RATIO = 8  # keep P while sum(n^2) <= this x tokens x head_dim (P at most 8x the queries' size)


@dataclass
class _Layout:
    """The pieces of one batch's mask, and what the layers of that forward pass share."""

    pieces: list[tuple[int, int, int]]
    squares: int  # sum of n^2 over the pieces
    biases: dict = field(default_factory=dict)

    def causal_bias(self, n: int, groups: int, dtype: torch.dtype) -> torch.Tensor:
        """``[groups * n, n]``: 0 on and below the diagonal of each group's block, -inf above."""
        key = (n, groups, dtype)
        if key not in self.biases:
            above = torch.ones(n, n, dtype=torch.bool).triu_(1)
            self.biases[key] = torch.zeros(n, n, dtype=dtype).masked_fill_(above, float("-inf")).repeat(groups, 1)
        return self.biases[key]


_last: tuple[torch.Tensor, _Layout | None] | None = None  # the mask last read (all layers share one)


def pieces_of(mask: torch.Tensor) -> list[tuple[int, int, int]] | None:
    """``(row, start, length)`` of each causal piece of a ``[batch, 1, L, L]`` boolean mask that
    is exactly causal within pieces and blind across them, or None for any other mask."""
    if mask.dtype != torch.bool or mask.dim() != 4 or mask.size(1) != 1 or mask.size(-1) != mask.size(-2):
        return None
    length = mask.size(-1)
    causal = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril_()
    pieces = []
    for row in range(mask.size(0)):
        grid = mask[row, 0]
        starts = torch.ones(length, dtype=torch.bool, device=mask.device)
        starts[1:] = ~grid.diagonal(-1)  # a piece starts where a token cannot see the one before it
        piece = starts.cumsum(0)
        if not torch.equal(grid, (piece[:, None] == piece[None, :]) & causal):
            return None
        bounds = starts.nonzero().squeeze(1).tolist() + [length]
        pieces += [(row, a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)]
    return pieces


def _cached_layout(mask: torch.Tensor) -> _Layout | None:
    """The layout of ``mask`` where some row holds several pieces (a row that is one piece runs
    faster in sdpa's own kernel), else None."""
    global _last
    if _last is None or _last[0] is not mask:
        pieces = pieces_of(mask)
        several = pieces is not None and len(pieces) > mask.size(0)
        _last = (mask, _Layout(pieces, sum(n * n for _, _, n in pieces)) if several else None)
    return _last[1]


def _piece(tensor: torch.Tensor, row: int, span: slice, kv_heads: int) -> torch.Tensor:
    """``tensor[row, :, span]`` as ``[kv_heads, heads_per_kv * n, D]`` (a group's heads side by side)."""
    piece = tensor[row, :, span]
    return piece.reshape(kv_heads, -1, piece.size(-1))


class _PieceAttention(torch.autograd.Function):
    """Causal attention of ``query [B, H, L, D]`` over ``key/value [B, KV, L, D]`` within each
    piece of ``layout``; returns ``[B, H, L, D]``."""

    @staticmethod
    def _probs(layout, q, k, scale):
        n = k.size(1)
        bias = layout.causal_bias(n, q.size(1) // n, q.dtype)
        return torch.softmax(torch.baddbmm(bias, q, k.transpose(1, 2), alpha=scale), -1)

    @staticmethod
    def forward(ctx, query, key, value, layout, scale):
        kv_heads = key.size(1)
        out = torch.empty_like(query)
        keep = layout.squares <= KEEP_PROBS_RATIO * query.size(0) * query.size(2) * query.size(3)
        kept = []
        for row, start, n in layout.pieces:
            span = slice(start, start + n)
            probs = _PieceAttention._probs(layout, _piece(query, row, span, kv_heads), key[row, :, span], scale)
            out[row, :, span] = torch.bmm(probs, value[row, :, span]).view(-1, n, query.size(-1))
            if keep:
                kept.append(probs)
        ctx.save_for_backward(query, key, value, out)
        ctx.layout, ctx.scale, ctx.kept = layout, scale, kept
        return out

    @staticmethod
    def backward(ctx, grad_out):
        query, key, value, out = ctx.saved_tensors
        kv_heads, heads, dim = key.size(1), query.size(1), query.size(-1)
        grad_q, grad_k, grad_v = torch.empty_like(query), torch.empty_like(key), torch.empty_like(value)
        delta = torch.linalg.vecdot(grad_out.float(), out.float()).to(query.dtype)  # rowsum(dO * O)
        for i, (row, start, n) in enumerate(ctx.layout.pieces):
            span = slice(start, start + n)
            q, g = _piece(query, row, span, kv_heads), _piece(grad_out, row, span, kv_heads)
            k, v = key[row, :, span], value[row, :, span]
            probs = ctx.kept[i] if ctx.kept else _PieceAttention._probs(ctx.layout, q, k, ctx.scale)
            grad_v[row, :, span] = torch.bmm(probs.transpose(1, 2), g)
            # dS = P * (dP - delta), dP = dO V^T: the subtraction inside the GEMM (fp32 there)
            grad_s = torch.baddbmm(_piece(delta[..., None], row, span, kv_heads).neg(), g, v.transpose(1, 2))
            grad_s.mul_(probs)
            grad_q[row, :, span] = torch.bmm(grad_s, k).mul_(ctx.scale).view(heads, n, dim)
            grad_k[row, :, span] = torch.bmm(grad_s.transpose(1, 2), q).mul_(ctx.scale)
        ctx.kept = None
        return grad_q, grad_k, grad_v, None, None


def _takes_fast_path(module, query, key, mask, dropout, kwargs) -> bool:
    return (query.device.type == "cpu" and mask is not None and query.size(2) == key.size(2)
            and query.size(1) % key.size(1) == 0 and not dropout and getattr(module, "is_causal", True)
            and kwargs.get("is_causal") is not False and all(kwargs.get(k) is None for k in _UNSUPPORTED)
            and not kwargs.get("output_attentions", False))


def attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                      scaling: float | None = None, **kwargs):
    """transformers' attention-function signature; returns ``([B, L, H, D], None)``."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    layout = _cached_layout(attention_mask) if _takes_fast_path(module, query, key, attention_mask, dropout,
                                                                kwargs) else None
    if layout is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scale = scaling if scaling is not None else query.size(-1) ** -0.5
    if torch.is_autocast_enabled("cpu"):  # as sdpa under autocast: fp32 weights hand over mixed dtypes
        dtype = torch.get_autocast_dtype("cpu")
        query, key, value = (t.to(dtype) for t in (query, key, value))
    out = _PieceAttention.apply(query, key, value, layout, scale)
    return out.transpose(1, 2).contiguous(), None


def install(model) -> bool:
    """Route ``model``'s sdpa attention through the per-piece path (masks built as for sdpa);
    returns whether it did. Models on another attention implementation are left alone."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    configs = [m.config for m in model.modules() if hasattr(getattr(m, "config", None), "_attn_implementation")]
    if not configs or any(c._attn_implementation != "sdpa" for c in configs):
        return False
    AttentionInterface.register(NAME, attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    for config in configs:
        config._attn_implementation = NAME
    return True

"""Attention over packed rows on the CPU, one causal piece at a time, with a GEMM backward.

Packed rows reach sdpa as a block-causal 4-d mask, and PyTorch's CPU flash kernel then works on
the whole row: it computes every block the mask removes, and its bf16 backward costs about as
much for 64-token pieces as for 512-token rows (30-45 ms a layer for 4 x 512 tokens on a 2-core
CPU), a third of a LoRA SFT step on SmolLM2. Here each piece of a row runs alone: the forward
through the same flash kernel with ``is_causal`` (it returns the log-sum-exp), the backward as
five batched GEMMs on the piece (softmax rebuilt from that log-sum-exp, GQA heads grouped so
keys and values are never repeated). Both passes touch only the pieces' own squares.

The path is taken only where it computes what sdpa would: a boolean mask that is exactly
causal-within-pieces (checked, not assumed), queries as long as keys, no dropout, softcap,
sliding window, sinks or position bias, a CPU tensor. Anything else, and every row without such
a mask, goes to transformers' own sdpa function unchanged.

Example:
    >>> import torch
    >>> mask = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    >>> pieces_of(mask[None, None])
    [(0, 0, 2), (0, 2, 2)]
"""

from __future__ import annotations

import torch

NAME = "ft_cpu_packed"
_UNSUPPORTED = ("softcap", "sliding_window", "s_aux", "sinks", "position_bias")
_last: tuple[torch.Tensor, list | None] | None = None  # the mask last read (all layers share one)


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


def _cached_pieces(mask: torch.Tensor):
    """The pieces of ``mask`` where some row holds several (a row that is one piece runs faster
    in sdpa's own kernel), else None."""
    global _last
    if _last is None or _last[0] is not mask:
        pieces = pieces_of(mask)
        _last = (mask, pieces if pieces is not None and len(pieces) > mask.size(0) else None)
    return _last[1]


class _PieceAttention(torch.autograd.Function):
    """Causal attention of ``query [B, H, L, D]`` over ``key/value [B, KV, L, D]`` within each
    piece; returns ``[B, H, L, D]``."""

    @staticmethod
    def forward(ctx, query, key, value, pieces, scale):
        groups = query.size(1) // key.size(1)
        out = torch.empty_like(query)
        lse = query.new_empty(query.shape[:3], dtype=torch.float32)
        for row, start, n in pieces:
            span = slice(start, start + n)
            k = key[row, :, span].repeat_interleave(groups, 0)[None]
            v = value[row, :, span].repeat_interleave(groups, 0)[None]
            o, logsumexp = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                query[row:row + 1, :, span], k, v, 0.0, True, scale=scale)[:2]
            out[row, :, span] = o[0]
            lse[row, :, span] = logsumexp[0]
        ctx.save_for_backward(query, key, value, out, lse)
        ctx.pieces, ctx.scale = pieces, scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        query, key, value, out, lse = ctx.saved_tensors
        heads, kv_heads, dim = query.size(1), key.size(1), query.size(-1)
        groups = heads // kv_heads
        grad_q, grad_k, grad_v = torch.empty_like(query), torch.empty_like(key), torch.empty_like(value)
        delta = torch.linalg.vecdot(grad_out.float(), out.float())  # [B, H, L]: rowsum(dO * O)
        for row, start, n in ctx.pieces:
            span = slice(start, start + n)
            rows = (kv_heads, groups * n, 1)
            # the heads sharing one key/value head side by side: [KV, groups * n, D]
            q = query[row, :, span].reshape(kv_heads, groups * n, dim)
            g = grad_out[row, :, span].reshape(kv_heads, groups * n, dim)
            k, v = key[row, :, span], value[row, :, span]
            # P = exp(S * scale - lse). The subtraction rides in the GEMM (fp32 inside, rounded once)
            # with lse's bf16-exact part c; the rest, a per-row factor r = exp(c - lse), scales the
            # [n, D] operands instead of the [n, n] probabilities.
            lse_rows = lse[row, :, span].reshape(rows)
            c = lse_rows.to(q.dtype)
            r = torch.exp(c.float() - lse_rows)
            probs = torch.baddbmm(c.neg(), q, k.transpose(1, 2), alpha=ctx.scale).exp_()
            probs.view(kv_heads, groups, n, n).tril_()
            grad_v[row, :, span] = torch.bmm(probs.transpose(1, 2), (g * r).to(g.dtype))
            # dS = P * (dP - delta), dP = dO V^T (the subtraction again inside the GEMM)
            grad_s = torch.baddbmm(delta[row, :, span].reshape(rows).neg().to(q.dtype), g,
                                   v.transpose(1, 2)).mul_(probs)
            grad_q[row, :, span] = torch.bmm(grad_s, k).mul_(r * ctx.scale).view(heads, n, dim)
            grad_k[row, :, span] = torch.bmm(grad_s.transpose(1, 2), (q * (r * ctx.scale)).to(q.dtype))
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

    pieces = _cached_pieces(attention_mask) if _takes_fast_path(module, query, key, attention_mask, dropout,
                                                                kwargs) else None
    if pieces is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scale = scaling if scaling is not None else query.size(-1) ** -0.5
    out = _PieceAttention.apply(query, key, value, pieces, scale)
    return out.transpose(1, 2).contiguous(), None


def install(model) -> bool:
    """Route ``model``'s sdpa attention through the per-piece path (masks built as for sdpa);
    returns whether it did. Models on another attention implementation are left alone."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    configs = [m.config for m in model.modules() if hasattr(getattr(m, "config", None), "_attn_implementation")]
    if not configs or any(c._attn_implementation != "sdpa" for c in configs):
        return False
    if not hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
        return False
    AttentionInterface.register(NAME, attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    for config in configs:
        config._attn_implementation = NAME
    return True

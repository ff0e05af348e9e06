"""The LM head's softmax over a chunk of bf16 logits in one kernel: per-label log-probs, the
metric fields TRL reads, and the gradient rows' left factor ``softmax - onehot`` written over the
logits in place.

``ft_train.stages.label_logprobs`` widens each chunk of logits to fp32 and makes about a dozen
passes over it (max, shift, exp, sum, log, divide, the entropy's product and sum, the cast back),
each over a ``[rows, vocab]`` buffer of tens of MB: about 0.25 s of a 4.6 s LoRA step on SmolLM2.
Here each row is read from the bf16 logits three times while it sits in the core's cache (its
maximum; the sums of ``e``, ``e * s`` and ``e^2`` for ``s = logit - max`` and ``e = exp(s)``; the
probabilities), and written once, as bf16, where the logits were. The exponential is a Cephes-style
polynomial (relative error about 2e-7, fp32's own rounding) so that it vectorizes: numba has no
vector ``exp`` without Intel's SVML. Sums are fp32 with the compiler free to reorder them, as
torch's vectorized sums are.

Example:
    >>> import torch
    >>> logits = torch.randn(3, 50).to(torch.bfloat16)
    >>> want = torch.log_softmax(logits.float(), -1)[torch.arange(3), torch.tensor([1, 2, 3])]
    >>> fields = softmax_rows(logits, torch.tensor([1, 2, 3]))
    >>> bool((fields["log_probs"] - want).abs().max() < 1e-5)
    True
"""

from __future__ import annotations

import numpy as np
import torch

from ft_train.kernels._numba import FAST, as_u16, exp_block, njit, prange, round_bits, use_torch_threads, widen

FIELDS = ("log_probs", "entropy", "is_top1", "mean_logits", "log_sum_sq_probs")
_BLOCK = 512  # a row is worked through in blocks that stay in the L1 cache


@njit(inline="always", fastmath=FAST, cache=True)
def _exp_shifted(block, top, bits, shifted, powers):  # pragma: no cover - compiled by numba
    """``exp(block - top)`` into ``bits`` (read as fp32), ``block - top`` left in ``shifted``."""
    count = block.size
    widen(block, bits)
    values = bits.view(np.float32)
    for j in range(count):
        shifted[j] = values[j] - top
    exp_block(shifted, bits, powers, count)


@njit(parallel=True, fastmath=FAST, cache=True)
def _softmax_rows(logits, targets, log_probs, entropy, is_top1, mean_logits, log_sum_sq):  # pragma: no cover
    rows, vocab = logits.shape
    for i in prange(rows):
        row = logits[i]
        bits = np.empty(_BLOCK, np.uint32)
        values = bits.view(np.float32)
        shifted = np.empty(_BLOCK, np.float32)
        powers = np.empty(_BLOCK, np.int32)
        top, total = np.float32(-np.inf), np.float32(0.0)
        for start in range(0, vocab, _BLOCK):
            count = min(_BLOCK, vocab - start)
            widen(row[start:start + count], bits)
            for j in range(count):
                top = max(top, values[j])
                total += values[j]
        z, zs, zz = np.float32(0.0), np.float32(0.0), np.float32(0.0)
        for start in range(0, vocab, _BLOCK):
            count = min(_BLOCK, vocab - start)
            _exp_shifted(row[start:start + count], top, bits, shifted, powers)
            for j in range(count):
                e = values[j]
                z += e
                zs += e * shifted[j]
                zz += e * e
        log_z = np.log(z)
        widen(row[targets[i]:targets[i] + 1], bits)
        target_logit = values[0]
        log_probs[i] = (target_logit - top) - log_z
        entropy[i] = log_z - zs / z
        is_top1[i] = target_logit == top
        mean_logits[i] = total / np.float32(vocab)
        log_sum_sq[i] = np.log(zz) - np.float32(2.0) * log_z
        inv_z = np.float32(1.0) / z
        for start in range(0, vocab, _BLOCK):
            count = min(_BLOCK, vocab - start)
            block = row[start:start + count]
            _exp_shifted(block, top, bits, shifted, powers)
            for j in range(count):
                values[j] = values[j] * inv_z
            if start <= targets[i] < start + count:
                values[targets[i] - start] -= np.float32(1.0)
            for j in range(count):
                block[j] = np.uint16(round_bits(bits[j]) >> np.uint32(16))


def softmax_rows(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """For bf16 ``logits`` ``[rows, vocab]`` (contiguous, CPU) and ``targets`` ``[rows]``: each row's
    ``log_probs`` of its target, ``entropy``, ``is_top1``, ``mean_logits`` and
    ``log_sum_sq_probs`` (fp32, bool); ``logits`` is overwritten with ``softmax - onehot`` in bf16."""
    rows = logits.size(0)
    fields = {name: torch.empty(rows, dtype=torch.bool if name == "is_top1" else torch.float32) for name in FIELDS}
    targets = targets.to(torch.int64).contiguous()
    if not bool(((targets >= 0) & (targets < logits.size(1))).all()):
        raise ValueError(f"a target is outside the vocabulary of {logits.size(1)}")
    use_torch_threads()
    _softmax_rows(as_u16(logits), targets.numpy(), *(fields[name].numpy() for name in FIELDS))
    return fields

"""Where each decoder layer lives when a GPU computes: on the GPU, in pinned host memory, or on
disk (read each pass), planned from two budgets.

The GPU holds the embeddings and head, ``slots`` buffers of the largest streamed layer (one
computing, the others receiving the next layers), and a reserve for the KV cache and
activations; what is left holds layers for good. Pinned host memory holds the next layers, then
every other layer streams from the split files.

Example:
    >>> t = plan_tiers(100, [10] * 8, device_budget=150, host_budget=50, slots=2, reserve=10)
    >>> t.summary()
    '2 layers on the GPU, 3 in pinned RAM, 3 from disk'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ft_core import FtError


@dataclass
class Tiers:
    device: set[int] = field(default_factory=set)
    pinned: set[int] = field(default_factory=set)
    disk: set[int] = field(default_factory=set)

    def summary(self) -> str:
        return f"{len(self.device)} layers on the GPU, {len(self.pinned)} in pinned RAM, {len(self.disk)} from disk"


def _size(n: float) -> str:
    from ft_stream.layerwise import format_size

    return format_size(n, up=True)


def plan_tiers(rest: int, sizes: list[int], *, device_budget: int, host_budget: int, slots: int,
               reserve: int = 0, streamed_sizes: list[int] | None = None) -> Tiers:
    """Layers ``0..n-1`` of ``sizes`` bytes (in memory) placed in order: the GPU first, then pinned
    RAM, then disk. ``streamed_sizes`` are the bytes a layer moves when it streams (its stored,
    maybe compressed, size; default ``sizes``). A GPU budget below its working set, or a host
    budget below its staging buffers, is refused with the smallest that works (rounded up)."""
    streamed_sizes = streamed_sizes or sizes
    largest = max(sizes)
    working = rest + slots * largest + reserve
    if sum(sizes) + rest + reserve <= device_budget:
        return Tiers(device=set(range(len(sizes))))
    if device_budget < working:
        raise FtError(f"GPU budget {_size(device_budget)} is too small: the smallest workable GPU budget is "
                      f"{_size(working)} (embeddings and head {_size(rest)} + {slots} layer buffers of "
                      f"{_size(largest)} + {_size(reserve)} for the KV cache and activations)")
    staging = slots * max(streamed_sizes)  # pinned buffers the disk reads land in
    if host_budget < staging:
        raise FtError(f"CPU budget {_size(host_budget)} is too small: the smallest workable CPU budget is "
                      f"{_size(staging)} ({slots} pinned staging buffers of {_size(max(streamed_sizes))})")
    tiers, used = Tiers(), working
    order = iter(range(len(sizes)))
    for i in order:
        if used + sizes[i] > device_budget:
            break
        tiers.device.add(i)
        used += sizes[i]
    else:
        return tiers
    host = staging
    for j in range(i, len(sizes)):
        if not tiers.disk and host + streamed_sizes[j] <= host_budget:
            tiers.pinned.add(j)
            host += streamed_sizes[j]
        else:
            tiers.disk.add(j)
    return tiers


def kv_cache_bytes(config, tokens: int, itemsize: int, batch: int = 1) -> int:
    """The KV cache of ``tokens`` tokens for every layer of ``config`` (a transformers config)."""
    layers = getattr(config, "num_hidden_layers", 0)
    heads = getattr(config, "num_key_value_heads", None) or getattr(config, "num_attention_heads", 1)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * layers * heads * head_dim * tokens * batch * itemsize


def activation_bytes(config, tokens: int, itemsize: int) -> int:
    """A prefill chunk's activations: hidden states and MLP width in flight, and fp32 logits."""
    hidden = config.hidden_size * tokens * itemsize * 4
    mlp = (getattr(config, "intermediate_size", None) or 4 * config.hidden_size) * tokens * itemsize * 3
    return hidden + mlp + config.vocab_size * tokens * 4


def reserve_bytes(config, context: int, chunk: int, itemsize: int) -> int:
    """What the GPU keeps free beside the weights: a KV cache of ``context`` tokens and the
    activations of a ``chunk``-token prefill, with a tenth more for the allocator."""
    return math.ceil(1.1 * (kv_cache_bytes(config, context, itemsize) + activation_bytes(config, chunk, itemsize)))

"""Time a streamed model the way the benchmarks do: prefill of a prompt, seconds per generated
token (greedy, KV cache) and the process's peak resident memory."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import torch


@dataclass
class BenchResult:
    prefill_s: float
    s_per_token: float
    new_tokens: int
    peak_rss_bytes: int
    tokens: list[int]

    def summary(self) -> str:
        return (f"prefill {self.prefill_s:.3f} s, {self.s_per_token:.3f} s/token over {self.new_tokens} tokens, "
                f"peak RSS {self.peak_rss_bytes / 1e9:.2f} GB")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


@torch.inference_mode()
def time_generation(model, input_ids: torch.Tensor, new_tokens: int = 20) -> BenchResult:
    """``model`` is anything with transformers' ``generate`` (a LayerwiseModel's ``.model`` or a
    plain model). Prefill is one forward over the prompt; per-token time is the rest of a greedy
    generation divided by its tokens after the first."""
    start = time.perf_counter()
    model(input_ids=input_ids, use_cache=False)
    prefill = time.perf_counter() - start
    kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
              "pad_token_id": getattr(model.config, "pad_token_id", None) or 0}
    first = time.perf_counter()
    model.generate(input_ids, max_new_tokens=1, min_new_tokens=1, do_sample=False, pad_token_id=kwargs["pad_token_id"])
    one = time.perf_counter() - first
    start = time.perf_counter()
    out = model.generate(input_ids, **kwargs)
    total = time.perf_counter() - start
    return BenchResult(prefill, (total - one) / max(1, new_tokens - 1), new_tokens, peak_rss_bytes(),
                       out[0, input_ids.shape[1]:].tolist())

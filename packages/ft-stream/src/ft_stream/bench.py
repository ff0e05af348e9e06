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
    """This process's own peak resident memory: ``VmHWM`` where Linux reports it. (``ru_maxrss``
    survives exec: a process started from a large one reports the parent's peak as its own.)"""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def reset_peak_rss() -> bool:
    """Start ``VmHWM`` again from the current resident memory (Linux 4.0+); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class _Clock:
    """A stopping criterion that never stops: it stamps the time each new token arrives."""

    def __init__(self):
        self.stamps: list[float] = []

    def __call__(self, input_ids, scores, **kwargs):
        _sync(input_ids.device)  # on a GPU, stamp when the token exists, not when it was queued
        self.stamps.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def time_generation(model, input_ids: torch.Tensor, new_tokens: int = 20, *, prefill: bool = True) -> BenchResult:
    """``model`` is anything with transformers' ``generate`` (a LayerwiseModel's ``.model`` or a
    plain model). Prefill is one forward over the prompt without cache; seconds per token are the
    time between the first and the last generated token divided by the tokens in between (one pass
    over the weights each, with the KV cache)."""
    from transformers import StoppingCriteriaList

    prefill_s = float("nan")
    if prefill:
        _sync(input_ids.device)
        start = time.perf_counter()
        model(input_ids=input_ids, use_cache=False)
        _sync(input_ids.device)
        prefill_s = time.perf_counter() - start
    clock = _Clock()
    out = model.generate(input_ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                         pad_token_id=getattr(model.config, "pad_token_id", None) or 0,
                         stopping_criteria=StoppingCriteriaList([clock]))
    per_token = (clock.stamps[-1] - clock.stamps[0]) / max(1, len(clock.stamps) - 1)
    return BenchResult(prefill_s, per_token, new_tokens, peak_rss_bytes(), out[0, input_ids.shape[1]:].tolist())

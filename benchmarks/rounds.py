"""Training benchmarks run each configuration as a whole process, several times, interleaved
(A B C, A B C, ...), so a slow minute of a shared machine lands on every side alike; each side
is reported as the median of its rounds with the spread (min..max). ``FT_BENCH_ROUNDS`` sets
the number of rounds (3 by default).

Example:
    >>> runs = [{"tokens_per_s": 3.0, "peak_rss_gb": 1.0, "tokens": 9, "seconds": 3.0},
    ...         {"tokens_per_s": 1.0, "peak_rss_gb": 2.0, "tokens": 9, "seconds": 9.0}]
    >>> summary(runs)["tokens_per_s"], summary(runs)["spread"]
    (2.0, (1.0, 3.0))
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable

ROUNDS = int(os.environ.get("FT_BENCH_ROUNDS", "3"))


def peak_rss_gb() -> float:
    """This process's own peak resident memory (``VmHWM``: unlike ``ru_maxrss``, it starts anew
    with each program, never inheriting a parent's high-water mark)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    raise RuntimeError("no VmHWM in /proc/self/status")


def summary(runs: list[dict]) -> dict:
    """The median run's figures, with every round's tokens/s kept and the spread."""
    speeds = [r["tokens_per_s"] for r in runs]
    assert len({r["tokens"] for r in runs}) == 1, "rounds trained different tokens"
    return {**runs[0], "tokens_per_s": statistics.median(speeds), "rounds": speeds,
            "spread": (min(speeds), max(speeds)), "peak_rss_gb": statistics.median(r["peak_rss_gb"] for r in runs),
            "seconds": statistics.median(r["seconds"] for r in runs)}


def interleaved(configs: dict[str, Callable[[], dict]], rounds: int = ROUNDS) -> dict[str, dict]:
    """Run every configuration once per round, in order, ``rounds`` times; the summary of each.
    (Each run is a fresh process that loads its model first: its own warm-up.)"""
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, run in configs.items():
            runs[name].append(run())
    return {name: summary(r) for name, r in runs.items()}


def describe(name: str, r: dict) -> str:
    low, high = r["spread"]
    return (f"{name} {r['tokens_per_s']:.0f} tokens/s ({low:.0f}..{high:.0f}), {r['peak_rss_gb']:.2f} GB, "
            f"loss {r['mean_loss']:.3f}, {r['tokens']:.0f} tokens")

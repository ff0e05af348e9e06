"""The shared benchmark harness: every benchmark reports a ratio against a baseline run side by
side in the same process, never an absolute time asserted in a test.

    .venv/bin/python -m pytest benchmarks --benchmark-json=benchmarks/results.json

Each benchmark uses the `compare` fixture: it times the candidate with pytest-benchmark, times the
baseline the same way (same rounds, same warm-up), and stores both medians and their ratio in the
benchmark's `extra_info`, which lands in the JSON report.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # helpers beside the benchmarks (synthetic_chats)
# The test suite turns the Rust tokenizer's threads off (the root conftest, for forking tests);
# benchmarks measure what users get, so every tool here, peers included, runs with the defaults.
if os.environ.get("TOKENIZERS_PARALLELISM") == "false":
    del os.environ["TOKENIZERS_PARALLELISM"]


def _median_seconds(fn: Callable[[], object], rounds: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.fixture
def compare(benchmark):
    """``compare(candidate, baseline, rounds=5, warmup=1) -> ratio`` (candidate / baseline time)."""

    def run(candidate: Callable[[], object], baseline: Callable[[], object], *, rounds: int = 5, warmup: int = 1,
            baseline_name: str = "baseline") -> float:
        base = _median_seconds(baseline, rounds, warmup)
        benchmark.pedantic(candidate, rounds=rounds, warmup_rounds=warmup, iterations=1)
        cand = statistics.median(benchmark.stats.stats.data)
        ratio = cand / base
        benchmark.extra_info.update({"baseline": baseline_name, "baseline_median_s": base,
                                     "candidate_median_s": cand, "ratio": ratio})
        print(f"\n{benchmark.name}: {cand:.4f}s vs {baseline_name} {base:.4f}s -> ratio {ratio:.2f}x")
        return ratio

    return run


def pytest_benchmark_update_machine_info(config, machine_info):
    """The device and the versions every figure depends on, in the JSON report's machine_info."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["torch", "transformers", "trl", "peft", "accelerate", "datasets", "ft-core", "ft-data", "ft-models",
             "ft-train", "ft-stream", "ft-serve", "ft-cli"]
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    machine_info["ft_versions"] = found
    try:
        import torch

        machine_info["ft_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else \
            f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    except ImportError:
        machine_info["ft_device"] = "cpu"

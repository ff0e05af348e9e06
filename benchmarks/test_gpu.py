"""The GPU cases of the benchmark run: on a CUDA machine, ``pytest benchmarks --benchmark-json=...``
runs them too (gpu/sft_gpu.py and gpu/stream_gpu.py, each in its own process) and records their
ratios and goals for ``python -m benchmarks.report``; a CPU-only run skips them, saying why.

The tokenizer folder comes from ``FT_GPU_TOKENIZER`` (default ``.gpu/tokenizer``, made by
gpu/prepare.sh): a GPU machine has no network and cannot carry the embedded GGUF.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TOKENIZER = Path(os.environ.get("FT_GPU_TOKENIZER", HERE.parent / ".gpu" / "tokenizer"))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


pytestmark = [pytest.mark.skipif(not _cuda(), reason="a GPU case: runs where CUDA is available"),
              pytest.mark.skipif(not TOKENIZER.is_dir(), reason=f"no tokenizer folder at {TOKENIZER} (gpu/prepare.sh)")]


def _run(script: str, *args: str, timeout: int = 600) -> None:
    done = subprocess.run([sys.executable, str(HERE / "gpu" / script), *args], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]


def test_gpu_lora_sft_vs_plain_trl(benchmark, tmp_path):
    _run("sft_gpu.py", "--tokenizer", str(TOKENIZER), "--out", str(tmp_path))
    report = json.loads((tmp_path / "gpu_sft.json").read_text())
    sys.path.insert(0, str(HERE / "gpu"))
    from sft_gpu import median_by_tool

    by_tool = median_by_tool(report["results"])  # one round by default; the median one with --rounds
    assert not report["failed"] and {"ft-packed", "trl-packed"} <= set(by_tool), report["failed"]
    assert len({r["tokens"] for r in by_tool.values()}) == 1  # the same work on every side
    ours = by_tool["ft-packed"]
    best = max((r for t, r in by_tool.items() if t.startswith("trl")), key=lambda r: r["tokens_per_s"])
    benchmark.extra_info.update({
        "device": ours["device"], "tokens": ours["tokens"], "ft_tokens_per_s": ours["tokens_per_s"],
        "trl_best": best["tool"], "trl_best_tokens_per_s": best["tokens_per_s"], "mfu": ours["mfu"],
        "ratios": {"speedup_vs_trl_best": ours["tokens_per_s"] / best["tokens_per_s"],
                   "gpu_memory_vs_trl_best": ours["peak_gpu_gb"] / best["peak_gpu_gb"]},
        "goals": {"speedup_vs_trl_best": ">= 2", "gpu_memory_vs_trl_best": "<= 1"}})
    benchmark.pedantic(lambda: ours["seconds"], rounds=1, iterations=1)


def test_gpu_stream_7b_vs_floors(benchmark, tmp_path):
    _run("stream_gpu.py", "--bench-only", "--out", str(tmp_path))
    report = json.loads((tmp_path / "stream_gpu.json").read_text())
    ratios = report["ratios"]
    benchmark.extra_info.update({"device": report["device"], "ratios": ratios,
                                 "goals": {"ft_pinned_bf16_vs_floor": "<= 1.2", "ft_pinned_int8_vs_floor": "<= 1.2"}})
    benchmark.pedantic(lambda: ratios, rounds=1, iterations=1)

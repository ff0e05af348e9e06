"""LoRA SFT on SmolLM2 (CPU): ft train against plain TRL SFTTrainer, each configuration in its
own process (sft_train_runner.py), one epoch over the same synthetic mixed-length chats.

Reported per pair: non-padding tokens trained (checked equal on both sides: the same work),
tokens/s of train_runtime, peak RSS, and the ratio ft / TRL in tokens/s. Baselines get every
advantage ft has here: fp32 on the CPU, no gradient checkpointing, the same batch, LoRA and cutoff.
LLaMA-Factory's trainer is not measured yet (its environment pins transformers <= 5.6).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_chats import write_chats

RUNNER = Path(__file__).with_name("sft_train_runner.py")
N_CHATS = 120


@pytest.fixture(scope="module")
def chats(tmp_path_factory):
    return write_chats(tmp_path_factory.mktemp("sft") / "chats.jsonl", N_CHATS)


def run(tool: str, chats: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, str(RUNNER), tool, str(chats), str(out / tool)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("packing", ["packed", "unpacked"])
def test_lora_sft_tokens_per_second_vs_plain_trl(benchmark, chats, tmp_path, packing):
    ours: dict = {}
    benchmark.pedantic(lambda: ours.update(run(f"ft-{packing}", chats, tmp_path)), rounds=1, iterations=1)
    peer = run(f"trl-{packing}", chats, tmp_path)
    assert ours["tokens"] == peer["tokens"], "not the same work"
    ratio = ours["tokens_per_s"] / peer["tokens_per_s"]
    benchmark.extra_info.update({"baseline": f"TRL SFTTrainer ({packing})", "ft": ours, "trl": peer, "speedup": ratio})
    print(f"\n{packing}: ft {ours['tokens_per_s']:.0f} tokens/s ({ours['peak_rss_gb']:.2f} GB), "
          f"TRL {peer['tokens_per_s']:.0f} tokens/s ({peer['peak_rss_gb']:.2f} GB) -> {ratio:.2f}x")

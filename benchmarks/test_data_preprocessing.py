"""ft-data against LLaMA-Factory 0.9.5: 20,000 synthetic multi-turn ShareGPT conversations turned
into packed SFT rows (cutoff 1024, packing without cross-contamination) with the SmolLM2 tokenizer.

The peer runs in its own venv (benchmarks/peers/setup_llamafactory.sh) and reports the seconds of
its own `get_dataset` call; ours is timed the same way: imports done, caches off, same worker count.
The reported ratio is peer seconds / ft-data seconds (above 1: ft-data is faster). Both run with
the libraries' default threading (benchmarks/conftest.py undoes the test suite's
TOKENIZERS_PARALLELISM=false): ft-data's one process then uses the Rust tokenizer's threads on
every core, LLaMA-Factory encodes text by text.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import pytest
from synthetic_chats import write_chats

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / ".peers" / "llamafactory" / "bin" / "python"
N_CHATS, CUTOFF, ROUNDS = 20_000, 1024, 3


@pytest.fixture(scope="module")
def chats(tmp_path_factory):
    return write_chats(tmp_path_factory.mktemp("chats") / "chats.jsonl", N_CHATS)


def run_peer(data: Path, model: str, num_proc: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".peers" / "stubs")}
    done = subprocess.run([str(PEER), str(ROOT / "benchmarks/peers/llamafactory_preprocess.py"), str(data), model,
                           "--cutoff", str(CUTOFF), "--num-proc", str(num_proc)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("num_proc", [1, 2])
def test_packed_sft_preprocessing_vs_llamafactory(benchmark, chats, num_proc):
    if not PEER.exists():
        pytest.skip("peer venv missing: run benchmarks/peers/setup_llamafactory.sh")
    import datasets  # noqa: F401  (imported before timing, as the peer's is)
    from transformers import AutoTokenizer

    from ft_data import build_dataset
    from ft_models import model_path

    model = model_path("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(model)

    def ours() -> dict:
        start = time.perf_counter()
        data = build_dataset(tokenizer, [(chats, "sharegpt")], stage="sft", cutoff_len=CUTOFF, packing=True,
                             cache=False, num_proc=num_proc if num_proc > 1 else None)
        seconds = time.perf_counter() - start
        rows = data.dataset
        return {"seconds": seconds, "rows": data.examples, "tokens": sum(len(ids) for ids in rows["input_ids"]),
                "trained_tokens": sum(sum(label != -100 for label in labels) for labels in rows["labels"])}

    runs: dict[str, list[dict]] = {"ft": [], "peer": []}

    def peer_round() -> None:  # before each round, untimed by pytest-benchmark: the peer, timed by itself
        runs["peer"].append(run_peer(chats, model, num_proc))

    # pytest-benchmark times ft-data's run; the peer's alternates with it; a warm-up round each
    benchmark.pedantic(lambda: runs["ft"].append(ours()), setup=peer_round, rounds=ROUNDS, warmup_rounds=1,
                       iterations=1)
    runs = {k: v[1:] for k, v in runs.items()}  # the warm-up round's
    ft, peer = (statistics.median(r["seconds"] for r in runs[k]) for k in ("ft", "peer"))
    work = {k: {key: runs[k][0][key] for key in ("rows", "tokens", "trained_tokens")} for k in runs}
    # the same work: LLaMA-Factory's chatml and SmolLM2's own template differ by a few tokens per turn
    assert abs(work["ft"]["trained_tokens"] / work["peer"]["trained_tokens"] - 1) < 0.05, work
    ratio = peer / ft
    benchmark.extra_info.update({"baseline": "LLaMA-Factory 0.9.5 get_dataset (neat_packing)", "num_proc": num_proc,
                                 "ft_seconds": ft, "peer_seconds": peer, "work": work, "rounds": runs,
                                 "ft_spread": [min(r["seconds"] for r in runs["ft"]), max(r["seconds"] for r in runs["ft"])],
                                 "peer_spread": [min(r["seconds"] for r in runs["peer"]),
                                                 max(r["seconds"] for r in runs["peer"])],
                                 "chats_per_s_ft": N_CHATS / ft, "chats_per_s_peer": N_CHATS / peer, "speedup": ratio})
    print(f"\nnum_proc={num_proc}: ft-data {ft:.2f}s ({N_CHATS / ft:.0f} chats/s), LLaMA-Factory {peer:.2f}s "
          f"({N_CHATS / peer:.0f} chats/s) -> {ratio:.2f}x; work {work}")

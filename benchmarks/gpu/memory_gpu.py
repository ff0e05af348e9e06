"""ft-train's memory estimate against the GPU's measured peak, at several batch sizes: the evidence
for recalibrating ``ft_train.memory`` (issue 10, "defaults from evidence").

    python3 benchmarks/gpu/memory_gpu.py --tokenizer .gpu/tokenizer --out $OUT

The SFT benchmark's model and chats (Qwen2-0.5B shape, random bf16 weights, LoRA r16, packed rows of
1024 tokens), 3 steps of ``ft train`` at each batch size with gradient checkpointing off, each in
its own process. For each: the peak of ``torch.cuda.max_memory_allocated`` and the estimate's
parts (weights, optimizer, activations, head). On 2026-11-28 (H200, batch 2/4/8/16) the peaks
were 4.61/7.87/14.55/27.92 GB against an estimate of 6.72/12.45/23.90/46.82 GB that counted full
logits (which TRL 1.16's fused LM head never holds); ft-train 0.12.0's estimate, recalibrated on
those peaks, says 4.60/8.05/14.68/27.95 GB. Writes ``memory_gpu.json``; ``--smoke`` runs a tiny
model on the CPU (no peaks: it checks the steps).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # synthetic_chats
sys.path.insert(0, str(HERE))  # sft_gpu

BATCHES = (2, 4, 8, 16)


def peak(batch: int, work: Path, chats: Path) -> dict | str:
    """One 3-step packed run at ``batch``, checkpointing off: the runner's result, or its stderr."""
    from sft_gpu import run_tool

    return run_tool("ft-packed", work, chats, max_steps=3, env={
        "FT_GPU_BATCH": str(batch), "FT_GPU_TRAIN": json.dumps({"gradient_checkpointing": False})})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    from sft_gpu import QWEN2_05B, SMOKE, build_model
    from synthetic_chats import write_chats
    from transformers import AutoConfig

    from ft_train import memory

    work = Path("/tmp/ft-gpu-memory")
    work.mkdir(parents=True, exist_ok=True)
    build_model(args.tokenizer, work / "model", SMOKE if args.smoke else QWEN2_05B)
    chats = write_chats(work / "chats.jsonl", 800)  # 160 packed rows: 3 steps of 16 need 48
    config = AutoConfig.from_pretrained(work / "model")
    rows, failed = [], {}
    args.out.mkdir(parents=True, exist_ok=True)
    for batch in map(int, args.batches.split(",")):
        result = peak(batch, work, chats)
        if isinstance(result, str):
            failed[batch] = result
            print(f"batch {batch}: failed\n{result}", flush=True)
            continue
        est = memory.from_config(config, tokens=batch * 1024, full=False)
        rows.append({"batch": batch, "tokens": batch * 1024, "peak_gb": result["peak_gpu_gb"],
                     "estimate_gb": est.total / 1e9, "weights_gb": est.weights / 1e9,
                     "optimizer_gb": est.optimizer / 1e9, "activations_gb": est.activations / 1e9,
                     "head_gb": est.head / 1e9,
                     "device": result["device"]})
        r = rows[-1]
        error = r["estimate_gb"] / r["peak_gb"] - 1 if r["peak_gb"] else 0.0
        print(f"batch {batch:3d} ({r['tokens']:6,} tokens): peak {r['peak_gb']:6.2f} GB, estimate {r['estimate_gb']:6.2f} "
              f"GB (weights {r['weights_gb']:.2f}, optimizer {r['optimizer_gb']:.2f}, activations "
              f"{r['activations_gb']:.2f}, head {r['head_gb']:.2f}, error {error:+.1%})",
              flush=True)
        (args.out / "memory_gpu.json").write_text(json.dumps({"rows": rows, "failed": failed}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

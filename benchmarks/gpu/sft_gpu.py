"""LoRA SFT on one GPU: ft train against plain TRL SFTTrainer, each configuration in its own
process, one epoch over the same 800 synthetic multi-turn chats, on a Qwen2-0.5B-shape model with
random bf16 weights (built from a config: no network, nothing large to carry).

    python3 benchmarks/gpu/sft_gpu.py --tokenizer .gpu/tokenizer --out $OUT

Prints a table (tokens/s of train_runtime, peak GPU memory, model FLOPs utilisation) and writes
``gpu_sft.json``. MFU counts 6 x parameters (tied: the embedding matrix once, as the LM head) x
tokens trained, over train_runtime, against the GPU's dense bf16 peak; a LoRA step does about
two thirds of that work (no weight gradients for the frozen base), so it is an upper-bound
convention, the same for every tool. Set up by benchmarks/gpu/prepare.sh (wheels, tokenizer).

Fairness between the processes: a discarded 2-step run goes first (the first process on a fresh
machine pays for loading the CUDA libraries); every run compiles Triton kernels into its own empty
cache; ``--rounds N`` runs every tool N times, reversing the order every other round, and compares
each tool's median round. The first step (warm-up: CUDA, cuBLAS, Triton JIT) is reported apart
from the steady rate after it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # synthetic_chats

QWEN2_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                 num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
                 tie_word_embeddings=True)
TOOLS = ("ft-packed", "trl-packed", "ft-unpacked", "trl-defaults")  # by default; more in sft_gpu_runner.py
# TRL's best setting uses liger-kernel (66-77% faster than trl-packed on an H100, 2026-11-27): run
# it wherever check_all.sh installed the carried wheel
LIGER_SITE = Path(os.environ.get("LIGER_SITE", "/tmp/liger"))
PEAK_BF16 = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


SMOKE = dict(QWEN2_05B, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2)  # --smoke: every step on a CPU in seconds


def build_model(tokenizer: Path, out: Path, shape: dict = QWEN2_05B) -> int:
    """A random Qwen2-0.5B-shape model saved with the carried tokenizer; its parameter count."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    config = AutoConfig.for_model("qwen2", **shape, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                  pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return model.num_parameters()  # tied: the embedding is the LM head, counted once


def peak_flops(device: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in device), None)


def run_tool(tool: str, work: Path, chats: Path, max_steps: int | None = None,
             env: dict[str, str] | None = None) -> dict | str:
    """One configuration in its own process (``env``: more variables for sft_gpu_runner.py): its
    result, or the end of its stderr where it failed. Each run compiles its Triton kernels (TRL's
    log-prob head, liger's) into an empty cache: a shared one handed every later run the earlier
    runs' compiled kernels."""
    cache = work / f"triton-{tool}"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, **(env or {}), "TRITON_CACHE_DIR": str(cache)}
    if max_steps:
        env["FT_GPU_MAX_STEPS"] = str(max_steps)
    done = subprocess.run([sys.executable, str(HERE / "sft_gpu_runner.py"), tool, str(work / "model"), str(chats),
                           str(work / tool)], capture_output=True, text=True, env=env)
    if done.returncode:
        return done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_by_tool(results: list[dict]) -> dict[str, dict]:
    """Per tool, the round with the median tokens/s (the lower middle one for an even count)."""
    by: dict[str, list[dict]] = {}
    for r in results:
        by.setdefault(r["tool"], []).append(r)
    return {tool: sorted(rs, key=lambda r: r["tokens_per_s"])[(len(rs) - 1) // 2] for tool, rs in by.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--chats", type=int, default=800)
    liger = ("trl-packed-liger",) if LIGER_SITE.is_dir() else ()
    parser.add_argument("--tools", default=",".join(TOOLS + liger))
    parser.add_argument("--rounds", type=int, default=1, help="each tool this many times, the order reversed "
                        "every other round; the median round is compared")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the discarded 2-step run that first loads the CUDA libraries from disk")
    parser.add_argument("--smoke", action="store_true", help="a tiny model: checks the steps, measures nothing")
    args = parser.parse_args()
    from synthetic_chats import write_chats

    work = Path("/tmp/ft-gpu-bench")
    work.mkdir(parents=True, exist_ok=True)
    params = build_model(args.tokenizer, work / "model", SMOKE if args.smoke else QWEN2_05B)
    chats = write_chats(work / "chats.jsonl", args.chats)
    results, failed = [], {}
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every run: a run cut short keeps what it measured
        (args.out / "gpu_sft.json").write_text(json.dumps({"params": params, "results": results, "failed": failed},
                                                          indent=1))

    if args.warmup:
        # Whichever process ran first on a fresh H100 was slow (2026-11-27, two calls): first steps
        # of 5.2 and 8.4 s against 3.1 s later, and ft packed 24.6k tokens/s after its first step
        # when first against 36.1k when third. Likely the CUDA libraries' kernels loading from a
        # cold disk (not measured). A throwaway run takes that cost for everyone.
        run_tool("trl-packed", work, chats, max_steps=2)
    tools = args.tools.split(",")
    for round_ in range(args.rounds):
        for tool in tools if round_ % 2 == 0 else tools[::-1]:
            result = run_tool(tool, work, chats)
            if isinstance(result, str):
                print(f"{tool}: failed\n{result}", flush=True)
                failed[tool] = result
                save()
                continue
            for table in work.glob("profile_*.txt"):  # a +prof run's torch.profiler tables
                table.replace(args.out / table.name)
            peak = peak_flops(result["device"])
            result["mfu"] = 6 * params * result["tokens"] / result["seconds"] / peak if peak else None
            result["round"] = round_
            results.append(result)
            save()
            mfu = f"{result['mfu']:.1%}" if result["mfu"] is not None else "?"
            steady = (f"  first {result['warm_steps']} step(s) {result['first_step_s']:.1f} s, "
                      f"then {result['steady_tokens_per_s']:,.0f} tokens/s" if "first_step_s" in result else "")
            print(f"{tool:13s} {result['tokens']:>8,} tokens {result['tokens_per_s']:>9,.0f} tokens/s "
                  f"{result['peak_gpu_gb']:6.2f} GB  MFU {mfu}  loss {result['mean_loss']:.3f}{steady}", flush=True)
    compare(median_by_tool(results))


def compare(by: dict[str, dict]) -> None:
    """Each packed ft variant against TRL's best configuration, over the whole run and after the
    first step."""
    best_trl = max((r for r in by.values() if r["tool"].startswith("trl")), key=lambda r: r["tokens_per_s"],
                   default=None)
    if best_trl is None:
        return
    for tool, ours in by.items():
        if not tool.startswith("ft-packed"):
            continue
        steady = (f"; after the first step {ours['steady_tokens_per_s'] / best_trl['steady_tokens_per_s']:.2f}x"
                  if "steady_tokens_per_s" in ours and "steady_tokens_per_s" in best_trl else "")
        print(f"{tool} / TRL best ({best_trl['tool']}): {ours['tokens_per_s'] / best_trl['tokens_per_s']:.2f}x "
              f"tokens/s, {ours['peak_gpu_gb']:.2f} vs {best_trl['peak_gpu_gb']:.2f} GB{steady}")


if __name__ == "__main__":
    main()

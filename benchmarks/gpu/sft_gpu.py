"""LoRA SFT on one GPU: ft train against plain TRL SFTTrainer, each configuration in its own
process, one epoch over the same 800 synthetic multi-turn chats, on a Qwen2-0.5B-shape model with
random bf16 weights (built from a config: no network, nothing large to carry).

    python3 benchmarks/gpu/sft_gpu.py --tokenizer .gpu/tokenizer --out $OUT

Prints a table (tokens/s of train_runtime, peak GPU memory, model FLOPs utilisation) and writes
``gpu_sft.json``. MFU counts 6 x parameters (tied: the embedding matrix once, as the LM head) x
tokens trained, over train_runtime, against the GPU's dense bf16 peak; a LoRA step does about
two thirds of that work (no weight gradients for the frozen base), so it is an upper-bound
convention, the same for every tool. Set up by benchmarks/gpu/prepare.sh (wheels, tokenizer).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # synthetic_chats

QWEN2_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                 num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
                 tie_word_embeddings=True)
TOOLS = ("trl-defaults", "trl-unpacked", "trl-packed", "ft-unpacked", "ft-packed")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--chats", type=int, default=800)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--smoke", action="store_true", help="a tiny model: checks the steps, measures nothing")
    args = parser.parse_args()
    from synthetic_chats import write_chats

    work = Path("/tmp/ft-gpu-bench")
    work.mkdir(parents=True, exist_ok=True)
    params = build_model(args.tokenizer, work / "model", SMOKE if args.smoke else QWEN2_05B)
    chats = write_chats(work / "chats.jsonl", args.chats)
    results, failed = [], {}
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every tool: a run cut short keeps what it measured
        (args.out / "gpu_sft.json").write_text(json.dumps({"params": params, "results": results, "failed": failed},
                                                          indent=1))

    for tool in args.tools.split(","):
        done = subprocess.run([sys.executable, str(HERE / "sft_gpu_runner.py"), tool, str(work / "model"), str(chats),
                               str(work / tool)], capture_output=True, text=True)
        if done.returncode:
            print(f"{tool}: failed\n{done.stderr[-3000:]}", flush=True)
            failed[tool] = done.stderr[-3000:]
            save()
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        peak = peak_flops(result["device"])
        result["mfu"] = 6 * params * result["tokens"] / result["seconds"] / peak if peak else None
        results.append(result)
        save()
        mfu = f"{result['mfu']:.1%}" if result["mfu"] is not None else "?"
        steady = (f"  first step {result['first_step_s']:.1f} s, then {result['steady_tokens_per_s']:,.0f} tokens/s"
                  if "first_step_s" in result else "")
        print(f"{tool:13s} {result['tokens']:>8,} tokens {result['tokens_per_s']:>9,.0f} tokens/s "
              f"{result['peak_gpu_gb']:6.2f} GB  MFU {mfu}  loss {result['mean_loss']:.3f}{steady}", flush=True)
    by = {r["tool"]: r for r in results}
    best_trl = max((r for r in results if r["tool"].startswith("trl")), key=lambda r: r["tokens_per_s"], default=None)
    if best_trl and "ft-packed" in by:
        ratio = by["ft-packed"]["tokens_per_s"] / best_trl["tokens_per_s"]
        print(f"ft packed / TRL best ({best_trl['tool']}): {ratio:.2f}x tokens/s, "
              f"{by['ft-packed']['peak_gpu_gb']:.2f} vs {best_trl['peak_gpu_gb']:.2f} GB")
        if "steady_tokens_per_s" in by["ft-packed"] and "steady_tokens_per_s" in best_trl:
            steady = by["ft-packed"]["steady_tokens_per_s"] / best_trl["steady_tokens_per_s"]
            print(f"after the first step: {steady:.2f}x tokens/s")


if __name__ == "__main__":
    main()

"""ft-stream on one GPU, one command, one JSON file (``$OUT/stream_gpu.json``):

1. correctness: small random bf16 models of llama, qwen2, gemma2, mixtral and qwen2_moe, streamed
   with layers in all three tiers (GPU, pinned RAM, disk), against the same model wholly on the
   GPU: the largest logit difference (tolerance: 0.05, bf16 with the same kernels should give
   ~0) and 32 greedy tokens (eos off) equal;
2. the host link: pinned and pageable host-to-device copy bandwidth;
3. a Llama-2-7B-shape model (random bf16, 13.5 GB), 32-token prompt, greedy, KV cache: wholly on
   the GPU; accelerate's CPU offload (``device_map="auto"``, 4 GiB of GPU); ft-stream with a 4 GiB
   GPU budget and the other layers in pinned RAM, bf16 and int8; with a 2 GiB CPU budget and a
   cold page cache (its streamed files evicted before every token) against the cold read of
   those bytes; a 512-token prefill. Floors and ratios as in issue 11.

    bash benchmarks/gpu/stream_check.sh      # installs .gpu/wheels, runs this, writes $OUT

``--quick`` skips the 7B part (minutes of disk writes).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from stream_ours import evict, read_once  # noqa: E402

ARCHS = {
    "llama": dict(model_type="llama"),
    "qwen2": dict(model_type="qwen2"),
    "gemma2": dict(model_type="gemma2", head_dim=64, query_pre_attn_scalar=64, sliding_window=64),
    "mixtral": dict(model_type="mixtral", num_local_experts=4, num_experts_per_tok=2),
    "qwen2_moe": dict(model_type="qwen2_moe", num_experts=4, num_experts_per_tok=2, moe_intermediate_size=256,
                      shared_expert_intermediate_size=256),
}


DEVICE = "cuda"  # --device cpu: a smoke run of this script's steps on a CPU (the tiered path, synchronously)


def on_device(**kw) -> dict:
    """LayerwiseModel options for the compute device (on a CPU, its GPU path run synchronously)."""
    return dict(device=DEVICE, _tiered=DEVICE == "cpu", **kw)


def sync() -> None:
    if DEVICE != "cpu":
        torch.cuda.synchronize()


def peak_gb() -> float | None:
    return torch.cuda.max_memory_allocated() / 1e9 if DEVICE != "cpu" else None


def release() -> None:
    if DEVICE != "cpu":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def small_config(model_type: str, **extra):
    from transformers import AutoConfig

    base = dict(vocab_size=4096, hidden_size=512, intermediate_size=1024, num_hidden_layers=8,
                num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024, tie_word_embeddings=False)
    return AutoConfig.for_model(model_type, **{**base, **extra})


def stamp_tokens(model, ids, new_tokens: int):
    from ft_stream.bench import time_generation

    result = time_generation(model, ids, new_tokens)
    return {"prefill_s": result.prefill_s, "s_per_token": result.s_per_token, "tokens": result.tokens}


def correctness(work: Path) -> dict:
    from transformers import AutoModelForCausalLM

    from ft_stream import LayerwiseModel, split
    from ft_stream.tiers import reserve_bytes

    out = {}
    for name, spec in ARCHS.items():
        try:
            spec = dict(spec)
            torch.manual_seed(0)
            config = small_config(spec.pop("model_type"), **spec)
            folder = work / name
            AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(folder)
            split_dir = split(folder, work / f"{name}-split", progress=False)
            files = json.loads((split_dir / "manifest.json").read_text())["files"]
            layer, rest = max(f["bytes"] for f in files if f["kind"] == "layer"), files[-1]["bytes"]
            # 2 layers on the GPU beside 2 slots and the reserve; 3 pinned beside 2 staging buffers
            gpu_budget = rest + 4 * layer + reserve_bytes(config, 128, 16, 2) + layer // 2
            cpu_budget = 5 * layer + layer // 2
            plain = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).to(DEVICE).eval()
            ids = torch.randint(10, 4000, (1, 24), generator=torch.Generator().manual_seed(1)).to(DEVICE)
            # prefill_chunk 16: generate prefills the 24-token prompt in two chunks
            streamed = LayerwiseModel(split_dir, **on_device(context=128, prefill_chunk=16,
                                      gpu_budget=gpu_budget, cpu_budget=cpu_budget))
            three_tiers = all(streamed.tiers.__dict__.values())
            with torch.inference_mode():
                want = plain(input_ids=ids).logits.float()
            got = streamed.forward(ids).float()
            kw = dict(max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0)
            same = streamed.generate(ids, **kw).tolist() == plain.generate(ids, **kw).tolist()
            diff = float((got - want).abs().max())
            out[name] = {"tiers": streamed.tiers.summary(), "max_abs_logit_diff": diff, "tolerance": 0.05,
                         "greedy_32_equal": same, "ok": same and diff <= 0.05 and three_tiers}
            streamed.close()
            del plain
            release()
        except Exception as e:  # noqa: BLE001  (one architecture failing must not hide the others)
            out[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:500]}
    return out


def bandwidth() -> dict:
    n = 1 << 30
    result = {}
    for pinned in (True, False):
        host = torch.empty(n, dtype=torch.uint8, pin_memory=pinned)
        dev = torch.empty(n, dtype=torch.uint8, device="cuda")
        dev.copy_(host, non_blocking=pinned)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(3):
            dev.copy_(host, non_blocking=pinned)
        torch.cuda.synchronize()
        result["pinned_gb_s" if pinned else "pageable_gb_s"] = 3 * n / (time.perf_counter() - start) / 1e9
    return result


def cold_read(paths) -> float:
    evict(paths)
    return read_once(paths)


LLAMA_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=32)
SMOKE = dict(vocab_size=32000, hidden_size=256, intermediate_size=512, num_hidden_layers=8, num_attention_heads=4,
             num_key_value_heads=4)  # --device cpu: the same steps on a small model


def bench_7b(work: Path, new_tokens: int, progress, budgets=("4GiB", "2GiB"), prefill_len: int = 512,
             only: set[str] | None = None) -> dict:
    """``progress(rows)`` is called after each row, so a run cut short still leaves its figures."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from ft_stream import LayerwiseModel, split

    shape = LLAMA_7B if DEVICE != "cpu" else SMOKE
    config = AutoConfig.for_model("llama", **shape, max_position_embeddings=4096, tie_word_embeddings=False)
    gpu_budget, cold_budget = budgets
    folder = work / "llama-7b"
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
    ids = torch.randint(10, 32000, (1, 32), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    long_ids = torch.randint(10, 32000, (1, prefill_len), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    with torch.inference_mode():  # warm-up: cuBLAS handles and kernel choices for both shapes, untimed
        model.generate(ids, max_new_tokens=2, do_sample=False, pad_token_id=0)
        model(input_ids=long_ids, use_cache=False, logits_to_keep=1)
    rows: dict = {"whole_gpu": stamp_tokens(model, ids, new_tokens)}
    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        model(input_ids=long_ids, use_cache=False, logits_to_keep=1)
    sync()
    rows["whole_gpu"]["prefill_512_s"] = time.perf_counter() - start
    rows["whole_gpu"]["peak_gpu_gb"] = peak_gb()
    model.save_pretrained(folder, max_shard_size="4GB")
    del model
    release()
    progress(rows)
    reference = rows["whole_gpu"]["tokens"]
    plain_split = split(folder, work / "split-bf16", progress=False)
    int8_split = split(folder, work / "split-int8", compress="int8", progress=False) \
        if not only or "ft_pinned_int8" in only else None

    def ours(folder: Path, cpu_budget: str, cold: bool = False) -> dict:
        streamed = LayerwiseModel(folder, **on_device(gpu_budget=gpu_budget, cpu_budget=cpu_budget, context=1024))
        disk = [folder / streamed._layer_file[i] for i in sorted(streamed.tiers.disk)]
        streamed.forward(ids[:, :2])  # the first pass reads and checks the files
        row = {"tiers": streamed.tiers.summary(),
               "streamed_bytes": sum(streamed._bytes(streamed._layer_file[i]) for i in range(len(streamed.layers))
                                     if i not in streamed.tiers.device)}
        if cold:
            from transformers import StoppingCriteriaList

            class Evict:
                def __call__(self, input_ids, scores, **kwargs):
                    for future in streamed._pending.values():  # the next pass's first layer, already read
                        future.result()
                    evict(disk)
                    return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

            evict(disk)
            start = time.perf_counter()
            streamed.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                              stopping_criteria=StoppingCriteriaList([Evict()]))
            row["s_per_token"] = (time.perf_counter() - start) / 4
            row["cold_read_s"] = cold_read(disk)
            row["disk_bytes"] = sum(p.stat().st_size for p in disk)
        else:
            row.update(stamp_tokens(streamed.model, ids, new_tokens))
            row["same_tokens"] = row["tokens"] == reference
            sync()
            start = time.perf_counter()
            streamed.prefill(long_ids)
            sync()
            row["prefill_512_s"] = time.perf_counter() - start
        row["peak_gpu_gb"] = peak_gb()
        streamed.close()
        streamed = None  # its hooks hold it in a cycle: collect it, so the next row's peak starts from zero
        gc.collect()
        release()
        return row

    def offload() -> dict:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, device_map="auto",
                                                     max_memory={0: gpu_budget, "cpu": "120GiB"}).eval()
        row = stamp_tokens(model, ids, max(4, new_tokens // 4))
        row["same_tokens"] = row["tokens"] == reference[: len(row["tokens"])]
        return row

    runs = {"ft_pinned_bf16": lambda: ours(plain_split, "100GB"),
            "ft_pinned_int8": lambda: ours(int8_split, "100GB"),
            "ft_cold_2gib": lambda: ours(plain_split, cold_budget, cold=True)}
    if DEVICE != "cpu":
        runs["accelerate_offload"] = offload
    for name, run in runs.items():
        if only and name not in only:
            continue
        try:  # one row failing must not lose the others
            rows[name] = run()
        except Exception as e:  # noqa: BLE001
            rows[name] = {"error": f"{type(e).__name__}: {e}"[:800]}
        release()
        progress(rows)
    return rows


def ratios(rows: dict, pinned_bytes_s: float) -> dict:
    """Issue 11's ratios from the rows present (a failed row leaves its ratios out)."""
    out = {}
    ok = {name: row for name, row in rows.items() if "error" not in row}
    whole = ok["whole_gpu"]["s_per_token"]
    for name in ("ft_pinned_bf16", "ft_pinned_int8"):
        if name in ok:
            out[f"{name}_vs_floor"] = ok[name]["s_per_token"] / max(whole, ok[name]["streamed_bytes"] / pinned_bytes_s)
            if "accelerate_offload" in ok:
                out[f"accelerate_vs_{name}"] = ok["accelerate_offload"]["s_per_token"] / ok[name]["s_per_token"]
    if {"ft_pinned_bf16", "ft_pinned_int8"} <= ok.keys():
        out["int8_vs_bf16"] = ok["ft_pinned_int8"]["s_per_token"] / ok["ft_pinned_bf16"]["s_per_token"]
    if "ft_cold_2gib" in ok:
        out["cold_vs_cold_read"] = ok["ft_cold_2gib"]["s_per_token"] / ok["ft_cold_2gib"]["cold_read_s"]
    if "ft_pinned_bf16" in ok:
        transfer = ok["ft_pinned_bf16"]["streamed_bytes"] / pinned_bytes_s
        out["prefill_512_vs_floor"] = ok["ft_pinned_bf16"]["prefill_512_s"] / (ok["whole_gpu"]["prefill_512_s"] + transfer)
    return out


def main() -> None:
    global DEVICE
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/ft-stream-gpu"))
    parser.add_argument("--quick", action="store_true", help="correctness and bandwidth only")
    parser.add_argument("--bench-only", action="store_true", help="bandwidth and the 7B benchmark only")
    parser.add_argument("--rows", default="", help="the 7B rows to run beside whole_gpu (default: all), e.g. "
                        "ft_pinned_bf16,ft_pinned_int8,ft_cold_2gib,accelerate_offload")
    parser.add_argument("--new-tokens", type=int, default=12)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of every step on a small model")
    args = parser.parse_args()
    DEVICE = args.device
    assert DEVICE == "cpu" or torch.cuda.is_available(), "no CUDA device"
    from importlib.metadata import version

    import transformers

    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"device": torch.cuda.get_device_name(0) if DEVICE != "cpu" else "cpu",
                    "python": platform.python_version(),
                    "versions": {p: version(p) for p in ("torch", "transformers", "accelerate", "ft-stream")},
                    "transformers": transformers.__version__}
    t0 = time.perf_counter()

    def save() -> None:
        report["seconds"] = time.perf_counter() - t0
        (args.out / "stream_gpu.json").write_text(json.dumps(report, indent=1))

    report["correctness"] = correctness(args.work) if not args.bench_only else {}
    save()
    print(json.dumps(report, indent=1), flush=True)
    report["bandwidth"] = bandwidth() if DEVICE != "cpu" else {"pinned_gb_s": 10.0, "pageable_gb_s": 5.0}
    save()
    if not args.quick:
        def progress(rows: dict) -> None:
            report["llama_7b"] = rows
            report["ratios"] = ratios(rows, report["bandwidth"]["pinned_gb_s"] * 1e9)
            save()
            print(json.dumps({k: {m: v for m, v in row.items() if m != "tokens"} for k, row in rows.items()}), flush=True)

        budgets = ("4GiB", "2GiB") if DEVICE != "cpu" else ("125MB", "5MB")
        bench_7b(args.work, args.new_tokens, progress, budgets, prefill_len=512 if DEVICE != "cpu" else 64,
                 only=set(filter(None, args.rows.split(","))))
    save()
    print(json.dumps({k: report[k] for k in report if k != "llama_7b"}, indent=1))
    sys.exit(0 if all(r.get("ok") for r in report["correctness"].values()) else 1)


if __name__ == "__main__":
    main()

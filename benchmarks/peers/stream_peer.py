"""One layer-streaming peer's prefill and decode on a saved bf16 Llama, for the streaming benchmark.

    PYTHON stream_peer.py {airllm|rabbitllm|accelerate} MODEL_DIR --prompt-ids IDS_JSON \
        --new-tokens 20 --work-dir DIR [--threads 1] [--max-memory BYTES]

PYTHON is the peer's own venv (.peers/airllm, .peers/rabbitllm; accelerate runs in .venv), built by
setup_stream_peers.sh. Only the standard library and the peer's own libraries are used.

Measured, after all setup (the peer's split folder is written under --work-dir first):
  prefill_s      one forward over the prompt without cache (use_cache=False), under torch.no_grad()
  s_per_token    greedy decode with KV cache: (time of generate(N new tokens) - time of
                 generate(1 new token)) / (N - 1), both through the peer's own generate() with
                 do_sample=False, use_cache=True. Both calls pay the same prefill, so it cancels.
  peak_rss_bytes: the process's own VmHWM at the end. The one-off split
                 (which rabbitllm does by loading the whole checkpoint) runs in a child process, so
                 it is not part of this number; accelerate's from_pretrained is (it is its load).
  tokens         the N generated token ids.
The last line on stdout is one JSON object; the peers' own chatter goes to stderr where possible.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def has_tokenizer(model_dir: Path) -> bool:
    return any((model_dir / name).is_file() for name in TOKENIZER_FILES)


def no_tokenizer(cls):
    """AirLLM and RabbitLLM both call AutoTokenizer.from_pretrained(model_dir) in __init__ and fail
    on a weights-only folder. Neither uses the tokenizer for forward/generate on token ids, so on
    such a folder the runner makes get_tokenizer return None (workaround, nothing else changes)."""
    cls.get_tokenizer = lambda self, *args, **kwargs: None


def model_bytes(model_dir: Path) -> int:
    return sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))


# ---- building each peer, as shipped ------------------------------------------------------------


def build_airllm(model_dir: Path, work_dir: Path, args):
    from airllm import AutoModel
    from airllm.airllm_base import AirLLMBaseModel

    if not has_tokenizer(model_dir):
        no_tokenizer(AirLLMBaseModel)
    # Defaults except device: AirLLM's default is "cuda:0"; on this CPU machine it must be told
    # "cpu" (it does not fall back by itself). dtype stays its default: the checkpoint's (bf16).
    model = AutoModel.from_pretrained(str(model_dir), device="cpu", layer_shards_saving_path=str(work_dir / "airllm_split"))
    return model, model.model.generation_config, version("airllm")


def build_rabbitllm(model_dir: Path, work_dir: Path, args):
    from rabbitllm import RabbitLLMQWen2
    from rabbitllm.engine.base import RabbitLLMBaseModel

    if not has_tokenizer(model_dir):
        no_tokenizer(RabbitLLMBaseModel)
    split = work_dir / "rabbitllm_split"
    # check_space() calls shutil.disk_usage(layer_shards_saving_path) before creating it.
    split.mkdir(parents=True, exist_ok=True)
    # RabbitLLMQWen2, not rabbitllm.AutoModel: AutoModel maps LlamaForCausalLM to RabbitLLMLlama2,
    # whose get_pos_emb_args() returns {} and whose fallback (the model's rotary_emb) yields no
    # cos/sin, so the Llama decoder layer fails at `cos, sin = position_embeddings` (None).
    # RabbitLLMQWen2 differs only in computing default-RoPE (cos, sin) itself and forcing
    # head_dim = hidden_size // num_attention_heads (true for these Llamas): the layers it runs are
    # the checkpoint's own LlamaDecoderLayer modules. device="cpu" is what its "cuda:0" default
    # falls back to anyway; everything else is its default.
    model = RabbitLLMQWen2(str(model_dir), device="cpu", layer_shards_saving_path=str(split))
    return model, model.generation_config, version("rabbitllm")


def build_accelerate(model_dir: Path, work_dir: Path, args):
    import torch
    from transformers import AutoModelForCausalLM

    budget = args.max_memory or model_bytes(model_dir) // 4
    # Disk offload: only `budget` bytes of weights may sit in CPU memory; accelerate puts the rest
    # on "disk" (read back from the safetensors files / offload_folder, layer by layer, per forward).
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir),
        dtype=torch.bfloat16,
        device_map="auto",
        max_memory={"cpu": budget},
        offload_folder=str(work_dir / "accelerate_offload"),
    ).eval()
    placement = {}
    for device in getattr(model, "hf_device_map", {}).values():
        placement[str(device)] = placement.get(str(device), 0) + 1
    log(f"accelerate: cpu budget {budget} bytes; modules per device: {placement}")
    if "disk" not in placement:
        log("accelerate: WARNING nothing was offloaded to disk")
    return model, model.generation_config, version("accelerate")


BUILDERS = {"airllm": build_airllm, "rabbitllm": build_rabbitllm, "accelerate": build_accelerate}
SPLITTERS = {"airllm": "airllm_split", "rabbitllm": "rabbitllm_split"}


# ---- measuring -----------------------------------------------------------------------------------


def generated_ids(out, prompt_len: int) -> list[int]:
    sequences = getattr(out, "sequences", out)  # rabbitllm may return a GenerateOutput
    return [int(t) for t in sequences[0, prompt_len:]]


def peak_rss_bytes() -> int:
    """The process's own peak (VmHWM): ru_maxrss would carry the launching process's over exec."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tool", choices=sorted(BUILDERS))
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--prompt-ids", type=Path, required=True)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--max-memory",
        type=int,
        default=None,
        help="accelerate: CPU bytes for weights (default: a quarter of the model); the others ignore it",
    )
    parser.add_argument("--split-only", action="store_true", help="internal: only write the peer's split folder, then exit")
    args = parser.parse_args(argv)
    if args.new_tokens < 2:
        parser.error("--new-tokens must be at least 2")

    import torch

    torch.set_num_threads(args.threads)
    model_dir = args.model_dir.resolve()
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)

    if args.split_only:
        BUILDERS[args.tool](model_dir, work_dir, args)  # constructing the model writes the split
        return 0
    if args.tool in SPLITTERS:
        # Setup before timing, in a child process so its memory is not in this one's peak RSS.
        # The peers skip the split when all layer files are already there.
        argv = sys.argv[1:] if argv is None else list(argv)
        subprocess.run([sys.executable, os.path.abspath(__file__), *argv, "--split-only"], check=True, stdout=sys.stderr)

    # The peers print progress to stdout; keep stdout for the final JSON line only.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        model, generation_config, tool_version = BUILDERS[args.tool](model_dir, work_dir, args)
        # Greedy generation runs exactly N tokens: a random checkpoint may hit its eos id, which
        # would end generate() early and break the N-vs-1 difference, so eos stopping is switched
        # off (this changes no logits, hence no token, before the point where it would stop).
        generation_config.eos_token_id = None

        prompt = json.loads(args.prompt_ids.read_text())
        input_ids = torch.tensor([prompt], dtype=torch.long)
        n = args.new_tokens
        gen_kwargs = dict(do_sample=False, use_cache=True)

        # RabbitLLM 1.1.0's use_cache=False forward is broken on transformers 5.x: its prefill
        # branch does `new_seq = layer(seq, **kwargs)[0]` (engine/base.py, _run_decoder_layer),
        # written for decoder layers that returned a tuple; a transformers 5 LlamaDecoderLayer
        # returns the hidden-states tensor, so [0] drops the batch dim and the next layer fails
        # ("size of tensor a (8) must match ... (64)"). Its prefill is therefore timed through the
        # use_cache=True forward, the one its generate() runs (it also returns the prompt's KV).
        prefill_kwargs = dict(use_cache=False)
        if args.tool == "rabbitllm":
            prefill_kwargs = dict(use_cache=True, return_dict=True)

        with torch.no_grad():
            t0 = time.perf_counter()
            logits = model(input_ids=input_ids, **prefill_kwargs).logits
            prefill_s = time.perf_counter() - t0
            prefill_next = int(logits[0, -1].argmax())
            del logits

            t0 = time.perf_counter()
            one = model.generate(input_ids, max_new_tokens=1, **gen_kwargs)
            t_one = time.perf_counter() - t0

            t0 = time.perf_counter()
            many = model.generate(input_ids, max_new_tokens=n, **gen_kwargs)
            t_many = time.perf_counter() - t0

        tokens = generated_ids(many, len(prompt))
        first = generated_ids(one, len(prompt))
        if len(tokens) != n or first != tokens[:1]:
            raise RuntimeError(f"generate gave {len(tokens)} tokens {tokens}, 1-token run {first}")
        if prefill_next != tokens[0]:
            log(f"WARNING: prefill argmax {prefill_next} != first generated token {tokens[0]}")
    finally:
        sys.stdout = real_stdout

    result = {
        "tool": args.tool,
        "version": tool_version,
        "prefill_s": prefill_s,
        "s_per_token": (t_many - t_one) / (n - 1),
        "peak_rss_bytes": peak_rss_bytes(),
        "tokens": tokens,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

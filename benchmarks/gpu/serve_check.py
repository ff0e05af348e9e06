"""The GPU check of `ft chat`, `ft export`, `ft serve` and `ChatModel` (issue 12): each puts the
model on the device and gives the same greedy answer.

    python benchmarks/gpu/serve_check.py --tokenizer .gpu/tokenizer --out $OUT [--device cuda|cpu]

A small random Llama (float32, so merged and unmerged LoRA agree; wide initial weights, so the
greedy choice is never a near-tie that kernel order could flip) with the carried SmolLM2
tokenizer and a random LoRA adapter: `ChatModel` with the adapter on the device (one reply, a
batch of replies, a streamed reply) is the reference; `ft chat`, `ft serve` (plain and streamed
chat completions) and the model `ft export` merged must answer the same. ``--device cpu`` runs
every step here (no GPU needed). Writes ``serve_check.json`` to ``--out``; exit 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROMPT = "Name a fruit that is yellow."
TOKENS = 16


def build(tokenizer: Path, work: Path) -> tuple[Path, Path]:
    """A random Llama with the tokenizer, and a random LoRA adapter for it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    config = AutoConfig.for_model("llama", vocab_size=len(tok), hidden_size=128, intermediate_size=256,
                                  num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                  pad_token_id=tok.pad_token_id,
                                  # wide weights, wide logit margins: at the default 0.02 the top tokens were
                                  # near-ties that a padded batch's kernels flipped on an H100
                                  initializer_range=0.2)
    torch.manual_seed(0)
    base, adapter = work / "base", work / "adapter"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(base)
    tok.save_pretrained(base)
    lora = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    lora.save_pretrained(adapter)
    return base, adapter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def served_answers(base: Path, adapter: Path, device: str, devices: dict) -> dict:
    port = free_port()
    server = subprocess.Popen(["ft", "serve", str(base), "--adapter", str(adapter), "--device", device,
                               "--port", str(port), "--name", "m", "--dtype", "float32"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    root = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(root + "/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"ft serve exited:\n{server.stdout.read()[-3000:]}") from None
                time.sleep(0.5)
        body = {"model": "m", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": TOKENS, "temperature": 0}
        plain = json.loads(post(root + "/v1/chat/completions", body))["choices"][0]["message"]["content"]
        chunks = post(root + "/v1/chat/completions", {**body, "stream": True}).decode().splitlines()
        pieces = [json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                  for line in chunks if line.startswith("data: {")]
        return {"serve": plain, "serve_streamed": "".join(pieces)}
    finally:
        server.terminate()
        server.wait(timeout=30)
        said = server.stdout.read()  # "serving 'm' (cuda:0) on http://...": where its model computes
        devices["ft_serve"] = said.split("serving 'm' (", 1)[-1].split(")", 1)[0] if "serving 'm' (" in said else said[-300:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ft-serve-check"))
    args = parser.parse_args()
    from ft_models import ChatModel, GenerationOptions

    base, adapter = build(args.tokenizer, args.work)
    options = GenerationOptions(max_new_tokens=TOKENS)
    question = [{"role": "user", "content": PROMPT}]
    # float32 everywhere (auto would be bf16 on a GPU): merged and unmerged LoRA then agree to rounding
    chat = ChatModel.load(str(base), adapter=str(adapter), device=args.device, options=options, dtype="float32")
    reference = chat.reply(question)
    pieces: list[str] = []
    answers = {"chatmodel_batch": chat.replies([question, [{"role": "user", "content": "Hello."}]])[0],
               "chatmodel_streamed": (chat.reply(question, on_text=pieces.append), "".join(pieces))[1]}
    devices = {"chatmodel": str(chat.model.device)}
    del chat
    cli = subprocess.run(["ft", "chat", "-m", str(base), "-a", str(adapter), "-p", PROMPT, "--max-new-tokens",
                          str(TOKENS), "--device", args.device, "--dtype", "float32"],
                         capture_output=True, text=True, timeout=600)
    said = "\n".join(line for line in cli.stdout.splitlines() if not line.startswith("ft: "))  # ft's own notes
    answers["ft_chat"] = said.strip() if cli.returncode == 0 else f"failed: {cli.stderr[-500:]}"
    merged = args.work / "merged"
    export = subprocess.run(["ft", "export", str(adapter), "--base", str(base), "--out", str(merged), "--force",
                             "--device", args.device, "--dtype", "float32"], capture_output=True, text=True, timeout=600)
    if export.returncode == 0:
        exported = ChatModel.load(str(merged), device=args.device, options=options, dtype="float32")
        answers["ft_export"], devices["ft_export"] = exported.reply(question), str(exported.model.device)
        del exported
    else:
        answers["ft_export"] = f"failed: {export.stderr[-500:]}"
    answers.update(served_answers(base, adapter, args.device, devices))
    same = {name: answer.strip() == reference.strip() for name, answer in answers.items()}
    on_device = all(d.startswith(args.device) for d in devices.values())
    report = {"device": args.device, "reference": reference, "answers": answers, "same": same, "devices": devices,
              "on_device": on_device, "ok": all(same.values()) and on_device}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_check.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())

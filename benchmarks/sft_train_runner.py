"""One LoRA SFT configuration in its own process; prints one JSON line.

    python benchmarks/sft_train_runner.py TOOL CHATS.jsonl OUT_DIR [DTYPE]

TOOL: ``ft-packed``, ``ft-unpacked`` (ft train), ``trl-packed`` (TRL's padding-free packing),
``trl-unpacked`` (plain SFTTrainer). Every configuration trains one epoch over the same chats
(SmolLM2-135M-Instruct with DTYPE weights, bfloat16 by default: what LLaMA-Factory picks on a CPU
with bf16 support; the LoRA weights in fp32 and no autocast on every side; LoRA r16 all-linear,
batch 4, cutoff 512, lr 1e-4, no gradient checkpointing: the fastest setting on a CPU, given to
every tool). Reported: tokens trained (non-padding, from each trainer's own count), seconds of
``train_runtime``, tokens/s, the process's own peak RSS (VmHWM), mean logged loss. Every tool
trains on the assistant tokens only (each answer and its ``<|im_end|>``): TRL through
``assistant_only_loss`` and a copy of SmolLM2's template with ``{% generation %}`` tags that
renders the same text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from peer_envs import model_dir
from rounds import peak_rss_gb

CUTOFF, BATCH, RANK, LR = 512, 4, 16, 1e-4


def run_ft(chats: Path, out: Path, packing: bool, dtype: str) -> list[dict]:
    import yaml

    from ft_train import run_training
    from ft_train.metrics import read_metrics

    config = {"model": {"source": "smollm2-135m-instruct", "dtype": dtype},
              "data": {"train": [{"path": str(chats), "format": "sharegpt"}], "cutoff_len": CUTOFF, "packing": packing},
              "adapter": {"type": "lora", "r": RANK, "alpha": 2 * RANK, "dropout": 0.0},
              "train": {"output_dir": str(out), "num_train_epochs": 1, "per_device_train_batch_size": BATCH,
                        "learning_rate": LR, "logging_steps": 1, "save_strategy": "no", "seed": 0,
                        "gradient_checkpointing": False}}
    (out.parent / f"{out.name}.yaml").write_text(yaml.safe_dump(config))
    run_training(out.parent / f"{out.name}.yaml", rerun="restart")
    return read_metrics(out / "metrics.jsonl")


def chat_rows(chats: Path) -> list[dict]:
    """The ShareGPT chats as TRL's conversational rows (``messages``)."""
    roles = {"human": "user", "gpt": "assistant"}
    rows = []
    for line in chats.read_text().splitlines():
        row = json.loads(line)
        messages = ([{"role": "system", "content": row["system"]}] if row.get("system") else []) + \
            [{"role": roles[t["from"]], "content": t["value"]} for t in row["conversations"]]
        rows.append({"messages": messages})
    return rows


def keep_logs(records: list[dict]):
    """A callback that appends every log record to ``records``."""
    from transformers import TrainerCallback

    class Keep(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            records.append(dict(logs or {}))

    return Keep()


# SmolLM2-135M-Instruct's chat template, unchanged but for the generation tags TRL's assistant-only loss reads
TAGGED_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\\n' }}{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def run_trl(chats: Path, out: Path, packing: bool, dtype: str) -> list[dict]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = chat_rows(chats)
    path = model_dir()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    records: list[dict] = []
    args = SFTConfig(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=BATCH, learning_rate=LR,
                     logging_steps=1, save_strategy="no", seed=0, max_length=CUTOFF, packing=packing,
                     gradient_checkpointing=False, bf16=False, use_cpu=True, report_to="none",
                     assistant_only_loss=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    same = tokenizer.apply_chat_template(rows[0]["messages"], tokenize=False)
    tokenizer.chat_template = TAGGED_TEMPLATE
    assert tokenizer.apply_chat_template(rows[0]["messages"], tokenize=False) == same
    lora = LoraConfig(r=RANK, lora_alpha=2 * RANK, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, peft_config=lora,
                         callbacks=[keep_logs(records)])
    trainer.train()
    return records


def main() -> None:
    tool, chats, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    dtype = sys.argv[4] if len(sys.argv) > 4 else "bfloat16"
    packing = tool.endswith("-packed")
    records = (run_ft if tool.startswith("ft") else run_trl)(chats, out, packing, dtype)
    runtime = next(r["train_runtime"] for r in records if "train_runtime" in r)
    tokens = max(r.get("num_tokens", 0) for r in records)
    losses = [r["loss"] for r in records if "loss" in r]
    print(json.dumps({"tool": tool, "tokens": tokens, "seconds": runtime, "tokens_per_s": tokens / runtime,
                      "steps": len(losses), "mean_loss": sum(losses) / len(losses),
                      "peak_rss_gb": peak_rss_gb(), "dtype": dtype, "python": sys.executable}))


if __name__ == "__main__":
    main()

"""One LoRA SFT configuration in its own process; prints one JSON line.

    python benchmarks/sft_train_runner.py TOOL CHATS.jsonl OUT_DIR

TOOL: ``ft-packed``, ``ft-unpacked`` (ft train), ``trl-packed`` (TRL's padding-free packing),
``trl-unpacked`` (plain SFTTrainer). Every configuration trains one epoch over the same chats
(SmolLM2-135M-Instruct, fp32 on the CPU, LoRA r16 all-linear, batch 4, cutoff 512, lr 1e-4, no
gradient checkpointing: the fastest setting on a CPU, given to every tool). Reported: tokens
trained (non-padding, from each trainer's own count), seconds of ``train_runtime``, tokens/s,
peak RSS, mean logged loss. ft trains on the assistant tokens only; TRL on every token (its
assistant-only loss needs `{% generation %}` tags this template lacks), so losses differ by design.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

CUTOFF, BATCH, RANK, LR = 512, 4, 16, 1e-4


def run_ft(chats: Path, out: Path, packing: bool) -> list[dict]:
    import yaml

    from ft_train import run_training
    from ft_train.metrics import read_metrics

    config = {"model": {"source": "smollm2-135m-instruct", "dtype": "float32"},
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


def run_trl(chats: Path, out: Path, packing: bool) -> list[dict]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from ft_models import model_path

    rows = chat_rows(chats)
    path = model_path("smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    records: list[dict] = []
    args = SFTConfig(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=BATCH, learning_rate=LR,
                     logging_steps=1, save_strategy="no", seed=0, max_length=CUTOFF, packing=packing,
                     gradient_checkpointing=False, bf16=False, use_cpu=True, report_to="none")
    lora = LoraConfig(r=RANK, lora_alpha=2 * RANK, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=AutoTokenizer.from_pretrained(path), peft_config=lora,
                         callbacks=[keep_logs(records)])
    trainer.train()
    return records


def main() -> None:
    tool, chats, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    packing = tool.endswith("-packed")
    records = run_ft(chats, out, packing) if tool.startswith("ft") else run_trl(chats, out, packing)
    runtime = next(r["train_runtime"] for r in records if "train_runtime" in r)
    tokens = max(r.get("num_tokens", 0) for r in records)
    losses = [r["loss"] for r in records if "loss" in r]
    print(json.dumps({"tool": tool, "tokens": tokens, "seconds": runtime, "tokens_per_s": tokens / runtime,
                      "steps": len(losses), "mean_loss": sum(losses) / len(losses),
                      "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))


if __name__ == "__main__":
    main()

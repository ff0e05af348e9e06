"""One LoRA SFT configuration on the GPU in its own process; prints one JSON line.

    python benchmarks/gpu/sft_gpu_runner.py TOOL MODEL_DIR CHATS.jsonl OUT_DIR

TOOL: ``ft-packed``, ``ft-unpacked`` (ft train with its GPU defaults), ``trl-packed`` (TRL's
padding-free packing), ``trl-unpacked``, ``trl-defaults`` (SFTTrainer as it comes: gradient
checkpointing on, no packing). bf16, LoRA r16 all-linear, batch 8, cutoff 1024, lr 1e-4, one
epoch. Reported: tokens trained (each trainer's own non-padding count), train_runtime, tokens/s,
peak GPU memory (torch.cuda.max_memory_allocated) and mean loss; and the training time split,
from the Trainer's callback hooks, into the first step (CUDA and kernel warm-up land there) and
the rest, with tokens/s over the rest (``steady_tokens_per_s``, counting the steps as equal in
tokens: exact for packed rows, close for unpacked ones).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # sft_train_runner's helpers

CUTOFF, BATCH, RANK, LR = 1024, 8, 16, 1e-4


def run_ft(model: Path, chats: Path, out: Path, packing: bool) -> list[dict]:
    import yaml

    from ft_train import run_training
    from ft_train.metrics import read_metrics

    config = {"model": {"source": str(model), "dtype": "bfloat16"},
              "data": {"train": [{"path": str(chats), "format": "sharegpt"}], "cutoff_len": CUTOFF, "packing": packing},
              "adapter": {"type": "lora", "r": RANK, "alpha": 2 * RANK, "dropout": 0.0},
              "train": {"output_dir": str(out), "num_train_epochs": 1, "per_device_train_batch_size": BATCH,
                        "learning_rate": LR, "logging_steps": 5, "save_strategy": "no", "seed": 0}}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    run_training(path, rerun="restart")
    return read_metrics(out / "metrics.jsonl")


def run_trl(model: Path, chats: Path, out: Path, packing: bool, checkpointing: bool) -> list[dict]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from sft_train_runner import chat_rows, keep_logs
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = chat_rows(chats)
    records: list[dict] = []
    args = SFTConfig(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=BATCH, learning_rate=LR,
                     logging_steps=5, save_strategy="no", seed=0, max_length=CUTOFF, packing=packing,
                     gradient_checkpointing=checkpointing, bf16=torch.cuda.is_available(), report_to="none")
    lora = LoraConfig(r=RANK, lora_alpha=2 * RANK, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model, dtype="bfloat16"), args=args,
                         train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(model),
                         peft_config=lora, callbacks=[keep_logs(records)])
    trainer.train()
    return records


def time_steps() -> dict:
    """Note, after a device sync, when training begins, when its first step ends and when its last
    step ends (the Trainer's callback hooks, so saving and plotting after the loop stay out); the
    returned dict fills in as it trains."""
    import time

    import torch
    from transformers.trainer_callback import CallbackHandler

    marks: dict = {}
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    begin, step_end = CallbackHandler.on_train_begin, CallbackHandler.on_step_end

    def on_train_begin(self, args, state, control):
        sync()
        marks["begin"] = time.perf_counter()
        return begin(self, args, state, control)

    def on_step_end(self, args, state, control):
        if state.global_step in (1, state.max_steps):
            sync()
            marks["first" if state.global_step == 1 else "last"] = time.perf_counter()
            marks["steps"] = state.global_step
        return step_end(self, args, state, control)

    CallbackHandler.on_train_begin, CallbackHandler.on_step_end = on_train_begin, on_step_end
    return marks


def split_runtime(marks: dict, tokens: float) -> dict:
    """The first step's seconds against the rest's, and tokens/s over the rest."""
    if "last" not in marks or marks["steps"] < 2:
        return {}
    rest, steps = marks["last"] - marks["first"], marks["steps"]
    return {"steps": steps, "first_step_s": marks["first"] - marks["begin"], "rest_s": rest,
            "steady_tokens_per_s": tokens * (steps - 1) / steps / rest}


def main() -> None:
    import torch

    tool, model, chats, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    packing = tool.endswith("-packed")
    marks = time_steps()
    if tool.startswith("ft"):
        records = run_ft(model, chats, out, packing)
    else:
        records = run_trl(model, chats, out, packing, checkpointing=tool == "trl-defaults")
    runtime = next(r["train_runtime"] for r in records if "train_runtime" in r)
    tokens = max(r.get("num_tokens", 0) for r in records)
    losses = [r["loss"] for r in records if "loss" in r] or [r["train_loss"] for r in records if "train_loss" in r]
    print(json.dumps({"tool": tool, "tokens": tokens, "seconds": runtime, "tokens_per_s": tokens / runtime,
                      "mean_loss": sum(losses) / len(losses), **split_runtime(marks, tokens),
                      "peak_gpu_gb": torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else 0.0,
                      "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}))


if __name__ == "__main__":
    main()

"""One LoRA DPO configuration in its own process; prints one JSON line.

    python benchmarks/dpo_train_runner.py TOOL PAIRS.jsonl OUT_DIR [DTYPE]

TOOL: ``ft`` (ft train, stage dpo: padding-free forwards), ``ft-padded`` (ft train with
``padding_free: false``), ``trl`` (plain TRL DPOTrainer, defaults; TRL 1.16 switches its own
``padding_free`` off, so this is its best setting). Every configuration trains one epoch over the same
preference pairs (SmolLM2-135M-Instruct with DTYPE weights, bfloat16 by default as in the SFT
benchmark, fp32 LoRA weights, no autocast, LoRA r16 all-linear, the reference
model being the base with the adapter disabled, batch 4, cutoff 1024, beta 0.1, lr 5e-5, no
gradient checkpointing). Reported: pairs and non-padding tokens (prompt + chosen and prompt +
rejected, counted from each trainer's own tokenized rows), seconds of ``train_runtime``,
tokens/s, the process's own peak RSS (VmHWM), mean loss and the final reward accuracy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from peer_envs import model_dir
from rounds import peak_rss_gb

CUTOFF, BATCH, RANK, LR, BETA = 1024, 4, 16, 5e-5, 0.1  # no pair reaches the cutoff: no truncation on either side
MODEL = "smollm2-135m-instruct"


def run_ft(pairs: Path, out: Path, padding_free: bool, dtype: str) -> tuple[list[dict], int, int]:
    import yaml

    from ft_train import run_training
    from ft_train.metrics import read_metrics

    config = {"model": {"source": MODEL, "dtype": dtype},
              "data": {"train": [str(pairs)], "cutoff_len": CUTOFF},
              "adapter": {"type": "lora", "r": RANK, "alpha": 2 * RANK, "dropout": 0.0},
              "train": {"stage": "dpo", "output_dir": str(out), "num_train_epochs": 1,
                        "per_device_train_batch_size": BATCH, "learning_rate": LR, "beta": BETA, "logging_steps": 1,
                        "save_strategy": "no", "seed": 0, "gradient_checkpointing": False,
                        "padding_free": padding_free}}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    run_training(path, rerun="restart")
    from ft_data import build_dataset
    from ft_models import load_tokenizer

    rows = build_dataset(load_tokenizer(MODEL), [str(pairs)], stage="dpo", cutoff_len=CUTOFF).dataset  # cached
    return read_metrics(out / "metrics.jsonl"), len(rows), _tokens(rows, "prompt_input_ids", "chosen_input_ids",
                                                                   "rejected_input_ids")


def _tokens(rows, prompt: str, chosen: str, rejected: str) -> int:
    return sum(2 * len(p) + len(c) + len(r) for p, c, r in zip(rows[prompt], rows[chosen], rows[rejected], strict=True))


def run_trl(pairs: Path, out: Path, dtype: str) -> tuple[list[dict], int, int]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    path = model_dir()
    records: list[dict] = []

    class Keep(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            records.append(dict(logs or {}))

    args = DPOConfig(output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=BATCH, learning_rate=LR,
                     beta=BETA, logging_steps=1, save_strategy="no", seed=0, max_length=CUTOFF,
                     gradient_checkpointing=False, bf16=False, use_cpu=True, report_to="none")
    lora = LoraConfig(r=RANK, lora_alpha=2 * RANK, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(path, dtype=dtype), args=args,
                         train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(path),
                         peft_config=lora, callbacks=[Keep()])
    trainer.train()
    data = trainer.train_dataset  # TRL 1.16 keeps prompt_ids and the completions' ids apart
    tokens = _tokens(data, "prompt_ids", "chosen_ids", "rejected_ids")
    return records, len(data), tokens


def main() -> None:
    tool, pairs, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    dtype = sys.argv[4] if len(sys.argv) > 4 else "bfloat16"
    records, n_pairs, tokens = run_trl(pairs, out, dtype) if tool == "trl" else run_ft(pairs, out, tool == "ft", dtype)
    runtime = next(r["train_runtime"] for r in records if "train_runtime" in r)
    losses = [r["loss"] for r in records if "loss" in r]
    accuracy = [r["rewards/accuracies"] for r in records if "rewards/accuracies" in r]
    print(json.dumps({"tool": tool, "pairs": n_pairs, "tokens": tokens, "seconds": runtime,
                      "tokens_per_s": tokens / runtime, "steps": len(losses), "mean_loss": sum(losses) / len(losses),
                      "last_accuracy": accuracy[-1] if accuracy else None,
                      "peak_rss_gb": peak_rss_gb(), "dtype": dtype, "python": sys.executable}))


if __name__ == "__main__":
    main()

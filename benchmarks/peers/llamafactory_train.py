"""One LLaMA-Factory 0.9.5 LoRA SFT run (its own trainer, through ``run_exp``) with the settings of
benchmarks/sft_train_runner.py; prints one JSON line. Runs inside the peer venv
(setup_llamafactory.sh).

    python llamafactory_train.py CHATS.jsonl MODEL_DIR OUT_DIR --packing none|packing|neat_packing

Tokens are counted on LLaMA-Factory's own tokenized rows (``get_dataset``, unpacked: the tokens
its examples hold, what ft and TRL count as non-padding tokens); the Trainer's
``num_input_tokens_seen`` came back as -2**63 for its packed batches here. LLaMA-Factory loads the
model in bfloat16 on a CPU with bf16 support (``infer_optim_dtype``, even with ``bf16: false``) and
keeps the LoRA weights in fp32: the other tools get the same.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rounds import peak_rss_gb  # noqa: E402

CUTOFF, BATCH, RANK, LR = 512, 4, 16, 1e-4


def count_tokens(config: dict) -> int:
    """The tokens of LLaMA-Factory's tokenized examples (the same template, cutoff and data)."""
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments
    from transformers import AutoTokenizer, Seq2SeqTrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(config["model_name_or_path"])
    data_args = DataArguments(template=config["template"], dataset="bench", dataset_dir=config["dataset_dir"],
                              cutoff_len=config["cutoff_len"], overwrite_cache=True)
    training_args = Seq2SeqTrainingArguments(output_dir=config["output_dir"] + "-count", do_train=True, report_to="none")
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    module = get_dataset(template, ModelArguments(model_name_or_path=config["model_name_or_path"]), data_args,
                         training_args, "sft", tokenizer)
    return sum(len(ids) for ids in module["train_dataset"]["input_ids"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("chats")
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--packing", choices=("none", "packing", "neat_packing"), default="none")
    parser.add_argument("--template", default="smollm2")
    args = parser.parse_args()

    from llamafactory.train.tuner import run_exp
    from transformers import TrainerCallback

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset_info.json").write_text(json.dumps(
        {"bench": {"file_name": str(Path(args.chats).resolve()), "formatting": "sharegpt"}}))
    records: list[dict] = []

    class Keep(TrainerCallback):
        def on_log(self, a, state, control, logs=None, **kwargs):
            records.append(dict(logs or {}))

    config = {"model_name_or_path": args.model, "stage": "sft", "do_train": True, "finetuning_type": "lora",
              "lora_rank": RANK, "lora_alpha": 2 * RANK, "lora_dropout": 0.0, "lora_target": "all",
              "dataset": "bench", "dataset_dir": str(out), "template": args.template, "cutoff_len": CUTOFF,
              "overwrite_cache": True, "preprocessing_num_workers": 1, "output_dir": str(out / "run"),
              "per_device_train_batch_size": BATCH, "gradient_accumulation_steps": 1, "learning_rate": LR,
              "num_train_epochs": 1.0, "lr_scheduler_type": "linear", "logging_steps": 1, "save_strategy": "no",
              "bf16": False, "report_to": "none", "seed": 0, "disable_gradient_checkpointing": True,
              "overwrite_output_dir": True,
              "packing": args.packing == "packing", "neat_packing": args.packing == "neat_packing"}
    run_exp(config, callbacks=[Keep()])
    runtime = next(r["train_runtime"] for r in records if "train_runtime" in r)
    tokens = count_tokens(config)
    losses = [r["loss"] for r in records if "loss" in r]
    print(json.dumps({"tool": f"llamafactory-{args.packing}", "tokens": tokens, "seconds": runtime,
                      "tokens_per_s": tokens / runtime, "steps": len(losses), "mean_loss": sum(losses) / len(losses),
                      "peak_rss_gb": peak_rss_gb(), "dtype": "bfloat16"}))


if __name__ == "__main__":
    main()

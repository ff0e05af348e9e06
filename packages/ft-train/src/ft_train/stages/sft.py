"""Supervised fine-tuning with TRL's SFTTrainer on ft-data's assistant-masked tokens."""

from __future__ import annotations

from pathlib import Path

from ft_core import FtError
from ft_data import SFTCollator, build_dataset
from ft_models import add_lora, load_model, load_tokenizer, trainable_parameters
from ft_train.config import RunConfig
from ft_train.defaults import trainer_defaults
from ft_train.metrics import MetricsCallback


def make_sft_config(config: RunConfig, config_path: Path):
    """TRL's SFTConfig from the ``train:`` section; its errors name the YAML key."""
    from trl import SFTConfig

    args = trainer_defaults(config.train.trainer_args)
    args.setdefault("max_length", config.data.cutoff_len)
    # ft-data hands over finished rows (tokenized, masked, maybe packed): TRL must not re-process
    # them, nor drop the position_ids that keep packed examples apart.
    args.setdefault("dataset_kwargs", {"skip_prepare_dataset": True})
    args.setdefault("remove_unused_columns", False)
    try:
        return SFTConfig(output_dir=config.train.output_dir, **args)
    except (TypeError, ValueError) as e:
        raise FtError(f"{config_path}: train: {e}".replace("\n", " ")) from None


def run_sft(config: RunConfig, config_path: Path, sft_args, resume: str | bool | None):
    """Train and save; returns the trainer after training."""
    from trl import SFTTrainer

    tokenizer = load_tokenizer(config.model.source, revision=config.model.revision,
                               trust_remote_code=config.model.trust_remote_code)
    d = config.data
    data = build_dataset(tokenizer, [(f.path, f.format) for f in d.train], stage="sft", cutoff_len=d.cutoff_len,
                         template=d.template, system=d.system, default_system=d.default_system,
                         train_on=d.train_on, packing=d.packing, on_bad_row=d.on_bad_row, num_proc=d.num_proc)
    print(f"ft: {data.summary()}", flush=True)
    for problem in data.skipped_rows[:5]:
        print(f"ft: skipped {problem}", flush=True)
    model = load_model(config.model.source, dtype=config.model.dtype, revision=config.model.revision,
                       trust_remote_code=config.model.trust_remote_code)
    model.config.use_cache = False  # no KV cache in training; with one, packed positions would be ignored
    if config.adapter.type == "lora":
        a = config.adapter
        model = add_lora(model, r=a.r, alpha=a.alpha, dropout=a.dropout, target_modules=a.target_modules)
    trainable, total = trainable_parameters(model)
    print(f"ft: training {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f}%)", flush=True)
    # Packed rows carry restarting position_ids and no attention mask; our collator keeps them so.
    collator = SFTCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=data.dataset, processing_class=tokenizer,
                         data_collator=collator, callbacks=[MetricsCallback(config.train.output_dir)])
    trainer.train(resume_from_checkpoint=resume)
    return trainer, tokenizer

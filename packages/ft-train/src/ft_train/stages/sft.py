"""Supervised fine-tuning with TRL's SFTTrainer on ft-data's assistant-masked tokens."""

from __future__ import annotations

from pathlib import Path

from ft_core import FtError, atomic_dir
from ft_data import SFTCollator, build_dataset
from ft_models import (
    AdapterSpec,
    Quantization,
    adapter_optimizer,
    apply_adapter,
    load_model,
    load_tokenizer,
    trainable_parameters,
)
from ft_train._compat import checkpointing_names
from ft_train.checkpoints import CheckpointMarker
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
        return SFTConfig(output_dir=config.train.output_dir, **checkpointing_names(SFTConfig, args))
    except (TypeError, ValueError) as e:
        raise FtError(f"{config_path}: train: {e}".replace("\n", " ")) from None


INITIAL_ADAPTER = "adapter-init"  # PiSSA/OLoRA's starting adapter, to convert the result to plain LoRA


def load_base(config: RunConfig):
    """The base model as the ``model:`` section says, with the KV cache off for training."""
    m = config.model
    quant = Quantization(**m.quantization.model_dump()) if m.quantization else None
    model = load_model(m.source, dtype=m.dtype, attention=m.attention, quantization=quant,
                       context_length=m.context_length, rope_scaling=m.rope_scaling, revision=m.revision,
                       trust_remote_code=m.trust_remote_code)
    print(f"ft: attention {model.ft_attention.name} ({model.ft_attention.reason})", flush=True)
    model.config.use_cache = False  # no KV cache in training; with one, packed positions would be ignored
    return model


def adapter_spec(config: RunConfig) -> AdapterSpec:
    a = config.adapter.model_dump()
    return AdapterSpec(**{**a, "target_modules": a["target_modules"], "trainable_modules": tuple(a["trainable_modules"])})


def save_initial_adapter(model, folder: Path) -> None:
    """PiSSA/OLoRA change the base weights they start from; the starting adapter, saved once, lets
    the final one be converted into a plain LoRA for the original base (peft's documented route)."""
    if folder.is_dir():
        return
    config = model.peft_config["default"]
    init, config.init_lora_weights = config.init_lora_weights, True
    try:
        with atomic_dir(folder) as tmp:
            model.save_pretrained(tmp)
    finally:
        config.init_lora_weights = init


def sft_data(config: RunConfig):
    """(tokenizer, ft-data's finished rows) as the ``model:`` and ``data:`` sections say."""
    tokenizer = load_tokenizer(config.model.source, revision=config.model.revision,
                               trust_remote_code=config.model.trust_remote_code)
    d = config.data
    data = build_dataset(tokenizer, [(f.path, f.format) for f in d.train], stage="sft", cutoff_len=d.cutoff_len,
                         template=d.template, system=d.system, default_system=d.default_system,
                         train_on=d.train_on, packing=d.packing, on_bad_row=d.on_bad_row, num_proc=d.num_proc)
    print(f"ft: {data.summary()}", flush=True)
    for problem in data.skipped_rows[:5]:
        print(f"ft: skipped {problem}", flush=True)
    return tokenizer, data


def run_sft(config: RunConfig, sft_args, tokenizer, data, resume: str | None):
    """Train on ``data`` (from ``sft_data``); returns the trainer after training."""
    from transformers import set_seed
    from trl import SFTTrainer

    model = load_base(config)
    spec = adapter_spec(config)
    set_seed(sft_args.seed)  # adapter init (PiSSA's randomized SVD too) is the same on every resume
    model = apply_adapter(model, spec)
    if spec.init in ("pissa", "olora"):
        save_initial_adapter(model, Path(config.train.output_dir) / INITIAL_ADAPTER)
    optimizer = adapter_optimizer(model, spec, lr=sft_args.learning_rate, weight_decay=sft_args.weight_decay) \
        if spec.loraplus_ratio else None
    trainable, total = trainable_parameters(model)
    print(f"ft: training {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f}%)", flush=True)
    # Packed rows carry restarting position_ids and no attention mask; our collator keeps them so.
    collator = SFTCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=data.dataset, processing_class=tokenizer,
                         data_collator=collator, callbacks=[MetricsCallback(config.train.output_dir), CheckpointMarker()],
                         optimizers=(optimizer, None))
    trainer.train(resume_from_checkpoint=resume)
    return trainer

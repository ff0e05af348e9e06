"""LLaMA-Factory training YAMLs, run unchanged: their flat keys mapped onto ft's sections.

Every key is either mapped, or named in the ``ignored`` list with the reason (ft always trains,
always plots, resumes on its own, ...). Datasets come from ``dataset_dir/dataset_info.json``, as
LLaMA-Factory reads them (``dataset_dir`` relative to the working directory, then to the file).

Example:
    >>> lf = {"model_name_or_path": "m", "stage": "sft", "finetuning_type": "lora", "lora_rank": 8,
    ...       "dataset": "alpaca_en_demo", "template": "qwen", "output_dir": "saves/x", "do_train": True}
    >>> converted = convert(lf, None, check_data=False)
    >>> converted.config["adapter"], converted.config["data"]["template"]
    ({'type': 'lora', 'r': 8, 'alpha': 16}, None)
    >>> converted.ignored
    ['do_train (ft always trains)']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ft_core import FtError

# LLaMA-Factory template -> ft-data's named template, or None: the tokenizer's own chat template
# (what LLaMA-Factory's model-specific templates reproduce for instruct models)
TEMPLATES = {"chatml": "chatml", "chatml_de": "chatml", "llama3": "llama3", "alpaca": "alpaca", "empty": "plain"}
ATTENTION = {"auto": "auto", "fa2": "flash_attention_2", "sdpa": "sdpa", "disabled": "eager", "eager": "eager"}
TRAIN_KEYS = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
              "learning_rate", "num_train_epochs", "max_steps", "lr_scheduler_type", "warmup_steps", "bf16", "fp16",
              "logging_steps", "save_steps", "save_strategy", "save_total_limit", "seed", "report_to", "weight_decay",
              "max_grad_norm", "eval_strategy", "eval_steps", "optim", "adam_beta1", "adam_beta2", "adam_epsilon",
              "deepspeed", "ddp_timeout", "run_name", "dataloader_num_workers", "lr_scheduler_kwargs",
              "gradient_checkpointing")
ADAPTER_KEYS = {"lora_rank": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "use_dora": "use_dora",
                "use_rslora": "use_rslora", "pissa_iter": "pissa_niter", "loraplus_lr_ratio": "loraplus_ratio",
                "freeze_trainable_layers": "trainable_layers"}
DATA_KEYS = {"cutoff_len": "cutoff_len", "val_size": "val_size", "preprocessing_num_workers": "num_proc",
             "default_system": "default_system"}
IGNORED = {"do_train": "ft always trains", "do_eval": "give data.eval or val_size", "do_predict": "not a training step",
           "plot_loss": "loss.png is always drawn", "overwrite_cache": "ft's cache is keyed by content",
           "overwrite_output_dir": "reruns resume; use ft train --restart",
           "resume_from_checkpoint": "ft resumes from the last complete checkpoint",
           "tokenized_path": "ft caches by content", "dataloader_pin_memory": "set from the hardware",
           "logging_dir": "gone from transformers 5", "ddp_find_unused_parameters": "not needed"}
# keys read by the functions below (beyond the one-to-one tables)
MAPPED = {"stage", "flash_attn", "template", "finetuning_type", "lora_target", "dataset", "dataset_dir", "eval_dataset",
          "max_samples", "packing", "neat_packing", "mask_history", "output_dir", "model_name_or_path",
          "trust_remote_code", "quantization_bit", "quantization_type", "double_quantization", "rope_scaling",
          "pref_beta", "pref_loss", "simpo_gamma", "pissa_init", "kto_chosen_weight", "kto_rejected_weight",
          "freeze_extra_modules", "warmup_ratio", "disable_gradient_checkpointing", "train_on_prompt"}


@dataclass
class Converted:
    config: dict[str, Any]  # an ft run config
    ignored: list[str] = field(default_factory=list)  # "key (why)" for each key left out


def is_llamafactory(raw: dict) -> bool:
    """A LLaMA-Factory training YAML: flat keys, ``model_name_or_path`` among them, none of ours."""
    return "model_name_or_path" in raw and not {"model", "data", "adapter", "train"} & raw.keys()


def _model(lf: dict) -> dict:
    model: dict[str, Any] = {"source": lf["model_name_or_path"]}
    if lf.get("trust_remote_code"):
        model["trust_remote_code"] = True
    if "flash_attn" in lf:
        model["attention"] = ATTENTION.get(str(lf["flash_attn"]), "auto")
    if lf.get("quantization_bit"):
        model["quantization"] = {"bits": lf["quantization_bit"], "quant_type": lf.get("quantization_type", "nf4"),
                                 "double_quant": lf.get("double_quantization", True)}
    if lf.get("rope_scaling"):
        model.update(rope_scaling=lf["rope_scaling"], context_length=lf.get("cutoff_len", 2048))
    return model


def _adapter(lf: dict) -> dict:
    kind = lf.get("finetuning_type", "lora")
    adapter: dict[str, Any] = {"type": kind}
    adapter.update({ours: lf[theirs] for theirs, ours in ADAPTER_KEYS.items() if theirs in lf})
    if kind == "lora":
        adapter.setdefault("r", 8)  # LLaMA-Factory's defaults: rank 8, alpha twice the rank
        adapter.setdefault("alpha", 2 * adapter["r"])
        target = str(lf.get("lora_target", "all"))
        if target != "all":
            adapter["target_modules"] = [t.strip() for t in target.split(",") if t.strip()]
    if lf.get("pissa_init"):
        adapter["init"] = "pissa"
    if lf.get("freeze_extra_modules"):
        adapter["trainable_modules"] = [m.strip() for m in str(lf["freeze_extra_modules"]).split(",")]
    return adapter


def _names(value: Any) -> list[str]:
    return [n.strip() for n in (value if isinstance(value, list) else str(value).split(",")) if n.strip()]


def _registry(lf: dict, path: Path | None) -> str:
    folder = Path(lf.get("dataset_dir", "data"))
    candidates = [folder] if folder.is_absolute() else [Path.cwd() / folder] + ([path.parent / folder] if path else [])
    for candidate in candidates:
        if (candidate / "dataset_info.json").is_file():
            return str((candidate / "dataset_info.json").resolve())
    raise FtError(f"{path}: dataset_dir: no dataset_info.json in {' or '.join(str(c) for c in candidates)}")


def _data(lf: dict, path: Path | None, check: bool) -> dict:
    data: dict[str, Any] = {ours: lf[theirs] for theirs, ours in DATA_KEYS.items() if theirs in lf}
    if check or "dataset_dir" in lf:
        data["registry"] = _registry(lf, path) if check else str(Path(lf.get("dataset_dir", "data")) / "dataset_info.json")
    limit = {"max_samples": lf["max_samples"]} if lf.get("max_samples") else {}
    data["train"] = [{"dataset": name, **limit} for name in _names(lf.get("dataset", ""))]
    if lf.get("eval_dataset"):
        data["eval"] = [{"dataset": name, **limit} for name in _names(lf["eval_dataset"])]
    template = lf.get("template")
    data["template"] = TEMPLATES.get(template) if template else None
    if lf.get("packing") or lf.get("neat_packing"):
        data["packing"] = True  # ft's packing never lets examples see each other (LLaMA-Factory's neat_packing)
    if lf.get("mask_history"):
        data["train_on"] = "last"
    return data


def _train(lf: dict) -> dict:
    stage = lf.get("stage", "sft")
    train: dict[str, Any] = {"stage": stage, "output_dir": lf.get("output_dir", "saves/ft")}
    train.update({k: lf[k] for k in TRAIN_KEYS if k in lf})
    if "warmup_ratio" in lf and "warmup_steps" not in lf:
        train["warmup_steps"] = lf["warmup_ratio"]  # transformers 5 takes a fraction there
    if lf.get("disable_gradient_checkpointing"):
        train["gradient_checkpointing"] = False
    if stage == "dpo":
        loss = lf.get("pref_loss", "sigmoid")
        if loss == "orpo":
            train["stage"] = "orpo"
        elif loss != "sigmoid":
            train["loss_type"] = loss
        if loss == "simpo":
            train["simpo_gamma"] = lf.get("simpo_gamma", 0.5)
    if "pref_beta" in lf and train["stage"] in ("dpo", "orpo", "kto"):
        train["beta"] = lf["pref_beta"]
    if stage == "kto":
        train.update({k: lf[t] for t, k in (("kto_chosen_weight", "desirable_weight"),
                                            ("kto_rejected_weight", "undesirable_weight")) if t in lf})
    return train


def convert(lf: dict, path: Path | None, *, check_data: bool = True) -> Converted:
    """The ft run config for LLaMA-Factory YAML ``lf`` (read from ``path``), and what was left out."""
    config = {"model": _model(lf), "data": _data(lf, path, check_data), "adapter": _adapter(lf), "train": _train(lf)}
    known = MAPPED | set(TRAIN_KEYS) | set(ADAPTER_KEYS) | set(DATA_KEYS)
    ignored = [f"{k} ({IGNORED[k] if k in IGNORED else 'not a LLaMA-Factory key ft knows'})" for k in lf
               if k not in known]
    if lf.get("template") and lf["template"] not in TEMPLATES:
        config["data"]["template"] = None
    if lf.get("train_on_prompt"):
        ignored.append("train_on_prompt (ft trains on assistant turns only)")
    return Converted(config, ignored)


def converted_yaml(path: Path) -> str:
    """The ft run config for the LLaMA-Factory YAML at ``path``, as YAML text, each ignored key in
    a comment line at the top (what ``ft train --convert`` prints)."""
    import yaml

    from ft_train.config import read_yaml

    raw = read_yaml(path)
    if not is_llamafactory(raw):
        raise FtError(f"{path} is not a LLaMA-Factory training YAML (no model_name_or_path); nothing to convert")
    converted = convert(raw, path)
    head = f"# ft run config converted from {path}\n" + "".join(f"# ignored: {item}\n" for item in converted.ignored)
    return head + yaml.safe_dump(converted.config, sort_keys=False)

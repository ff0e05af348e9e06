"""LLaMA-Factory training YAMLs, run unchanged: their flat keys mapped onto ft's sections.

Every key is either mapped, passed through to ``train:`` (transformers' TrainingArguments keys), or
named in the ``ignored`` list with the reason (ft always trains, always plots, resumes on its own;
``llamafactory_keys.py`` holds the reasons); a key LLaMA-Factory does not know either is named with
the closest one it does. Datasets come from ``dataset_dir/dataset_info.json``, as LLaMA-Factory
reads them (``dataset_dir`` relative to the working directory, then to the file).

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

from ft_core import FtError, closest
from ft_train.deepspeed_config import read_deepspeed_config
from ft_train.llamafactory_keys import LF_VERSION, REASONS, reason

# LLaMA-Factory template -> ft-data's named template, or None: the tokenizer's own chat template
# (what LLaMA-Factory's model-specific templates reproduce for instruct models)
TEMPLATES = {"chatml": "chatml", "chatml_de": "chatml", "llama3": "llama3", "alpaca": "alpaca", "empty": "plain"}
ATTENTION = {"auto": "auto", "fa2": "flash_attention_2", "sdpa": "sdpa", "disabled": "eager", "eager": "eager"}
ADAPTER_KEYS = {"lora_rank": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "use_dora": "use_dora",
                "use_rslora": "use_rslora", "pissa_iter": "pissa_niter", "loraplus_lr_ratio": "loraplus_ratio",
                "freeze_trainable_layers": "trainable_layers"}
DATA_KEYS = {"cutoff_len": "cutoff_len", "val_size": "val_size", "preprocessing_num_workers": "num_proc",
             "default_system": "default_system"}
IGNORED = {"do_train": "ft always trains", "do_eval": "give data.eval or val_size",
           "plot_loss": "loss.png is always drawn", "overwrite_cache": "ft's cache is keyed by content",
           "overwrite_output_dir": "reruns resume; use ft train --restart",
           "resume_from_checkpoint": "ft resumes from the last complete checkpoint",
           "tokenized_path": "ft caches by content", "dataloader_pin_memory": "set from the hardware",
           "logging_dir": "gone from transformers 5", "ddp_find_unused_parameters": "not needed",
           "do_predict": "not a training step"}
# keys read by the functions below (beyond the one-to-one tables)
MAPPED = {"stage", "flash_attn", "template", "finetuning_type", "lora_target", "dataset", "dataset_dir", "eval_dataset",
          "max_samples", "packing", "neat_packing", "mask_history", "output_dir", "model_name_or_path",
          "trust_remote_code", "quantization_bit", "quantization_type", "double_quantization", "rope_scaling",
          "pref_beta", "pref_loss", "simpo_gamma", "pissa_init", "kto_chosen_weight", "kto_rejected_weight",
          "freeze_extra_modules", "warmup_ratio", "disable_gradient_checkpointing", "train_on_prompt",
          "reward_model", "reward_model_adapters", "reward_model_type", "ppo_epochs", "max_new_tokens", "temperature",
          "enable_liger_kernel", "model_revision", "pref_ftx", "dpo_label_smoothing", "ld_alpha", "use_dft_loss",
          "freeze_trainable_modules", "top_k", "top_p", "adapter_name_or_path", "create_new_adapter", "ppo_target",
          "ppo_score_norm", "ppo_whiten_rewards"}
# ppo's keys: LLaMA-Factory's names -> ft's ppo train: keys
PPO_KEYS = {"ppo_epochs": "num_ppo_epochs", "max_new_tokens": "max_completion_length", "temperature": "temperature",
            "top_k": "top_k", "top_p": "top_p", "ppo_score_norm": "score_norm", "ppo_whiten_rewards": "whiten_rewards"}
PPO_SAMPLING = ("ppo_epochs", "max_new_tokens", "temperature", "top_k", "top_p")
# LLaMA-Factory's PPO (TRL 0.9's PPOConfig) always adapts the KL coefficient: from 0.2 toward
# ppo_target (6 by default) over a horizon of 10,000 samples
LF_KL_START, LF_KL_TARGET = 0.2, 6.0
# dpo keys that go to TRL's DPOConfig (not to ft's own reference-free losses)
TRL_DPO_KEYS = {"dpo_label_smoothing": "label_smoothing", "ld_alpha": "ld_alpha"}


@dataclass
class Converted:
    config: dict[str, Any]  # an ft run config
    ignored: list[str] = field(default_factory=list)  # "key (why)" for each key left out


def is_llamafactory(raw: dict) -> bool:
    """A LLaMA-Factory training YAML: flat keys, ``model_name_or_path`` among them, none of ours."""
    return "model_name_or_path" in raw and not {"model", "data", "adapter", "train"} & raw.keys()


def _model(lf: dict, path: Path | None = None) -> dict:
    model: dict[str, Any] = {"source": lf["model_name_or_path"]}
    dtype = "bfloat16" if lf.get("bf16") else "float16" if lf.get("fp16") else None
    if dtype and not _sharded_in_fp32(lf, path):  # it loads the weights in its compute dtype, as here
        model["dtype"] = dtype
    if lf.get("trust_remote_code"):
        model["trust_remote_code"] = True
    if lf.get("model_revision") not in (None, "main"):
        model["revision"] = lf["model_revision"]
    if "flash_attn" in lf:
        model["attention"] = ATTENTION.get(str(lf["flash_attn"]), "auto")
    if lf.get("quantization_bit"):
        model["quantization"] = {"bits": lf["quantization_bit"], "quant_type": lf.get("quantization_type", "nf4"),
                                 "double_quant": lf.get("double_quantization", True)}
    if lf.get("rope_scaling"):
        model.update(rope_scaling=lf["rope_scaling"], context_length=lf.get("cutoff_len", 2048))
    return model


def _sharded_in_fp32(lf: dict, path: Path | None) -> bool:
    """Whether LLaMA-Factory keeps the weights in fp32 (then autocasts): under FSDP or DeepSpeed
    ZeRO-3, unless quantized. A DeepSpeed config it cannot read counts as ZeRO-3 (fp32 is safe)."""
    if lf.get("quantization_bit"):
        return False
    if lf.get("fsdp"):
        return True
    deepspeed = lf.get("deepspeed")
    if not deepspeed:
        return False
    try:
        config = read_deepspeed_config(deepspeed, path or Path("lf.yaml"))
    except FtError:
        return True
    return (config.get("zero_optimization") or {}).get("stage") == 3


def _adapter(lf: dict, ignored: list[str]) -> dict:
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
    if lf.get("adapter_name_or_path"):
        adapter["start_from"] = _adapter_to_continue(lf)
    if lf.get("freeze_extra_modules"):
        adapter["trainable_modules"] = [m.strip() for m in str(lf["freeze_extra_modules"]).split(",")]
    if str(lf.get("freeze_trainable_modules", "all")) != "all":
        ignored.append("freeze_trainable_modules (freeze tuning trains its layers whole)")
    return adapter


def _adapter_to_continue(lf: dict) -> str:
    """The one adapter LLaMA-Factory's ``adapter_name_or_path`` continues training. Several (it merges
    all but the last) or ``create_new_adapter`` (it merges them all) train on a base ft would first
    have to build: said, with how."""
    names = _names(lf["adapter_name_or_path"])
    how = "merge them into the base first (ft export ADAPTER --out DIR) and give DIR as model_name_or_path"
    if lf.get("finetuning_type", "lora") != "lora":
        raise FtError(f"adapter_name_or_path with finetuning_type {lf['finetuning_type']}: {how}")
    if lf.get("create_new_adapter"):
        raise FtError(f"adapter_name_or_path with create_new_adapter: true trains a new adapter on the merged base: {how}")
    if len(names) > 1:
        raise FtError(f"adapter_name_or_path names {len(names)} adapters; ft continues one: {how}, "
                      "and keep the last in adapter_name_or_path")
    return names[0]


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


def _trainer_keys() -> set[str]:
    """The keys that pass through to ``train:``: TrainingArguments' (read from the copy of TRL's
    SFTConfig fields a run keeps; TRL itself where none is kept)."""
    from ft_train.config import _trainer_fields

    return set(_trainer_fields())


def _train(lf: dict, passed: set[str], ignored: list[str]) -> dict:
    stage = lf.get("stage", "sft")
    train: dict[str, Any] = {"stage": stage, "output_dir": lf.get("output_dir", "saves/ft")}
    train.update({k: lf[k] for k in lf if k in passed})
    if "warmup_ratio" in lf and "warmup_steps" not in lf:
        train["warmup_steps"] = lf["warmup_ratio"]  # transformers 5 takes a fraction there
    if lf.get("disable_gradient_checkpointing"):
        train["gradient_checkpointing"] = False
    if lf.get("enable_liger_kernel"):
        train["use_liger_kernel"] = True
    if stage == "dpo":
        _preference_loss(lf, train, ignored)
    if "pref_beta" in lf and train["stage"] in ("dpo", "orpo", "kto"):
        train["beta"] = lf["pref_beta"]
    if stage == "kto":
        train.update({k: lf[t] for t, k in (("kto_chosen_weight", "desirable_weight"),
                                            ("kto_rejected_weight", "undesirable_weight")) if t in lf})
    if stage == "ppo":
        train.update(_ppo(lf))
    else:
        ignored += [f"{k} (a sampling setting: ppo's only)" for k in PPO_SAMPLING if k in lf]
        ignored += [f"{k} (ppo's only)" for k in ("ppo_target", "ppo_score_norm", "ppo_whiten_rewards") if k in lf]
        ignored += [f"{k} (ppo's only)" for k in ("reward_model", "reward_model_adapters") if lf.get(k)]
    if lf.get("use_dft_loss"):
        if stage == "sft":
            train["loss_type"] = "dft"
        else:
            ignored.append("use_dft_loss (an sft loss)")
    return train


def _preference_loss(lf: dict, train: dict, ignored: list[str]) -> None:
    """pref_loss and the terms LLaMA-Factory adds to it, for TRL's DPOTrainer or ft's own losses."""
    loss = lf.get("pref_loss", "sigmoid")
    if loss == "orpo":
        train["stage"] = "orpo"
    elif loss != "sigmoid":
        train["loss_type"] = loss
    if loss == "simpo":
        train["simpo_gamma"] = lf.get("simpo_gamma", 0.5)
    trl = loss not in ("orpo", "simpo")  # those two are ft's own losses
    if lf.get("pref_ftx"):
        if trl:  # TRL's sft term: the chosen answers' NLL per token (LLaMA-Factory's: per answer, then averaged)
            train["loss_type"], train["loss_weights"] = [loss, "sft"], [1.0, float(lf["pref_ftx"])]
        else:
            ignored.append(f"pref_ftx ({loss} has no added sft term here; orpo's NLL is part of its loss)")
    for theirs, ours in TRL_DPO_KEYS.items():
        if lf.get(theirs):
            if trl:
                train[ours] = lf[theirs]
            else:
                ignored.append(f"{theirs} (TRL's DPO losses only, not {loss})")


def _ppo(lf: dict) -> dict:
    """ppo's train: keys: the reward model (a folder an rm run wrote: LLaMA-Factory's reward_model, or
    its adapter in reward_model_adapters), the sampling and reward settings, and the KL coefficient
    adapted as LLaMA-Factory's PPO adapts it."""
    if lf.get("reward_model_type") == "api":
        raise FtError("reward_model_type: api (a reward server) is not supported by ft: give the reward model's "
                      "folder, or use ft's own config with a reward function (train.rewards: [package.module:function])")
    train = {ours: lf[theirs] for theirs, ours in PPO_KEYS.items() if theirs in lf}
    train.update(kl_coef=LF_KL_START, kl_target=float(lf.get("ppo_target", LF_KL_TARGET)))
    folder = lf.get("reward_model_adapters") or lf.get("reward_model")
    if folder:
        train["rewards"] = [str(folder)]
    return train


def _left_out(lf: dict, handled: set[str], trainer_keys: set[str]) -> list[str]:
    """"key (why)" for each key neither mapped nor passed through."""
    lines = []
    for key in lf:
        if key in handled or key in trainer_keys:
            continue
        why = IGNORED.get(key) or reason(key)
        if why is None:
            near = closest(key, sorted(handled | trainer_keys | set(IGNORED) | set(REASONS)))
            why = f"not a LLaMA-Factory {LF_VERSION} or TrainingArguments key" + (f"; did you mean {near}?" if near else "")
        lines.append(f"{key} ({why})")
    return lines


def convert(lf: dict, path: Path | None, *, check_data: bool = True) -> Converted:
    """The ft run config for LLaMA-Factory YAML ``lf`` (read from ``path``), and what was left out."""
    _check_it_trains(lf, path)
    handled = MAPPED | set(ADAPTER_KEYS) | set(DATA_KEYS)
    trainer_keys = _trainer_keys() - set(IGNORED) - {k for k in lf if reason(k)} - handled
    ignored = _left_out(lf, handled, trainer_keys)
    config = {"model": _model(lf, path), "data": _data(lf, path, check_data), "adapter": _adapter(lf, ignored),
              "train": _train(lf, trainer_keys, ignored)}
    if lf.get("template") and lf["template"] not in TEMPLATES:
        config["data"]["template"] = None
    if lf.get("train_on_prompt"):
        ignored.append("train_on_prompt (ft trains on assistant turns only)")
    return Converted(config, ignored)


def _check_it_trains(lf: dict, path: Path | None) -> None:
    """A LLaMA-Factory YAML without a dataset exports, predicts or chats: the ft command that does
    that job, with the YAML's own model and adapter."""
    if lf.get("dataset"):
        return
    name, model, adapter = path or "this YAML", lf["model_name_or_path"], lf.get("adapter_name_or_path")
    chat = f"`ft chat --model {model}" + (f" --adapter {adapter}`" if adapter else "`")
    if lf.get("tokenized_path"):
        raise FtError(f"{name} trains on LLaMA-Factory's tokenized_path alone, which ft does not read: give the "
                      "dataset it was built from (dataset, dataset_dir); ft caches its own tokenization")
    if lf.get("export_dir"):
        if not adapter:
            raise FtError(f"{name} is a LLaMA-Factory export config (export_dir), not a training one, "
                          "and names no adapter to merge (adapter_name_or_path)")
        size = f" --max-shard-size {lf['export_size']}GB" if lf.get("export_size") else ""
        raise FtError(f"{name} is a LLaMA-Factory export config (export_dir), not a training one: run "
                      f"`ft export {adapter} --out {lf['export_dir']} --base {model}{size}`")
    if lf.get("do_predict") or lf.get("do_eval"):
        key = "do_predict" if lf.get("do_predict") else "do_eval"
        raise FtError(f"{name} is a LLaMA-Factory prediction config ({key}), not a training one: ft has no "
                      f"batch prediction; chat with the model ({chat}) or serve it (`ft serve`)")
    raise FtError(f"{name} is a LLaMA-Factory inference config (no dataset), not a training one: run {chat} "
                  "(or `ft serve`)")


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

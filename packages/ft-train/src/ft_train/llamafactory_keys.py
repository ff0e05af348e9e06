"""What ft does with each LLaMA-Factory (0.9.5) training key it does not map: the reason it is left
out, named in the one line of ignored keys. ``llamafactory.py`` maps the rest; transformers'
TrainingArguments keys pass through to ``train:``.

Example:
    >>> reason("use_galore"), reason("image_max_pixels")
    ('an optimizer ft does not carry over: choose one with optim', 'ft trains text models')
    >>> reason("lora_rnak") is None
    True
"""

from __future__ import annotations

LF_VERSION = "0.9.5"
_OPTIMIZER = "an optimizer ft does not carry over: choose one with optim"
_INFERENCE = "an inference setting, not a training one"
_MULTIMODAL = "ft trains text models"
_TOKENS = "ft trains with the tokenizer as it is"
_PPO_SAMPLING = "ft's ppo samples with temperature, top_k and top_p only"

# groups of keys by their prefix
PREFIXES = {
    "image_": _MULTIMODAL, "video_": _MULTIMODAL, "audio_": _MULTIMODAL, "freeze_vision_": _MULTIMODAL,
    "export_": "exporting is not a training step (ft export)", "vllm_": _INFERENCE, "sglang_": _INFERENCE,
    "kt_": "KTransformers is not supported",
    "swanlab_": "report_to passes through; SwanLab's own settings do not",
    "galore_": _OPTIMIZER, "apollo_": _OPTIMIZER, "badam_": _OPTIMIZER, "profiler_": "not carried over",
    "ray_": "ft train --nproc, or the launcher's own flags", "fp8": "not carried over",
    "oft_": "OFT adapters are not supported", "ref_model": "the reference is the base model with the adapter off "
    "(a frozen copy in full tuning)", "generation_": "not a training step",
}

REASONS = {
    # model
    "adapter_folder": "give the adapter's folder in adapter_name_or_path",
    "cache_dir": "ft reads models from a folder, the hub cache or FT_HOME", "low_cpu_mem_usage": "ft loads as it sees fit",
    "use_fast_tokenizer": _TOKENS, "split_special_tokens": _TOKENS, "resize_vocab": _TOKENS, "add_tokens": _TOKENS,
    "add_special_tokens": _TOKENS, "new_special_tokens_config": _TOKENS, "init_special_tokens": _TOKENS,
    "shift_attn": "not supported", "mixture_of_depths": "not supported", "use_llama_pro": "not supported",
    "use_unsloth": "ft's own fast path runs", "use_unsloth_gc": "ft's own fast path runs",
    "use_v1_kernels": "ft's own kernels run", "use_kt": "KTransformers is not supported", "use_mca": "not supported",
    "use_hyper_parallel": "not supported",
    "hyper_parallel_args": "not supported", "moe_aux_loss_coef": "the model config's own value is used",
    "use_reentrant_gc": "checkpointing is non-reentrant", "upcast_layernorm": "not carried over",
    "upcast_lmhead_output": "ft's loss already works in fp32", "train_from_scratch": "ft trains from the given weights",
    "infer_backend": _INFERENCE, "offload_folder": _INFERENCE, "use_kv_cache": _INFERENCE, "infer_dtype": _INFERENCE,
    "hf_hub_token": "ft reads no hub at train time", "ms_hub_token": "ft reads no hub at train time",
    "om_hub_token": "ft reads no hub at train time", "print_param_status": "ft logs the trainable parameter count",
    "quantization_method": "ft quantizes with bitsandbytes only",
    "quantization_device_map": "the quantized model goes where the run trains",
    "crop_to_patches": _MULTIMODAL, "use_audio_in_video": _MULTIMODAL, "media_dir": _MULTIMODAL,
    "freeze_multi_modal_projector": _MULTIMODAL, "freeze_language_model": _MULTIMODAL,
    "compute_dtype": "set from model dtype and bf16", "device_map": "the launcher places the model",
    "model_max_length": "cutoff_len sets it", "block_diag_attn": "packed examples never see each other",
    # data
    "streaming": "ft tokenizes into a cached Arrow file", "buffer_size": "ft tokenizes into a cached Arrow file",
    "mix_strategy": "ft concatenates the datasets", "interleave_probs": "ft concatenates the datasets",
    "preprocessing_batch_size": "ft batches tokenization itself", "eval_num_beams": "not a training step",
    "ignore_pad_token_for_loss": "padding never carries a label", "eval_on_each_dataset": "one eval set, all rows",
    "tool_format": "tools render with the chat template", "enable_thinking": "the chat template renders as it is",
    "preserve_thinking": "the chat template renders as it is", "data_shared_file_system": "not needed",
    # method
    "additional_target": "LoRA trains the adapter only (freeze tuning takes freeze_extra_modules)",
    "module_dropout": "not supported", "loraplus_lr_embedding": "LoRA+ sets the B matrices' rate only",
    "pissa_convert": "ft saves PiSSA's starting adapter to convert the result",
    "pref_bco_weight": "not carried over: TRL's bco_pair differs (train.loss_type lists it)",
    "ppo_buffer_size": "ft's ppo updates on each batch's own samples",
    "reward_model_quantization_bit": "the reward model loads unquantized",
    "use_galore": _OPTIMIZER, "use_apollo": _OPTIMIZER, "use_badam": _OPTIMIZER,
    "use_adam_mini": _OPTIMIZER, "use_muon": _OPTIMIZER, "use_swanlab": "report_to passes through",
    "pure_bf16": "give model dtype bfloat16 in ft's config", "use_asft_loss": "not supported",
    "asft_alpha": "not supported", "use_eaft_loss": "not supported", "eaft_alpha": "not supported",
    "compute_accuracy": "rm and preference stages always report accuracy", "disable_shuffling": "not carried over",
    "early_stopping_steps": "not carried over", "include_effective_tokens_per_second": "metrics.jsonl counts the tokens",
    # generation (LLaMA-Factory samples with them in ppo)
    "do_sample": _PPO_SAMPLING, "num_beams": _PPO_SAMPLING,
    "repetition_penalty": _PPO_SAMPLING, "length_penalty": _PPO_SAMPLING, "skip_special_tokens": _PPO_SAMPLING,
    "max_length": "max_new_tokens sets ppo's completion length",
    # training
    "sortish_sampler": "not a training step", "predict_with_generate": "not a training step",
    "master_addr": "the launcher's own flags", "master_port": "the launcher's own flags",
    "enable_torch_profiler": "not carried over", "profile_modules": "not carried over",
}


def reason(key: str) -> str | None:
    """Why ft leaves LLaMA-Factory's ``key`` out, or None where it is not one of these."""
    if key in REASONS:
        return REASONS[key]
    return next((why for prefix, why in PREFIXES.items() if key.startswith(prefix)), None)

"""Tokenizer, config and model loading, and PEFT adapters.

Example:
    >>> from ft_models import load_tokenizer, load_model
    >>> tok = load_tokenizer("smollm2-135m-instruct")          # doctest: +SKIP
    >>> model = load_model("smollm2-135m-instruct")            # doctest: +SKIP
"""

from ft_models import _compat  # noqa: F401  (version guard runs first)
from ft_models.adapters import (
    AdapterSpec,
    adapter_optimizer,
    add_lora,
    apply_adapter,
    decoder_layers,
    load_adapter,
    trainable_parameters,
)
from ft_models.aliases import register_alias, remove_alias, user_aliases
from ft_models.attention import AttentionOption, attention_report, device_report
from ft_models.chat import ChatModel, GenerationOptions
from ft_models.dtypes import resolve_dtype
from ft_models.embedded import DEFAULT_MODEL, EMBEDDED_MODELS
from ft_models.export import merge_adapter, save_merged
from ft_models.loading import load_model, load_tokenizer
from ft_models.patches import (
    AttentionChoice,
    choose_attention,
    extend_context,
    head_dim,
    prepare_for_training,
    recurrent_layer_types,
    rope_parameters,
    with_canonical_head_dim,
)
from ft_models.quantization import Quantization, bnb_config
from ft_models.sources import ModelSource, model_path, resolve_source

__all__ = [
    "AdapterSpec",
    "AttentionChoice",
    "Quantization",
    "adapter_optimizer",
    "apply_adapter",
    "bnb_config",
    "choose_attention",
    "decoder_layers",
    "extend_context",
    "head_dim",
    "merge_adapter",
    "prepare_for_training",
    "recurrent_layer_types",
    "register_alias",
    "remove_alias",
    "rope_parameters",
    "save_merged",
    "user_aliases",
    "with_canonical_head_dim",
    "DEFAULT_MODEL",
    "EMBEDDED_MODELS",
    "AttentionOption",
    "ChatModel",
    "GenerationOptions",
    "ModelSource",
    "add_lora",
    "attention_report",
    "device_report",
    "load_adapter",
    "load_model",
    "load_tokenizer",
    "model_path",
    "resolve_dtype",
    "resolve_source",
    "trainable_parameters",
]

"""Tokenizer, config and model loading, and PEFT adapters.

Example:
    >>> from ft_models import load_tokenizer, load_model
    >>> tok = load_tokenizer("smollm2-135m-instruct")          # doctest: +SKIP
    >>> model = load_model("smollm2-135m-instruct")            # doctest: +SKIP
"""

from ft_models import _compat  # noqa: F401  (version guard runs first)
from ft_models.adapters import add_lora, load_adapter, trainable_parameters
from ft_models.attention import AttentionOption, attention_report, device_report
from ft_models.chat import ChatModel, GenerationOptions
from ft_models.dtypes import resolve_dtype
from ft_models.embedded import DEFAULT_MODEL, EMBEDDED_MODELS
from ft_models.loading import load_model, load_tokenizer
from ft_models.sources import ModelSource, model_path, resolve_source

__all__ = [
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

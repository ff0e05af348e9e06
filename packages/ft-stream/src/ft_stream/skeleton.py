"""The transformers model built on the meta device, and its decoder layers found by introspection."""

from __future__ import annotations

import torch
from torch import nn

from ft_core import FtError


def build_skeleton(config, dtype: torch.dtype):
    """The model class's own skeleton: parameters on meta, buffers (rotary inv_freq) computed on CPU."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    if getattr(config, "is_encoder_decoder", False):
        raise FtError(f"{config.model_type} is an encoder-decoder model; ft-stream streams decoder-only causal LMs")
    try:
        with init_empty_weights(include_buffers=False):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    except ValueError as e:
        raise FtError(f"{config.model_type} is not a causal LM transformers can build ({e}); "
                      "ft-stream streams decoder-only causal LMs") from None
    return model.eval()


def _layer_list(model: nn.Module, n_layers: int | None) -> tuple[str, nn.ModuleList]:
    n_layers = n_layers or getattr(model.config, "num_hidden_layers", None)
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.ModuleList) and n_layers and len(m) == n_layers and name]
    if not found:
        raise FtError(f"{type(model).__name__} has no list of {n_layers} decoder layers; ft-stream cannot stream it")
    return found[0]


def decoder_layers(model: nn.Module, n_layers: int | None = None) -> nn.ModuleList:
    """The ModuleList of decoder layers (found by length, not by name), as ``ft_models.decoder_layers``
    means it."""
    return _layer_list(model, n_layers)[1]


def layer_prefixes(model: nn.Module, n_layers: int | None = None) -> list[str]:
    """Each decoder layer's parameter-name prefix, e.g. ``model.layers.3.``."""
    name, layers = _layer_list(model, n_layers)
    return [f"{name}.{i}." for i in range(len(layers))]
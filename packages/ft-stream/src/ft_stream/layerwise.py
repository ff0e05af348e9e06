"""Run a transformers causal LM with only one decoder layer's weights in memory at a time.

The model's own forward does all the work (embedding scale, rotary embeddings, masks, the Cache
object, logit soft-capping), so there is no per-architecture code: the decoder layers start on
the meta device, a forward pre-hook reads a layer's weights from safetensors just before it
runs and a forward hook gives them back just after.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ft_core import FtError
from ft_stream.weights import SafetensorsWeights


def decoder_layers(model: nn.Module, n_layers: int) -> nn.ModuleList:
    """The ModuleList of decoder layers, found by its length rather than by its name."""
    found = [m for _, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m) == n_layers]
    if not found:
        raise FtError(f"{type(model).__name__} has no list of {n_layers} decoder layers; ft-stream cannot stream it")
    return found[0]


def _set_parameter(root: nn.Module, name: str, tensor: torch.Tensor) -> None:
    owner_name, _, attr = name.rpartition(".")
    owner = root.get_submodule(owner_name) if owner_name else root
    owner._parameters[attr] = nn.Parameter(tensor, requires_grad=False)


class LayerwiseModel:
    """A causal LM whose decoder layers are read from disk one at a time during forward.

    Example:
        >>> model = LayerwiseModel("path/to/model-folder")  # doctest: +SKIP
        >>> model.forward(torch.tensor([[1, 2, 3]])).shape  # doctest: +SKIP
        torch.Size([1, 3, 49152])
    """

    def __init__(self, folder: str | Path, dtype: torch.dtype = torch.float32):
        from accelerate import init_empty_weights
        from transformers import AutoConfig, AutoModelForCausalLM

        self.config = AutoConfig.from_pretrained(folder)
        if getattr(self.config, "is_encoder_decoder", False):
            raise FtError(f"{folder}: encoder-decoder models cannot be streamed layer by layer")
        self.dtype = dtype
        self.weights = SafetensorsWeights(folder)
        # Parameters on meta; buffers (rotary inv_freq and the like) computed for real on the CPU.
        with init_empty_weights(include_buffers=False):
            self.model = AutoModelForCausalLM.from_config(self.config, dtype=dtype)
        self.model.eval()
        self.layers = decoder_layers(self.model, self.config.num_hidden_layers)
        layers = set(self.layers)
        self._layer_prefix = {m: name + "." for name, m in self.model.named_modules() if m in layers}
        self._load_resident()
        for layer in self.layers:
            layer.register_forward_pre_hook(self._before_layer)
            layer.register_forward_hook(self._after_layer)

    @classmethod
    def from_source(cls, source: str, dtype: torch.dtype = torch.float32) -> LayerwiseModel:
        """Resolve an ft-models source (alias, folder, .gguf, hub id) and stream it."""
        from ft_models import model_path

        return cls(model_path(source), dtype=dtype)

    def _checkpoint_name(self, name: str) -> str:
        if name in self.weights:
            return name
        tied = getattr(self.model, "_tied_weights_keys", None) or {}
        source = tied.get(name) if isinstance(tied, dict) else None
        if source and source in self.weights:
            return source
        raise FtError(f"{self.weights.folder}: tensor {name} is missing from the checkpoint")

    def _load(self, names: list[str]) -> None:
        """Read parameters ``names`` from disk; tied parameters share one tensor."""
        sources = {name: self._checkpoint_name(name) for name in names}
        tensors = self.weights.load(sorted(set(sources.values())))
        converted = {k: v.to(self.dtype) for k, v in tensors.items()}
        for name, source in sources.items():
            _set_parameter(self.model, name, converted[source])

    def _load_resident(self) -> None:
        in_layers = tuple(self._layer_prefix.values())
        names = [n for n, _ in self.model.named_parameters(remove_duplicate=False) if not n.startswith(in_layers)]
        self._load(names)

    def _before_layer(self, layer: nn.Module, args) -> None:
        prefix = self._layer_prefix[layer]
        self._load([prefix + n for n, _ in layer.named_parameters()])

    def _after_layer(self, layer: nn.Module, args, output) -> None:
        prefix = self._layer_prefix[layer]
        for name, param in list(layer.named_parameters()):
            _set_parameter(self.model, prefix + name, torch.empty_like(param, device="meta"))

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for ``input_ids`` (batch, seq), computed one layer at a time."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

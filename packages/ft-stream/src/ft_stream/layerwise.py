"""A forward pass that holds one decoder layer's weights at a time."""

from __future__ import annotations

from pathlib import Path

import torch
from ft_core import FtError
from torch import nn

from ft_stream._compat import causal_mask, layer_output
from ft_stream.weights import SafetensorsWeights


def _decoder_layers(base: nn.Module, n_layers: int) -> tuple[str, nn.ModuleList]:
    """The ModuleList holding the decoder layers, found by shape rather than by name."""
    lists = [(n, m) for n, m in base.named_children() if isinstance(m, nn.ModuleList) and len(m) == n_layers]
    if len(lists) != 1:
        raise FtError(f"{type(base).__name__}: cannot find its decoder layers; it is not a decoder model ft-stream can stream")
    return lists[0]


class LayerwiseModel:
    """Run a causal LM one decoder layer at a time, reading each layer's weights from disk.

    Example:
        >>> model = LayerwiseModel("path/to/model-folder")  # doctest: +SKIP
        >>> model.forward(torch.tensor([[1, 2, 3]])).shape  # doctest: +SKIP
        torch.Size([1, 3, 49152])
    """

    def __init__(self, folder: str | Path, dtype: torch.dtype = torch.float32):
        from transformers import AutoConfig, AutoModelForCausalLM

        self.config = AutoConfig.from_pretrained(folder)
        if getattr(self.config, "is_encoder_decoder", False):
            raise FtError(f"{folder}: encoder-decoder models cannot be streamed layer by layer")
        self.dtype = dtype
        self.weights = SafetensorsWeights(folder)
        with torch.device("meta"):
            self.skeleton = AutoModelForCausalLM.from_config(self.config, dtype=dtype)
        self.names = {module: name for name, module in self.skeleton.named_modules()}
        self.base = self.skeleton.base_model
        _, self.layers = _decoder_layers(self.base, self.config.num_hidden_layers)
        self.embed = self.base.get_input_embeddings()
        self.lm_head = self.skeleton.get_output_embeddings()
        self.rotary = type(self.base.rotary_emb)(config=self.config)
        self.norm = self._final_norm()

    @classmethod
    def from_source(cls, source: str, dtype: torch.dtype = torch.float32) -> LayerwiseModel:
        """Resolve an ft-models source (alias, folder, .gguf, hub id) and stream it."""
        from ft_models import model_path

        return cls(model_path(source), dtype=dtype)

    def _final_norm(self) -> nn.Module:
        skip = {self.embed, self.layers, self.base.rotary_emb}
        rest = [m for _, m in self.base.named_children() if m not in skip and any(True for _ in m.parameters())]
        if len(rest) != 1:
            raise FtError(f"{type(self.base).__name__}: cannot identify its final norm among {len(rest)} modules")
        return rest[0]

    def _materialize(self, module: nn.Module) -> nn.Module:
        """Give ``module`` real CPU tensors read from the checkpoint."""
        prefix = self.names[module] + "."
        wanted = list(module.state_dict())
        names = [self._checkpoint_name(prefix + k) for k in wanted]
        tensors = self.weights.load(names)
        module.to_empty(device="cpu")
        module.load_state_dict({k: tensors[n].to(self.dtype) for k, n in zip(wanted, names)}, strict=True)
        return module

    def _checkpoint_name(self, name: str) -> str:
        if name in self.weights:
            return name
        tied = getattr(self.skeleton, "_tied_weights_keys", None) or {}
        source = tied.get(name) if isinstance(tied, dict) else None
        if source and source in self.weights:
            return source
        raise FtError(f"{self.weights.folder}: tensor {name} is missing from the checkpoint")

    @staticmethod
    def _release(module: nn.Module) -> None:
        module.to_empty(device="meta")

    def _run(self, module: nn.Module, *args, **kwargs):
        self._materialize(module)
        try:
            return module(*args, **kwargs)
        finally:
            self._release(module)

    def _masks(self, embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor) -> dict:
        from transformers import masking_utils

        masks = {"full_attention": causal_mask(masking_utils.create_causal_mask, self.config, embeds,
                                               attention_mask, None, position_ids)}
        if "sliding_attention" in (getattr(self.config, "layer_types", None) or []):
            masks["sliding_attention"] = causal_mask(masking_utils.create_sliding_window_causal_mask, self.config,
                                                     embeds, attention_mask, None, position_ids)
        return masks

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for ``input_ids`` (batch, seq), computed one layer at a time."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self._run(self.embed, input_ids)
        position_ids = torch.arange(input_ids.shape[1]).unsqueeze(0)
        position_embeddings = self.rotary(hidden, position_ids=position_ids)
        masks = self._masks(hidden, attention_mask, position_ids)
        layer_types = getattr(self.config, "layer_types", None)
        for i, layer in enumerate(self.layers):
            mask = masks[layer_types[i] if layer_types else "full_attention"]
            hidden = layer_output(self._run(layer, hidden_states=hidden, attention_mask=mask, position_ids=position_ids,
                                            position_embeddings=position_embeddings))
        hidden = self._run(self.norm, hidden)
        return self._run(self.lm_head, hidden)

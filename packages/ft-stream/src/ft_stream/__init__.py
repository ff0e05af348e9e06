"""Layer-streaming inference for transformers decoder models.

Example:
    >>> from ft_stream import LayerwiseModel, split
    >>> folder = split("smollm2-135m-instruct")                     # doctest: +SKIP
    >>> model = LayerwiseModel(folder, budget="150MB")              # doctest: +SKIP
"""

from ft_stream import _compat  # noqa: F401  (version guard runs first)
from ft_stream.layerwise import LayerwiseModel, format_size, parse_size
from ft_stream.skeleton import build_skeleton, decoder_layers, layer_prefixes
from ft_stream.split import split
from ft_stream.weights import SafetensorsWeights

__all__ = ["LayerwiseModel", "SafetensorsWeights", "build_skeleton", "decoder_layers", "format_size", "layer_prefixes",
           "parse_size",
           "split"]

"""Layer-streaming inference for transformers decoder models.

Example:
    >>> from ft_stream import LayerwiseModel
    >>> model = LayerwiseModel.from_source("smollm2-135m-instruct")  # doctest: +SKIP
"""

from ft_stream import _compat  # noqa: F401  (version guard runs first)
from ft_stream.layerwise import LayerwiseModel, decoder_layers
from ft_stream.weights import SafetensorsWeights

__all__ = ["LayerwiseModel", "SafetensorsWeights", "decoder_layers"]

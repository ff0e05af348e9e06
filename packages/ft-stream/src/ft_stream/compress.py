"""Decoder layers stored compressed: int8 weights with one scale per output channel.

``ft stream split --compress int8`` stores every weight matrix of a decoder layer (2-d, or 3-d
fused MoE experts) as int8 plus a float32 scale per output row, symmetric: ``w ≈ q * scale`` with
``scale = max|row| / 127``. Norms, biases, embeddings and the LM head stay as they are. A layer
file is then about half its bf16 size, so the disk (and, on a GPU, the host link) moves half the
bytes; the weights are rebuilt in the compute dtype after the read. Per-channel int8 needs no
calibration data and no extra package, and rebuilding is one multiply per weight.

Example:
    >>> import torch
    >>> w = {"mlp.down_proj.weight": torch.randn(8, 16), "input_layernorm.weight": torch.ones(16)}
    >>> packed = compress(w, "int8")
    >>> sorted(packed), packed["mlp.down_proj.weight"].dtype
    (['input_layernorm.weight', 'mlp.down_proj.weight', 'mlp.down_proj.weight.ft_scale'], torch.int8)
    >>> back = decompress(packed, torch.float32)
    >>> bool((back["mlp.down_proj.weight"] - w["mlp.down_proj.weight"]).abs().max() < 0.03)
    True
"""

from __future__ import annotations

import torch

from ft_core import FtError, did_you_mean

METHODS = ("int8",)
SCALE = ".ft_scale"


def check_method(method: str | None) -> str | None:
    """``method`` if ft-stream can store layers that way (None: uncompressed)."""
    if method in (None, "none"):
        return None
    if method not in METHODS:
        raise FtError(f"unknown compression {method!r}{did_you_mean(method, METHODS)}; use {', '.join(METHODS)} "
                      "or leave it out")
    return method


def _compressible(name: str, tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and tensor.dim() >= 2 and not name.endswith(SCALE)


def compress(tensors: dict[str, torch.Tensor], method: str = "int8") -> dict[str, torch.Tensor]:
    """``tensors`` with each weight matrix as int8 and its per-row scale beside it (``name`` +
    ``.ft_scale``)."""
    check_method(method)
    out = {}
    for name, tensor in tensors.items():
        if not _compressible(name, tensor):
            out[name] = tensor
            continue
        w = tensor.float()
        scale = w.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / 127
        out[name] = torch.round(w / scale).clamp_(-127, 127).to(torch.int8).contiguous()
        out[name + SCALE] = scale.contiguous()
    return out


def decompress(tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The weights rebuilt in ``dtype`` (new tensors, on the device the int8 ones are on); other
    tensors come back as they are."""
    out = {}
    for name, tensor in tensors.items():
        if name.endswith(SCALE):
            continue
        scale = tensors.get(name + SCALE)
        out[name] = tensor if scale is None else tensor.to(dtype).mul_(scale.to(device=tensor.device, dtype=dtype))
    return out


def decompress_into(out: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor],
                    dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """``decompress`` into ``out``'s buffers (reused from layer to layer; made where missing or
    shaped otherwise); returns the rebuilt weights and the other tensors as they are."""
    result = {}
    for name, tensor in tensors.items():
        if name.endswith(SCALE):
            continue
        scale = tensors.get(name + SCALE)
        if scale is None:
            result[name] = tensor
            continue
        buffer = out.get(name)
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != dtype or buffer.device != tensor.device:
            buffer = out[name] = torch.empty(tensor.shape, dtype=dtype, device=tensor.device)
        result[name] = buffer.copy_(tensor).mul_(scale)
    return result

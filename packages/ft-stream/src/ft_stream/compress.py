"""Decoder layers stored compressed: int8 weights with one scale per output channel, or NF4.

``ft stream split --compress int8`` stores every weight matrix of a decoder layer (2-d, or 3-d
fused MoE experts) as int8 plus a float32 scale per output row, symmetric: ``w ≈ q * scale`` with
``scale = max|row| / 127``. Norms, biases, embeddings and the LM head stay as they are. A layer
file is then about half its bf16 size, so the disk (and, on a GPU, the host link) moves half the
bytes; the weights are rebuilt in the compute dtype after the read. Per-channel int8 needs no
calibration data and no extra package, and rebuilding is one multiply per weight.

``--compress nf4`` stores them as 4-bit NormalFloat codes (QLoRA's 16 quantiles of a normal
distribution), two per byte, with a float32 absmax per block of 64 weights along the row: a
layer file is about 0.28x its bf16 size. A matrix whose rows are not a multiple of 64 wide is
stored as int8 instead. The codes are rebuilt with plain torch ops (a 16-entry table lookup times
the block's absmax), on the CPU or the GPU, in slices of rows, so the temporaries stay small;
bitsandbytes is not needed.

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

METHODS = ("int8", "nf4")
SCALE = ".ft_scale"
ABSMAX = ".ft_nf4_absmax"
BLOCK = 64
# the NF4 data type of QLoRA (Dettmers et al. 2023): quantiles of N(0, 1) scaled to [-1, 1]
NF4 = (-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0)
_SLICE = 1 << 22  # weights rebuilt at a time: bounds the index temporaries (32 MB of int64)


def check_method(method: str | None) -> str | None:
    """``method`` if ft-stream can store layers that way (None: uncompressed)."""
    if method in (None, "none"):
        return None
    if method not in METHODS:
        raise FtError(f"unknown compression {method!r}{did_you_mean(method, METHODS)}; use {', '.join(METHODS)} "
                      "or leave it out")
    return method


def _compressible(name: str, tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and tensor.dim() >= 2 and not name.endswith((SCALE, ABSMAX))


def _int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = w.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / 127
    return torch.round(w / scale).clamp_(-127, 127).to(torch.int8).contiguous(), scale.contiguous()


def _nf4(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes packed two per byte (first of a pair in the high nibble) and the absmax per block."""
    blocks = w.reshape(*w.shape[:-1], w.shape[-1] // BLOCK, BLOCK)
    absmax = blocks.abs().amax(dim=-1).clamp(min=1e-12)
    table = torch.tensor(NF4)
    codes = torch.bucketize((blocks / absmax[..., None]).reshape(-1), (table[1:] + table[:-1]) / 2).to(torch.uint8)
    packed = (codes[0::2] << 4) | codes[1::2]
    return packed.reshape(*w.shape[:-1], w.shape[-1] // 2).contiguous(), absmax.contiguous()


def compress(tensors: dict[str, torch.Tensor], method: str = "int8") -> dict[str, torch.Tensor]:
    """``tensors`` with each weight matrix as int8 and its per-row scale beside it (``name`` +
    ``.ft_scale``), or as packed NF4 codes and their block absmax (``name`` + ``.ft_nf4_absmax``)."""
    check_method(method)
    out = {}
    for name, tensor in tensors.items():
        if not _compressible(name, tensor):
            out[name] = tensor
        elif method == "nf4" and tensor.shape[-1] % BLOCK == 0:
            out[name], out[name + ABSMAX] = _nf4(tensor.float())
        else:
            out[name], out[name + SCALE] = _int8(tensor.float())
    return out


def _pair_table(dtype: torch.dtype, device) -> torch.Tensor:
    """The two weights (before the block scale) of each of the 256 byte values: one lookup per byte."""
    table = torch.tensor(NF4, dtype=dtype, device=device)
    byte = torch.arange(256, device=device)
    return torch.stack((table[byte >> 4], table[byte & 15]), dim=-1)


def _rebuild_nf4(out: torch.Tensor, packed: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    """Write the weights of ``packed`` codes into ``out`` (dense, shaped like the original), a
    slice of rows at a time."""
    pairs = _pair_table(out.dtype, out.device)
    width = out.shape[-1]
    dense, codes = out.view(-1, width), packed.reshape(-1, width // 2)
    scales = absmax.reshape(-1, width // BLOCK).to(device=out.device, dtype=out.dtype)
    step = max(1, _SLICE // width)
    for start in range(0, dense.shape[0], step):
        index = codes[start:start + step].to(device=out.device, dtype=torch.int32).reshape(-1)
        rows = dense[start:start + step]
        torch.index_select(pairs, 0, index, out=rows.view(-1, 2))
        rows.view(rows.shape[0], -1, BLOCK).mul_(scales[start:start + step, :, None])
    return out


def _rebuild(out: torch.Tensor, tensor: torch.Tensor, tensors: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    if name + SCALE in tensors:
        return out.copy_(tensor).mul_(tensors[name + SCALE].to(device=out.device, dtype=out.dtype))
    return _rebuild_nf4(out, tensor, tensors[name + ABSMAX])


def _dense_shape(tensor: torch.Tensor, tensors: dict, name: str) -> tuple[int, ...]:
    return (*tensor.shape[:-1], tensor.shape[-1] * 2) if name + ABSMAX in tensors else tuple(tensor.shape)


def decompress(tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The weights rebuilt in ``dtype`` (new tensors, on the device the stored ones are on); other
    tensors come back as they are."""
    return decompress_into({}, tensors, dtype)


def decompress_into(out: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor],
                    dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """``decompress`` into ``out``'s buffers (reused from layer to layer; made where missing or
    shaped otherwise); returns the rebuilt weights and the other tensors as they are."""
    result = {}
    for name, tensor in tensors.items():
        if name.endswith((SCALE, ABSMAX)):
            continue
        if name + SCALE not in tensors and name + ABSMAX not in tensors:
            result[name] = tensor
            continue
        shape = _dense_shape(tensor, tensors, name)
        buffer = out.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype or buffer.device != tensor.device:
            buffer = out[name] = torch.empty(shape, dtype=dtype, device=tensor.device)
        result[name] = _rebuild(buffer, tensor, tensors, name)
    return result

"""numba set up for ft's kernels: compiled code cached under ``FT_HOME`` (a machine compiles each
kernel once, a few seconds), threads as many as torch's, and the bf16 bit helpers the kernels share.

bf16 has no numba type: tensors arrive as ``uint16`` views. A value widens to fp32 by shifting its
bits into the high half of a ``uint32`` buffer viewed as ``float32``; it narrows by rounding the
fp32 bits to the nearest even bf16, as torch's ``.to(torch.bfloat16)`` does.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ft_core import ft_home

if "NUMBA_CACHE_DIR" not in os.environ:  # read by numba at import; ours unless the user chose
    os.environ["NUMBA_CACHE_DIR"] = str(ft_home() / "cache" / "numba")

import numba  # noqa: E402

njit = numba.njit
prange = numba.prange

FAST = {"reassoc", "contract"}  # sums may be reordered (vectorized), as torch's are: no other liberty
_HIGH = np.uint32(0xFFFF0000)
_SHIFT = np.uint32(16)


@njit(inline="always", cache=True)
def round_bits(bits):
    """fp32 bits rounded to the nearest even bf16 (low half zero); NaN stays NaN."""
    if (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
        return np.uint32(0x7FC00000)
    return (bits + np.uint32(0x7FFF) + ((bits >> _SHIFT) & np.uint32(1))) & _HIGH


@njit(inline="always", cache=True)
def widen(values, bits):  # pragma: no cover - compiled by numba
    """bf16 ``values`` (a ``uint16`` array or slice) into ``bits``, which then read as float32.
    Index a slice, never ``row[start + j]`` or ``x[i, j]``: numba's negative-index check on a
    computed index stops LLVM from vectorizing the loop (8x slower, measured)."""
    for j in range(values.size):
        bits[j] = np.uint32(values[j]) << _SHIFT


@njit(inline="always", fastmath=FAST, cache=True)
def exp_block(shifted, bits, powers, count):  # pragma: no cover - compiled by numba
    """``exp(shifted[:count])`` (all <= 0) into ``bits`` viewed as float32."""
    out = bits.view(np.float32)
    for j in range(count):
        s = max(shifted[j], np.float32(-87.0))  # exp(-87) ~ 1.6e-38: nothing below adds to a sum
        n = np.floor(s * np.float32(1.4426950408889634) + np.float32(0.5))
        r = s - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        out[j] = p * r * r + r + np.float32(1.0)
        powers[j] = np.int32(n) << np.int32(23)
    as_int = bits.view(np.int32)
    for j in range(count):
        as_int[j] += powers[j]  # times 2^n, in the exponent bits


def as_u16(tensor: torch.Tensor) -> np.ndarray:
    """A contiguous bf16 tensor's storage as a ``uint16`` numpy array (no copy)."""
    return tensor.view(torch.int16).numpy().view(np.uint16)


def use_torch_threads() -> None:
    """As many numba threads as torch uses (at most numba's pool)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))

"""One safetensors file mapped into memory: tensors are views of the mapping, never copies.

The format is a little-endian u64 header length, a JSON header (dtype, shape, byte offsets per
tensor) and the raw bytes. A private (copy-on-write) mapping gives writable-looking buffers that
torch can view without a copy; the weights are never written. Pages come in on first touch or
when ``populate`` pre-faults them (on the prefetch thread), and ``release`` hands them back to the
page cache so the process's resident memory stays within the budget.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from pathlib import Path

import torch

from ft_core import FtError

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)  # Linux 5.14+: pre-fault, reading from disk if needed


def _libc_madvise():
    """libc's madvise through ctypes, which releases the GIL during the call (``mmap.madvise``
    holds it, so pre-faulting on the prefetch thread would stall the computing thread)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _libc_madvise()


def read_header(path: Path) -> tuple[dict, int]:
    """(tensor name → {dtype, shape, data_offsets}, offset of the data) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise FtError(f"{path} is truncated (no safetensors header)")
        (length,) = struct.unpack("<Q", raw)
        header = f.read(length)
    if len(header) < length:
        raise FtError(f"{path} is truncated (header cut short)")
    try:
        entries = json.loads(header)
    except json.JSONDecodeError:
        raise FtError(f"{path} has a corrupted safetensors header") from None
    entries.pop("__metadata__", None)
    return entries, 8 + length


def sha256_file(path: Path, chunk: int = 1 << 23) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class MappedFile:
    """A safetensors file mapped once; ``tensors()`` are views into the mapping."""

    def __init__(self, path: Path):
        self.path = path
        self.entries, self.data_start = read_header(path)
        size = path.stat().st_size
        end = max((e["data_offsets"][1] for e in self.entries.values()), default=0)
        if self.data_start + end > size:
            raise FtError(f"{path} is truncated ({size} bytes, its header needs {self.data_start + end})")
        self.fd = os.open(path, os.O_RDONLY)
        self.map = mmap.mmap(self.fd, size, access=mmap.ACCESS_COPY) if size else None
        self.size = size
        # the mapping's address, for libc madvise (this view also keeps the mapping alive)
        self._bytes = torch.frombuffer(self.map, dtype=torch.uint8) if size else None

    def _advise(self, advice: int) -> None:
        if _MADVISE is not None:
            if _MADVISE(self._bytes.data_ptr(), self.size, advice) != 0:
                import ctypes

                raise OSError(ctypes.get_errno(), "madvise failed")
        else:
            self.map.madvise(advice)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, e in self.entries.items():
            dtype = DTYPES[e["dtype"]]
            start, end = e["data_offsets"]
            count = (end - start) // dtype.itemsize
            flat = torch.frombuffer(self.map, dtype=dtype, count=count, offset=self.data_start + start) if count \
                else torch.empty(0, dtype=dtype)
            out[name] = flat.view(e["shape"])
        return out

    def populate(self) -> None:
        """Fault every page in now (on the prefetch thread), so compute finds them mapped."""
        if self.map is None:
            return
        try:
            self._advise(_POPULATE_READ)
        except (OSError, ValueError):  # an older kernel: ask for readahead instead
            self._advise(mmap.MADV_WILLNEED)

    def release(self) -> None:
        """Drop this file's pages from the process (they stay in the page cache)."""
        if self.map is not None:
            self._advise(mmap.MADV_DONTNEED)

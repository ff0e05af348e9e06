"""QLoRA quantization through ``BitsAndBytesConfig`` only (never the removed ``load_in_4bit``
keyword of ``from_pretrained``). bitsandbytes 0.50 runs 4-bit and 8-bit on CPU as well as CUDA."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from ft_core import FtError

QUANT_TYPES = ("nf4", "fp4")


@dataclass(frozen=True)
class Quantization:
    """``bits`` 4 (``quant_type`` nf4/fp4, ``double_quant``) or 8; ``compute_dtype`` for 4-bit matmuls."""

    bits: int = 4
    quant_type: str = "nf4"
    double_quant: bool = True
    compute_dtype: str = "auto"

    def __post_init__(self):
        if self.bits not in (4, 8):
            raise FtError(f"quantization bits must be 4 or 8, found {self.bits}")
        if self.quant_type not in QUANT_TYPES:
            raise FtError(f"quantization quant_type must be nf4 or fp4, found {self.quant_type!r}")


def require_bitsandbytes(what: str = "quantized loading") -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise FtError(f"{what} needs bitsandbytes: pip install 'ft-models[quant]' (or pip install bitsandbytes)")


def bnb_config(quant: Quantization):
    """The ``transformers.BitsAndBytesConfig`` for ``quant``.

    Example:
        >>> bnb_config(Quantization(bits=4)).bnb_4bit_quant_type  # doctest: +SKIP
        'nf4'
    """
    require_bitsandbytes()
    from transformers import BitsAndBytesConfig

    from ft_models.dtypes import resolve_dtype

    if quant.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant.quant_type,
                              bnb_4bit_use_double_quant=quant.double_quant,
                              bnb_4bit_compute_dtype=resolve_dtype(quant.compute_dtype))

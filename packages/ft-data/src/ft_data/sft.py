"""SFT data: files to a tokenized dataset with assistant-only labels (a thin wrapper kept for
callers of 0.1; new code calls ``build_dataset(..., stage="sft")``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ft_data.dataset import TokenizedData, build_dataset

SFTData = TokenizedData


def build_sft_dataset(tokenizer, files: Sequence[tuple[str | Path, str]], *, cutoff_len: int = 1024,
                      **options) -> TokenizedData:
    """Tokenize ``(path, format)`` files for SFT; see ``build_dataset`` for the options."""
    return build_dataset(tokenizer, files, stage="sft", cutoff_len=cutoff_len, **options)

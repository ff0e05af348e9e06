"""SFT data: files to a tokenized ``datasets.Dataset`` with assistant-only labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ft_core import FtError
from ft_data.loading import load_conversations
from ft_data.masking import IGNORE_INDEX, tokenize_conversation


@dataclass
class SFTData:
    """A tokenized dataset and what happened on the way."""

    dataset: object  # datasets.Dataset with input_ids, attention_mask, labels
    examples: int
    truncated: int
    dropped: int


def build_sft_dataset(tokenizer, files: Sequence[tuple[str | Path, str]], *, cutoff_len: int = 1024) -> SFTData:
    """Tokenize ``(path, format)`` files for SFT.

    An example longer than ``cutoff_len`` is truncated; one whose assistant tokens are all cut
    away is dropped and counted, never silently.
    """
    from datasets import Dataset

    conversations = [c for path, fmt in files for c in load_conversations(path, fmt)]
    raw = Dataset.from_dict({"messages": conversations})

    def tokenize(batch):
        rows = [tokenize_conversation(tokenizer, m) for m in batch["messages"]]
        return {
            "input_ids": [r["input_ids"][:cutoff_len] for r in rows],
            "attention_mask": [r["attention_mask"][:cutoff_len] for r in rows],
            "labels": [r["labels"][:cutoff_len] for r in rows],
            "full_length": [len(r["input_ids"]) for r in rows],
        }

    tokenized = raw.map(tokenize, batched=True, remove_columns=["messages"], desc="tokenizing")
    truncated = sum(n > cutoff_len for n in tokenized["full_length"])
    kept = tokenized.filter(lambda labels: any(t != IGNORE_INDEX for t in labels), input_columns="labels")
    dropped = len(tokenized) - len(kept)
    if len(kept) == 0:
        raise FtError(f"no training example keeps an assistant token within cutoff_len={cutoff_len}; raise cutoff_len")
    return SFTData(kept.remove_columns("full_length"), len(kept), truncated, dropped)

"""Pre-training: documents joined with EOS and cut into blocks of ``cutoff`` tokens."""

from __future__ import annotations

from ft_data.stages._common import KEPT


def tokenize_pt(tokenizer, fmt, records: list[dict], cutoff: int, train_on: str = "all") -> list[tuple[dict, str]]:
    """Blocks are formed within each batch of documents; a tail shorter than a block is dropped
    (and counted by the caller as the difference between tokens in and tokens out)."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stream: list[int] = []
    for ids in tokenizer([r["text"] for r in records], add_special_tokens=False)["input_ids"]:
        stream += ids + eos
    blocks = [stream[i : i + cutoff] for i in range(0, len(stream) - cutoff + 1, cutoff)]
    return [({"input_ids": b, "attention_mask": [1] * cutoff, "labels": list(b)}, KEPT) for b in blocks]

"""Pre-training: documents joined with EOS and cut into blocks of ``cutoff`` tokens.

A document is a text row, or a row without an answer: LLaMA-Factory's pretraining entries
(``"columns": {"prompt": "text"}``) are alpaca rows whose prompt is the document, and, as its pt
stage does, the document is the first message's text (the instruction; not the system prompt)."""

from __future__ import annotations

from ft_data.stages._common import KEPT


def tokenize_pt(tokenizer, fmt, records: list[dict], cutoff: int, train_on: str = "all") -> list[tuple[dict, str]]:
    """Blocks are formed over all the documents given (build_dataset gives them all at once); the
    tail shorter than a block is dropped."""
    stream = _stream(tokenizer, records)
    blocks = [stream[i : i + cutoff] for i in range(0, len(stream) - cutoff + 1, cutoff)]
    return [({"input_ids": b, "attention_mask": [1] * cutoff, "labels": list(b)}, KEPT) for b in blocks]


def corpus_tokens(tokenizer, records: list[dict]) -> int:
    """Tokens in the documents, each with its end-of-sequence token."""
    return len(_stream(tokenizer, records))


def _stream(tokenizer, records: list[dict]) -> list[int]:
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stream: list[int] = []
    for ids in tokenizer([_document(r) for r in records], add_special_tokens=False)["input_ids"]:
        stream += ids + eos
    return stream


def _document(record: dict) -> str:
    if "text" in record:
        return record["text"]
    return next(m["content"] for m in record["prompt"] if m["role"] != "system")

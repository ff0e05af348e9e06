"""SFT: the whole conversation, labels on assistant turns (all, or only the last)."""

from __future__ import annotations

from functools import partial

from ft_data.masking import assistant_segments, tokenize_segments
from ft_data.stages._common import DROPPED, KEPT, TRUNCATED, has_labels


def _segment(fmt, train_on: str, record: dict):
    return assistant_segments(fmt, fmt.apply_system(record["messages"]), tools=record.get("tools"), train_on=train_on)


def _segmented(fmt, records: list[dict], train_on: str):
    return (_segment(fmt, train_on, r) for r in records)


def tokenize_sft(tokenizer, fmt, records: list[dict], cutoff: int, train_on: str = "all") -> list[tuple[dict, str]]:
    out = []
    for row in tokenize_segments(tokenizer, list(_segmented(fmt, records, train_on))):
        status = KEPT
        if len(row["input_ids"]) > cutoff:
            row = {"input_ids": row["input_ids"][:cutoff], "labels": row["labels"][:cutoff]}
            status = TRUNCATED if has_labels(row["labels"]) else DROPPED
        row["attention_mask"] = [1] * len(row["input_ids"])
        out.append((row, status))
    return out


def sft_columns(tokenizer, fmt, records: list[dict], cutoff: int, train_on: str = "all", num_proc: int | None = None):
    """``tokenize_sft`` as flat columns (ft_data.columns): (columns, truncated mask, dropped mask).

    With ``num_proc`` > 1 the conversations are rendered and tokenized in that many processes;
    otherwise in this one, the Rust tokenizer's threads overlapping the rendering."""
    from ft_data.columns import tokenize_in_workers, tokenize_segmented

    if num_proc and num_proc > 1:
        columns = tokenize_in_workers(tokenizer, partial(_segment, fmt, train_on), records, num_proc)
    else:
        columns = tokenize_segmented(tokenizer, _segmented(fmt, records, train_on))
    columns, cut = columns.cut(cutoff)
    dropped = cut & ~columns.trained()
    return columns, cut & ~dropped, dropped

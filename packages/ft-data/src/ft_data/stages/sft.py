"""SFT: the whole conversation, labels on assistant turns (all, or only the last)."""

from __future__ import annotations

from ft_data.masking import assistant_segments, tokenize_segments
from ft_data.stages._common import DROPPED, KEPT, TRUNCATED, has_labels


def tokenize_sft(tokenizer, fmt, records: list[dict], cutoff: int, train_on: str = "all") -> list[tuple[dict, str]]:
    segmented = [assistant_segments(fmt, fmt.apply_system(r["messages"]), tools=r.get("tools"), train_on=train_on)
                 for r in records]
    out = []
    for row in tokenize_segments(tokenizer, segmented):
        status = KEPT
        if len(row["input_ids"]) > cutoff:
            row = {"input_ids": row["input_ids"][:cutoff], "labels": row["labels"][:cutoff]}
            status = TRUNCATED if has_labels(row["labels"]) else DROPPED
        row["attention_mask"] = [1] * len(row["input_ids"])
        out.append((row, status))
    return out

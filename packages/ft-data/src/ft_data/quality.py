"""Rows that are valid but probably not what the user meant: an answer that is empty (only the
end-of-turn marker would be trained) and rows repeated exactly. Counted, never dropped."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ft_data.records import Record, record_kind, trained_turns


def has_empty_answer(record: Record, train_on: str = "all") -> bool:
    """Whether every trained answer of ``record`` is blank (a pair: the chosen one)."""
    kind = record_kind(record)
    if kind == "text":
        return not record["text"].strip()
    if kind == "prompt":  # no answer by design: the online stages sample it
        return False
    messages = record["chosen"] if kind == "preference" else record["messages"]
    turns = trained_turns(messages, "last" if kind == "preference" else train_on)
    return bool(turns) and all(not str(messages[i].get("content") or "").strip() and not messages[i].get("tool_calls")
                               for i in turns)


def count_duplicates(records: Sequence[Record]) -> int:
    """How many records repeat an earlier one exactly."""
    seen: set[str] = set()
    for record in records:
        seen.add(json.dumps(record, sort_keys=True, ensure_ascii=False))
    return len(records) - len(seen)


def quality_counts(records: Sequence[Record], train_on: str = "all") -> dict[str, int]:
    """``{"empty_answers": n, "duplicates": m}`` over ``records``.

    Example:
        >>> rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}] * 2
        >>> quality_counts(rows)
        {'empty_answers': 2, 'duplicates': 1}
    """
    return {"empty_answers": sum(has_empty_answer(r, train_on) for r in records),
            "duplicates": count_duplicates(records)}

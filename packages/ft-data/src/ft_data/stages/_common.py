"""What every stage shares: the cutoff policy and the per-example outcome."""

from __future__ import annotations

from ft_data.masking import IGNORE_INDEX

TRUNCATED, DROPPED, KEPT = "truncated", "dropped", "kept"


def split_budget(prompt_len: int, answer_len: int, cutoff: int) -> tuple[int, int]:
    """(prompt tokens, answer tokens) to keep so that both fit in ``cutoff``.

    The answer keeps all it needs while the prompt leaves room, and never less than half the
    budget when both are long; the prompt is cut from the left (its end, next to the answer, stays).
    """
    if prompt_len + answer_len <= cutoff:
        return prompt_len, answer_len
    answer = min(answer_len, max(cutoff - prompt_len, cutoff // 2))
    return min(prompt_len, cutoff - answer), answer


def has_labels(labels: list[int]) -> bool:
    return any(t != IGNORE_INDEX for t in labels)


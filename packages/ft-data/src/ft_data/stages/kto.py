"""KTO: prompt ids, completion ids (the last assistant turn) and the desirability label."""

from __future__ import annotations

from ft_data.stages._common import KEPT, TRUNCATED, split_budget
from ft_data.stages.pairwise import prompt_and_answer


def tokenize_kto(tokenizer, fmt, records: list[dict], cutoff: int, train_on: str = "all") -> list[tuple[dict, str]]:
    texts = []
    for r in records:
        last = max(i for i, m in enumerate(r["messages"]) if m["role"] == "assistant")
        texts += prompt_and_answer(fmt, r["messages"][:last], r["messages"][last : last + 1], r.get("tools"))
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    out = []
    for r, k in zip(records, range(0, len(ids), 2), strict=True):
        prompt, completion = ids[k], ids[k + 1]
        keep_prompt, keep_answer = split_budget(len(prompt), len(completion), cutoff)
        status = TRUNCATED if (keep_prompt, keep_answer) != (len(prompt), len(completion)) else KEPT
        row = {"prompt_input_ids": prompt[len(prompt) - keep_prompt :], "completion_input_ids": completion[:keep_answer],
               "label": bool(r["label"])}
        out.append((row, status))
    return out

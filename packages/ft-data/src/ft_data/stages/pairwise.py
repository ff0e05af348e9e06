"""Pairwise (rm, dpo, orpo): prompt ids plus chosen and rejected completion ids."""

from __future__ import annotations

from ft_data.masking import assistant_segments
from ft_data.stages._common import KEPT, TRUNCATED, split_budget


def prompt_and_answer(fmt, prompt: list[dict], answer: list[dict], tools=None) -> tuple[str, str]:
    """The prompt text (generation prompt included) and the answer text (its end-of-turn marker included)."""
    segments = assistant_segments(fmt, fmt.apply_system(prompt + answer), tools=tools, train_on="last")
    k = next(i for i, (_, trained) in enumerate(segments) if trained)
    return "".join(t for t, _ in segments[:k]), segments[k][0]


def tokenize_pairwise(tokenizer, fmt, records: list[dict], cutoff: int, train_on: str = "all") -> list[tuple[dict, str]]:
    texts = []
    for r in records:
        prompt, chosen = prompt_and_answer(fmt, r["prompt"], r["chosen"])
        _, rejected = prompt_and_answer(fmt, r["prompt"], r["rejected"])
        texts += [prompt, chosen, rejected]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    out = []
    for k in range(0, len(ids), 3):
        prompt, chosen, rejected = ids[k : k + 3]
        keep_prompt, keep_answer = split_budget(len(prompt), max(len(chosen), len(rejected)), cutoff)
        status = TRUNCATED if keep_prompt < len(prompt) or keep_answer < max(len(chosen), len(rejected)) else KEPT
        row = {"prompt_input_ids": prompt[len(prompt) - keep_prompt :], "chosen_input_ids": chosen[:keep_answer],
               "rejected_input_ids": rejected[:keep_answer]}
        out.append((row, status))
    return out

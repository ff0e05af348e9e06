"""Prompt-only (ppo, grpo): everything before the last assistant turn, with the generation prompt."""

from __future__ import annotations

from ft_data.stages._common import KEPT, TRUNCATED


def _prompt_messages(record: dict) -> list[dict]:
    messages = record.get("messages") or record.get("prompt") or []
    assistants = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    return messages[: assistants[-1]] if assistants and assistants[-1] == len(messages) - 1 else messages


def tokenize_prompt(tokenizer, fmt, records: list[dict], cutoff: int, train_on: str = "all") -> list[tuple[dict, str]]:
    texts = [fmt.render(fmt.apply_system(_prompt_messages(r)), generation_prompt=True, tools=r.get("tools"))
             for r in records]
    out = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        status = TRUNCATED if len(ids) > cutoff else KEPT
        out.append(({"prompt_input_ids": ids[-cutoff:]}, status))
    return out

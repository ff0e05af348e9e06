"""Label masks derived from the chat template itself: render prefixes, diff, map to tokens."""

from __future__ import annotations

from ft_core import FtError

Conversation = list[dict[str, str]]
IGNORE_INDEX = -100


def _render(tokenizer, messages: Conversation, generation_prompt: bool) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer, messages: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant turn.

    A span runs from the end of the prompt that precedes the turn (its generation prompt
    included) to the end of the turn's own rendering, with trailing whitespace after the
    end-of-turn token left out. Works for any template whose renders of prefixes are string
    prefixes of the full render.
    """
    text = _render(tokenizer, messages, generation_prompt=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], generation_prompt=True)
        upto = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not (text.startswith(before) and text.startswith(upto) and len(before) <= len(upto)):
            raise FtError("the chat template renders a conversation differently from its prefixes; "
                          "cannot locate assistant turns for label masking")
        end = len(upto.rstrip()) if upto.rstrip() != before.rstrip() else len(upto)
        spans.append((len(before), max(end, len(before))))
    return text, spans


def tokenize_conversation(tokenizer, messages: Conversation, max_length: int | None = None) -> dict[str, list[int]]:
    """``input_ids``, ``attention_mask`` and ``labels`` (-100 outside assistant turns).

    Example:
        >>> row = tokenize_conversation(tok, [{"role": "user", "content": "Hi"},
        ...                                   {"role": "assistant", "content": "Hello"}])  # doctest: +SKIP
        >>> tok.decode([t for t in row["labels"] if t != -100])  # doctest: +SKIP
        'Hello<|im_end|>'
    """
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = []
    for token, (start, _end) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        inside = any(a <= start < b for a, b in spans)
        labels.append(token if inside else IGNORE_INDEX)
    ids = enc["input_ids"]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}

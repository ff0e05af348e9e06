"""Label masks derived from the chat template itself, never from per-model rules.

Assistant turns are located by two renders with marked contents (ft_data.fast_spans) or, where a
template does not allow that, by rendering the conversation up to each turn (with the generation
prompt) and up to its end, and diffing. The text is then cut into segments at those boundaries and
each segment is tokenized on its own, so a labelled span holds exactly the turn's tokens (as they
are produced at inference, after the prompt) and no token straddles prompt and answer.
"""

from __future__ import annotations

import os

from ft_core import FtError
from ft_data.fast_spans import segments_by_markers
from ft_data.records import Message, trained_turns
from ft_data.templates import ChatFormat, end_of_turn

IGNORE_INDEX = -100
Segments = list[tuple[str, bool]]  # (text, trained)


def _turn_end(full: str, upto: str, start: int, content: str) -> int:
    """Where an assistant turn ends: after its content and the end-of-turn marker that follows it
    (the first non-blank run, e.g. ``<|im_end|>`` or ``\n<|end|>``), trailing whitespace and any
    closing text the template adds after the last turn (Phi-3's final EOS) left out."""
    found = upto.find(content, start) if content else start
    if found < 0 or upto[start:found].strip():
        # the template rewrote the content (e.g. `| trim`; a match past non-blank text is some other
        # occurrence, such as a newline after the marker): end where this turn's render stops agreeing
        return max(start, len(os.path.commonprefix([full, upto]).rstrip()))
    return found + len(content) + len(end_of_turn(upto[found + len(content) :]))


def assistant_segments(fmt: ChatFormat, messages: list[Message], *, tools: list | None = None,
                       train_on: str = "all") -> Segments:
    """The rendered conversation cut into (text, trained) segments.

    ``train_on`` is ``all`` (every assistant turn) or ``last`` (only the final one). Two renders
    with marked contents locate the turns when the template allows it (see ft_data.fast_spans);
    otherwise each turn is found by rendering its prefixes.
    """
    fast = segments_by_markers(fmt, messages, tools=tools, train_on=train_on)
    return fast if fast is not None else segments_by_prefixes(fmt, messages, tools=tools, train_on=train_on)


def segments_by_prefixes(fmt: ChatFormat, messages: list[Message], *, tools: list | None = None,
                         train_on: str = "all") -> Segments:
    """Locate each assistant turn by rendering the conversation up to it: 2 renders per turn."""
    full = fmt.render(messages, tools=tools)
    segments: Segments = []
    cursor = 0
    for i in trained_turns(messages, train_on):
        before = fmt.render(messages[:i], generation_prompt=True, tools=tools)
        upto = fmt.render(messages[: i + 1], tools=tools)
        end = _turn_end(full, upto, len(before), messages[i]["content"])
        if not full.startswith(before) or full[:end] != upto[:end] or len(before) < cursor:
            raise FtError("the chat template renders a conversation differently from its prefixes "
                          "(it rewrites earlier turns), so assistant turns cannot be located for label masking")
        segments += [(full[cursor : len(before)], False), (full[len(before) : end], True)]
        cursor = end
    segments.append((full[cursor:], False))
    return [(text, trained) for text, trained in segments if text]


def encode_texts(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of many texts in one call, straight through the Rust tokenizer when there is one."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def tokenize_segments(tokenizer, batch: list[Segments]) -> list[dict[str, list[int]]]:
    """``input_ids`` and ``labels`` for each segmented example, in one tokenizer call."""
    ids = encode_texts(tokenizer, [text for segments in batch for text, _ in segments])
    out, k = [], 0
    for segments in batch:
        input_ids: list[int] = []
        labels: list[int] = []
        for _, trained in segments:
            piece = ids[k]
            k += 1
            input_ids += piece
            labels += piece if trained else [IGNORE_INDEX] * len(piece)
        out.append({"input_ids": input_ids, "labels": labels})
    return out


def tokenize_conversation(tokenizer, messages: list[Message], max_length: int | None = None, *,
                          fmt: ChatFormat | None = None, train_on: str = "all") -> dict[str, list[int]]:
    """``input_ids``, ``attention_mask`` and ``labels`` (-100 outside assistant turns).

    Example:
        >>> row = tokenize_conversation(tok, [{"role": "user", "content": "Hi"},
        ...                                   {"role": "assistant", "content": "Hello"}])  # doctest: +SKIP
        >>> tok.decode([t for t in row["labels"] if t != -100])  # doctest: +SKIP
        'Hello<|im_end|>'
    """
    fmt = fmt or ChatFormat.for_tokenizer(tokenizer)
    row = tokenize_segments(tokenizer, [assistant_segments(fmt, fmt.apply_system(messages), train_on=train_on)])[0]
    ids, labels = row["input_ids"], row["labels"]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}

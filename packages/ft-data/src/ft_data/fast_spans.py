"""Assistant turns located with two renders instead of two per turn.

Each assistant content is wrapped in private-use marker characters and the conversation is
rendered once with markers and once without. Where stripping the markers gives the plain render
exactly, the marker positions are the contents' positions. Where the template's syntax tree shows
it prints contents untouched (ft_data.template_check), stripping the markers *is* the plain render
and the second render is skipped. What a template writes between the
generation prompt and the content (Mistral's space) and the end-of-turn marker after it are probed
once per template. Anything that does not check out returns None, and the caller falls back to
rendering prefixes, so this is only ever a faster route to the same segments.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ft_data.records import Message, trained_turns
from ft_data.template_check import passes_contents_through
from ft_data.templates import ChatFormat, end_of_turn

OPEN, CLOSE = "\ue000", "\ue001"
_MARKED = re.compile(f"{OPEN}(.*?){CLOSE}", re.DOTALL)
_PROBE = ("\ue002probe question\ue002", "\ue003probe answer\ue003")


@lru_cache(maxsize=64)
def _probe(template: str, tokens: tuple) -> tuple[str, str] | None:
    """(answer prefix, end-of-turn marker) of a template, or None if it does not probe cleanly."""
    fmt = ChatFormat(template, dict(tokens))
    user = [{"role": "user", "content": _PROBE[0]}]
    try:
        prompt = fmt.render(user, generation_prompt=True)
        full = fmt.render([*user, {"role": "assistant", "content": _PROBE[1]}])
    except Exception:  # a template that rejects the probe conversation: use the general route
        return None
    at = full.find(_PROBE[1])
    if not full.startswith(prompt) or at < len(prompt):
        return None
    return full[len(prompt) : at], end_of_turn(full[at + len(_PROBE[1]) :])


def segments_by_markers(fmt: ChatFormat, messages: list[Message], *, tools: list | None = None,
                        train_on: str = "all"):
    """The (text, trained) segments, or None when the marker route cannot vouch for them."""
    probe = _probe(fmt.template, tuple(sorted(fmt.special_tokens.items())))
    if probe is None or any(OPEN in m["content"] or CLOSE in m["content"] for m in messages):
        return None
    prefix, eot = probe
    turns = trained_turns(messages, train_on)
    chosen = set(turns)
    marked = [{**m, "content": f"{OPEN}{m['content']}{CLOSE}"} if i in chosen else m for i, m in enumerate(messages)]
    marked_text = fmt.render(marked, tools=tools)
    spans, plain, cursor = [], [], 0
    for match in _MARKED.finditer(marked_text):
        plain.append(marked_text[cursor : match.start()])
        start = sum(map(len, plain))
        plain.append(match.group(1))
        spans.append((start, start + len(match.group(1))))
        cursor = match.end()
    plain.append(marked_text[cursor:])
    full = "".join(plain) if passes_contents_through(fmt.template) else fmt.render(messages, tools=tools)
    if "".join(plain) != full or len(spans) != len(turns):
        return None
    segments, cursor = [], 0
    for start, end in spans:
        start -= len(prefix)
        if full[start : start + len(prefix)] != prefix or full[end : end + len(eot)] != eot or start < cursor:
            return None
        segments += [(full[cursor:start], False), (full[start : end + len(eot)], True)]
        cursor = end + len(eot)
    segments.append((full[cursor:], False))
    return [(text, trained) for text, trained in segments if text]

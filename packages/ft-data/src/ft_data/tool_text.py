"""Tool calls and tool lists as text, for chat templates that drop them.

A template that reads only each message's role and content (SmolLM2's, ft-data's named ones)
renders an assistant turn that calls a tool as an empty turn, and no tool list: trained on that, a
model learns to answer nothing where it should call. Where a probe render shows that the template
drops them, each call is written into its turn's content as ``<tool_call>`` JSON (the form
Qwen2.5's and Hermes' templates render natively), so it is trained as the answer it is, and the
tool list goes before the first user message (untrained, and kept whatever the system-prompt
policy does). Templates that render them get the records as they are.

Example:
    >>> from ft_data.templates import ChatFormat
    >>> call = {"type": "function", "function": {"name": "now", "arguments": {}}}
    >>> record = {"messages": [{"role": "user", "content": "Time?"},
    ...                        {"role": "assistant", "content": "", "tool_calls": [call]}]}
    >>> inline_tools(record, ChatFormat.named("chatml"))["messages"][1]["content"]
    '<tool_call>\\n{"name": "now", "arguments": {}}\\n</tool_call>'
"""

from __future__ import annotations

import json
from functools import lru_cache

from ft_data.records import Message, Record
from ft_data.templates import ChatFormat

_PROBE = "ft_probe_tool"
_CALL = {"type": "function", "function": {"name": _PROBE, "arguments": {"x": 1}}}
_TOOL = {"type": "function", "function": {"name": _PROBE, "description": "a probe",
                                          "parameters": {"type": "object", "properties": {}}}}


@lru_cache(maxsize=64)
def _shows_probe(template: str, tokens: tuple, tools: bool) -> bool:
    fmt = ChatFormat(template, dict(tokens))
    user = {"role": "user", "content": "q"}
    try:
        text = fmt.render([user], tools=[_TOOL]) if tools else \
            fmt.render([user, {"role": "assistant", "content": "", "tool_calls": [_CALL]}])
    except Exception:  # a template that refuses them renders them no better
        return False
    return _PROBE in text


def renders_tool_calls(fmt: ChatFormat) -> bool:
    """Whether ``fmt``'s template writes an assistant message's ``tool_calls`` into its text."""
    return _shows_probe(fmt.template, tuple(sorted(fmt.special_tokens.items())), False)


def renders_tools(fmt: ChatFormat) -> bool:
    """Whether ``fmt``'s template writes the ``tools`` it is given into its text."""
    return _shows_probe(fmt.template, tuple(sorted(fmt.special_tokens.items())), True)


def call_text(call: dict) -> str:
    function = call.get("function", call)
    return "<tool_call>\n" + json.dumps({"name": function["name"], "arguments": function.get("arguments", {})},
                                        ensure_ascii=False) + "\n</tool_call>"


def tools_text(tools: list) -> str:
    lines = "\n".join(json.dumps(tool.get("function", tool), ensure_ascii=False) for tool in tools)
    return (f"Tools you may call, one JSON object each:\n<tools>\n{lines}\n</tools>\n"
            'To call one, answer with <tool_call>{"name": ..., "arguments": ...}</tool_call>.')


def _calls_inlined(messages: list[Message]) -> list[Message]:
    out = []
    for m in messages:
        if m.get("tool_calls"):
            calls = "\n".join(call_text(c) for c in m["tool_calls"])
            m = {k: v for k, v in m.items() if k != "tool_calls"}
            m["content"] = f"{m['content']}\n{calls}" if m.get("content") else calls
        out.append(m)
    return out


def _tools_inlined(messages: list[Message], tools: list) -> list[Message]:
    first = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    if first is None:
        return messages
    user = {**messages[first], "content": f"{tools_text(tools)}\n\n{messages[first]['content']}"}
    return [*messages[:first], user, *messages[first + 1:]]


def inline_tools(record: Record, fmt: ChatFormat) -> Record:
    """``record`` with the tool calls and tool list ``fmt``'s template would drop written as text
    (a new record; ``record`` itself where nothing is dropped)."""
    keys = [k for k in ("messages", "prompt", "chosen", "rejected") if k in record]
    has_calls = any(m.get("tool_calls") for k in keys for m in record[k])
    has_tools = bool(record.get("tools"))
    drop_calls = has_calls and not renders_tool_calls(fmt)
    drop_tools = has_tools and not renders_tools(fmt)
    if not (drop_calls or drop_tools):
        return record
    out = dict(record)
    if drop_calls:
        out.update({k: _calls_inlined(record[k]) for k in keys})
    if drop_tools:
        opening = "messages" if "messages" in out else "prompt"
        out[opening] = _tools_inlined(out[opening], out.pop("tools"))
    return out

"""Checks shared by the converters; each raises RowError naming the key."""

from __future__ import annotations

from ft_data.formats._errors import RowError
from ft_data.records import ROLES, Message


def text_field(row: dict, key: str, required: bool = True) -> str:
    value = row.get(key)
    if value is None:
        if required:
            raise RowError(f"missing key '{key}'")
        return ""
    if not isinstance(value, str):
        raise RowError(f"key '{key}' must be a string, found {type(value).__name__}")
    return value


def check_messages(messages: list[Message], where: str, need_assistant: bool = True) -> list[Message]:
    """Validate roles and contents; keep tool-call fields the chat templates understand."""
    if not isinstance(messages, list) or not messages:
        raise RowError(f"key '{where}' must be a non-empty list of {{role, content}}")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RowError(f"{where}[{i}] must be an object with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RowError(f"{where}[{i}].role is {role!r}; expected one of {', '.join(ROLES)}")
        if content is None and message.get("tool_calls"):
            content = ""
        if not isinstance(content, str):
            raise RowError(f"{where}[{i}].content must be a string, found {type(content).__name__}")
        clean = {"role": role, "content": content}
        for extra in ("tool_calls", "name", "tool_call_id"):
            if message.get(extra) is not None:
                clean[extra] = message[extra]
        out.append(clean)
    if need_assistant and not any(m["role"] == "assistant" for m in out):
        raise RowError(f"key '{where}' has no assistant message to learn from")
    return out


def check_pair(chosen: list[Message], rejected: list[Message]) -> None:
    if chosen == rejected:
        raise RowError("'chosen' equals 'rejected'; a preference pair needs two different answers")


def kto_label(row: dict) -> bool | None:
    """The desirability label under its TRL (``label``) or LLaMA-Factory (``kto_tag``) name."""
    for key in ("label", "kto_tag"):
        if key in row:
            if not isinstance(row[key], bool):
                raise RowError(f"key '{key}' must be true or false, found {row[key]!r}")
            return row[key]
    return None

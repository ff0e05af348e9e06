"""OpenAI chat rows: ``{"messages": [{"role", "content"}, ...]}``."""

from __future__ import annotations

from ft_data.formats._errors import RowError

ROLES = ("system", "user", "assistant", "tool")


class OpenAIToMessages:
    """Validate and copy an openai ``messages`` list.

    Example:
        >>> OpenAIToMessages()({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})
        [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello'}]
    """

    def __call__(self, row: dict) -> list[dict[str, str]]:
        messages = row.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RowError("key 'messages' must be a non-empty list of {role, content}")
        out = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise RowError(f"messages[{i}] must be an object with 'role' and 'content'")
            role, content = message.get("role"), message.get("content")
            if role not in ROLES:
                raise RowError(f"messages[{i}].role is {role!r}; expected one of {', '.join(ROLES)}")
            if not isinstance(content, str):
                raise RowError(f"messages[{i}].content must be a string, found {type(content).__name__}")
            out.append({"role": role, "content": content})
        if not any(m["role"] == "assistant" for m in out):
            raise RowError("key 'messages' has no assistant message to learn from")
        return out

"""ShareGPT rows: a list of ``{from, value}`` turns with configurable tags (LLaMA-Factory's
``tags``), optional ``system`` and ``tools``; ``chosen``/``rejected`` turns for preference data."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ft_data.formats._checks import check_messages, check_pair, kto_label
from ft_data.formats._errors import RowError
from ft_data.records import Message, Record, prompt_record


@dataclass(frozen=True)
class ShareGPTToMessages:
    """A ShareGPT row to a canonical record; the tag names match LLaMA-Factory's defaults.

    Example:
        >>> row = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}
        >>> ShareGPTToMessages()(row)["messages"][0]
        {'role': 'user', 'content': 'Hi'}
    """

    messages: str = "conversations"
    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"
    system: str = "system"
    tools: str = "tools"

    def _roles(self) -> dict[str, str]:
        return {self.user_tag: "user", self.assistant_tag: "assistant", self.observation_tag: "tool",
                self.function_tag: "assistant", self.system_tag: "system"}

    def _turn(self, turn: object, where: str) -> Message:
        if not isinstance(turn, dict):
            raise RowError(f"{where} must be an object with '{self.role_tag}' and '{self.content_tag}'")
        tag, value = turn.get(self.role_tag), turn.get(self.content_tag)
        roles = self._roles()
        if tag not in roles:
            raise RowError(f"{where}.{self.role_tag} is {tag!r}; expected one of {', '.join(map(repr, roles))}")
        if not isinstance(value, str):
            raise RowError(f"{where}.{self.content_tag} must be a string, found {type(value).__name__}")
        if tag == self.function_tag:
            return {"role": "assistant", "content": "", "tool_calls": _tool_calls(value, where)}
        return {"role": roles[tag], "content": value}

    def _turns(self, row: dict, key: str) -> list[Message]:
        turns = row.get(key)
        if not isinstance(turns, list):
            raise RowError(f"key '{key}' must be a list of turns")
        return [self._turn(t, f"{key}[{i}]") for i, t in enumerate(turns)]

    def __call__(self, row: dict) -> Record:
        messages = self._turns(row, self.messages)
        if row.get(self.system):
            messages.insert(0, {"role": "system", "content": str(row[self.system])})
        if "chosen" in row or "rejected" in row:
            prompt = check_messages(messages, self.messages, need_assistant=False)
            chosen = [self._turn(row.get("chosen"), "chosen")]
            rejected = [self._turn(row.get("rejected"), "rejected")]
            check_pair(chosen, rejected)
            return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        label = kto_label(row)
        checked = check_messages(messages, self.messages, need_assistant=label is not None)
        if not any(m["role"] == "assistant" for m in checked):
            return prompt_record(checked, f"key '{self.messages}' has no assistant message to learn from")
        record: Record = {"messages": checked}
        tools = row.get(self.tools)
        if tools:
            record["tools"] = json.loads(tools) if isinstance(tools, str) else tools
        if label is not None:
            record["label"] = label
        return record


def _tool_calls(value: str, where: str) -> list[dict]:
    """A function_call turn's calls: one JSON object, or a list of them (parallel calls)."""
    try:
        calls = json.loads(value)
        calls = calls if isinstance(calls, list) else [calls]
        return [{"type": "function", "function": {"name": c["name"], "arguments": c.get("arguments", {})}}
                for c in calls]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise RowError(f"{where}: a function call must be JSON with 'name' and 'arguments' (or a list of such)") from None

"""OpenAI / TRL chat rows: ``messages`` (with ``tools`` and tool calls), or conversational
preference rows (``prompt``, ``chosen``, ``rejected``), or KTO rows (``messages``/``prompt`` +
``completion``, ``label``), or prompt-only rows (``prompt`` as messages or a string, or
``messages`` without an assistant turn)."""

from __future__ import annotations

from ft_data.formats._checks import check_messages, check_pair, kto_label
from ft_data.formats._errors import RowError
from ft_data.records import Record, prompt_record


class OpenAIToMessages:
    """Validate and copy an openai-style row.

    Example:
        >>> row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
        >>> OpenAIToMessages()(row)["messages"][1]
        {'role': 'assistant', 'content': 'Hello'}
    """

    def __call__(self, row: dict) -> Record:
        if "chosen" in row or "rejected" in row:
            return self._preference(row)
        label = kto_label(row)
        if "messages" not in row and "prompt" in row:
            prompt = row["prompt"]
            if isinstance(prompt, str):  # TRL's standard prompt-only rows
                prompt = [{"role": "user", "content": prompt}]
            messages = check_messages(prompt, "prompt", need_assistant=False)
            if "completion" not in row:
                return prompt_record(messages, "key 'prompt' has no answer ('completion', or 'chosen' and 'rejected')")
            messages += check_messages(row["completion"], "completion")
        else:
            messages = check_messages(row.get("messages"), "messages", need_assistant=label is not None)
            if not any(m["role"] == "assistant" for m in messages):
                return prompt_record(messages, "key 'messages' has no assistant message to learn from")
        record: Record = {"messages": messages}
        if row.get("tools"):
            if not isinstance(row["tools"], list):
                raise RowError("key 'tools' must be a list of tool (function) schemas")
            record["tools"] = row["tools"]
        if label is not None:
            record["label"] = label
        return record

    @staticmethod
    def _preference(row: dict) -> Record:
        prompt = check_messages(row.get("prompt"), "prompt", need_assistant=False)
        chosen = check_messages(row.get("chosen"), "chosen")
        rejected = check_messages(row.get("rejected"), "rejected")
        check_pair(chosen, rejected)
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}

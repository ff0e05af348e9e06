"""Alpaca rows: instruction, input, output, optional system and history."""

from __future__ import annotations

from ft_data.formats._errors import RowError

Message = dict[str, str]


def _text(row: dict, key: str, required: bool) -> str:
    value = row.get(key)
    if value is None:
        if required:
            raise RowError(f"missing key '{key}' (alpaca rows need 'instruction' and 'output')")
        return ""
    if not isinstance(value, str):
        raise RowError(f"key '{key}' must be a string, found {type(value).__name__}")
    return value


class AlpacaToMessages:
    """``{"instruction", "input", "output", "system", "history"}`` to a conversation.

    Example:
        >>> AlpacaToMessages()({"instruction": "Add", "input": "2+2", "output": "4"})
        [{'role': 'user', 'content': 'Add\\n\\n2+2'}, {'role': 'assistant', 'content': '4'}]
    """

    def __call__(self, row: dict) -> list[Message]:
        instruction = _text(row, "instruction", required=True)
        extra = _text(row, "input", required=False)
        output = _text(row, "output", required=True)
        system = _text(row, "system", required=False)
        messages: list[Message] = [{"role": "system", "content": system}] if system else []
        for turn in row.get("history") or []:
            if not (isinstance(turn, (list, tuple)) and len(turn) == 2):
                raise RowError("key 'history' must be a list of [user, assistant] pairs")
            messages += [{"role": "user", "content": str(turn[0])}, {"role": "assistant", "content": str(turn[1])}]
        user = f"{instruction}\n\n{extra}" if extra else instruction
        return messages + [{"role": "user", "content": user}, {"role": "assistant", "content": output}]

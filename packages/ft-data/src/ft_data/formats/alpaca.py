"""Alpaca rows: instruction, input, output, optional system and history; chosen/rejected for
preference data, kto_tag (or label) for KTO data."""

from __future__ import annotations

from ft_data.formats._checks import check_pair, kto_label, text_field
from ft_data.formats._errors import RowError
from ft_data.records import Message, Record, prompt_record


def _prompt(row: dict) -> list[Message]:
    instruction = text_field(row, "instruction")
    extra = text_field(row, "input", required=False)
    system = text_field(row, "system", required=False)
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    for turn in row.get("history") or []:
        if not (isinstance(turn, (list, tuple)) and len(turn) == 2):
            raise RowError("key 'history' must be a list of [user, assistant] pairs")
        messages += [{"role": "user", "content": str(turn[0])}, {"role": "assistant", "content": str(turn[1])}]
    user = f"{instruction}\n\n{extra}" if extra else instruction
    return messages + [{"role": "user", "content": user}]


def _answer(row: dict, key: str) -> list[Message]:
    return [{"role": "assistant", "content": text_field(row, key)}]


class AlpacaToMessages:
    """An alpaca row to a canonical record.

    Example:
        >>> AlpacaToMessages()({"instruction": "Add", "input": "2+2", "output": "4"})["messages"]
        [{'role': 'user', 'content': 'Add\\n\\n2+2'}, {'role': 'assistant', 'content': '4'}]
    """

    def __call__(self, row: dict) -> Record:
        prompt = _prompt(row)
        if "chosen" in row or "rejected" in row:
            chosen, rejected = _answer(row, "chosen"), _answer(row, "rejected")
            check_pair(chosen, rejected)
            return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        label = kto_label(row)
        if "output" not in row and label is None:
            return prompt_record(prompt, "missing key 'output'")
        messages = prompt + _answer(row, "output")
        return {"messages": messages} if label is None else {"messages": messages, "label": label}

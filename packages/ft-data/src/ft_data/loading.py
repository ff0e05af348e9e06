"""Read JSON / JSONL files into canonical conversations, naming file and row on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from ft_core import FtError, did_you_mean
from ft_data.formats import CONVERTERS, detect_format
from ft_data.formats._errors import RowError

Conversation = list[dict[str, str]]


def read_rows(path: str | Path) -> list[tuple[int, dict]]:
    """(row number, object) pairs from a ``.json`` list or a ``.jsonl`` file; rows count from 1."""
    path = Path(path)
    if not path.is_file():
        raise FtError(f"data file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = [(n, _parse(path, line, n)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        data = _parse(path, text, None)
        if not isinstance(data, list):
            raise FtError(f"{path}: expected a JSON list of rows, found {type(data).__name__}")
        rows = list(enumerate(data, 1))
    for n, row in rows:
        if not isinstance(row, dict):
            raise FtError(f"{path} row {n}: expected a JSON object, found {type(row).__name__}")
    return rows


def _parse(path: Path, text: str, line: int | None):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        where = f"row {line}" if line else f"line {e.lineno} column {e.colno}"
        raise FtError(f"{path} {where}: malformed JSON ({e.msg})") from None


def load_conversations(path: str | Path, format: str = "auto") -> list[Conversation]:
    """Every row of ``path`` as a canonical conversation.

    ``format`` is ``alpaca``, ``openai`` or ``auto`` (detected per file from the first row's keys).
    """
    rows = read_rows(path)
    if not rows:
        raise FtError(f"data file {path} has no rows")
    if format == "auto":
        format = detect_format(rows[0][1]) or ""
        if not format:
            keys = ", ".join(sorted(rows[0][1]))
            raise FtError(f"{path} row {rows[0][0]}: cannot tell the format from keys ({keys}); "
                          "expected 'messages' (openai) or 'instruction'/'output' (alpaca), or set format")
    if format not in CONVERTERS:
        raise FtError(f"unknown data format '{format}'{did_you_mean(format, CONVERTERS)}; "
                      f"known: {', '.join(CONVERTERS)}")
    convert = CONVERTERS[format]
    conversations = []
    for n, row in rows:
        try:
            conversations.append(convert(row))
        except RowError as e:
            raise FtError(f"{path} row {n}: {e}") from None
    return conversations

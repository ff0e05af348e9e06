"""Read JSON / JSONL files into canonical conversations, naming file and row on bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ft_core import FtError, check_file, did_you_mean, read_text
from ft_data.formats import CONVERTERS, detect_format
from ft_data.formats._errors import RowError
from ft_data.records import Record, no_answer, record_kind

Conversation = list[dict[str, str]]

ON_BAD_ROW = ("error", "skip")  # a bad row stops the run, or is skipped and counted


def read_rows(path: str | Path, problems: list[str] | None = None) -> list[tuple[int, dict]]:
    """(row number, object) pairs from a ``.json`` list or a ``.jsonl`` file; rows count from 1.

    A malformed row raises an FtError naming file and row, or, when a ``problems`` list is given,
    is described there and left out (so every bad line of a file can be reported at once).
    """
    path = Path(path)
    text = read_text(path, "data file")
    if path.suffix == ".jsonl":
        rows = [(n, _parse(path, line, n)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        data = _parse(path, text, None)
        if not isinstance(data, list):
            raise FtError(f"{path}: expected a JSON list of rows, found {type(data).__name__}")
        rows = list(enumerate(data, 1))
    good = []
    for n, row in rows:
        if isinstance(row, dict):
            good.append((n, row))
            continue
        error = row if isinstance(row, FtError) else \
            FtError(f"{path} row {n}: expected a JSON object, found {_json_type(row)}")
        if problems is None:
            raise error
        problems.append(str(error))
    return good


def read_table_rows(path: Path) -> list[tuple[int, dict]]:
    """Rows of a csv, parquet or arrow file (through datasets' Arrow readers), numbered from 1."""
    from datasets import Dataset

    readers = {".csv": Dataset.from_csv, ".parquet": Dataset.from_parquet, ".arrow": Dataset.from_file}
    try:
        table = readers[path.suffix](str(path))
    except Exception as e:  # the readers raise many types; name the file either way
        raise FtError(f"{path}: cannot read as {path.suffix[1:]} ({type(e).__name__}: {e})".split("\n")[0]) from None
    return list(enumerate(table.to_list(), 1))


TABLE_SUFFIXES = (".csv", ".parquet", ".arrow")


def read_file_rows(path: str | Path, problems: list[str] | None = None) -> list[tuple[int, dict]]:
    """Rows of a .json/.jsonl file (see ``read_rows``) or of a csv, parquet or arrow table."""
    path = Path(path)
    return read_table_rows(check_file(path, "data file")) if path.suffix in TABLE_SUFFIXES else read_rows(path, problems)


def _json_type(value) -> str:
    return {list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(type(value), "a number")


def _parse(path: Path, text: str, line: int | None):
    """The JSON value of ``text``; a malformed JSONL line comes back as its FtError (the caller
    decides whether it stops the file), a malformed whole file raises."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        where = f"row {line}" if line else f"line {e.lineno} column {e.colno}"
        error = FtError(f"{path} {where}: malformed JSON ({e.msg})")
        if line is None:
            raise error from None
        return error


@dataclass
class Loaded:
    """The records of one file and the rows skipped on the way (only with ``on_bad_row='skip'``)."""

    records: list[Record]
    rows: list[int] = field(default_factory=list)  # the file row of each record
    skipped: list[str] = field(default_factory=list)


def _converter(path: Path, rows: list[tuple[int, dict]], format: str):
    if format == "auto":
        format = detect_format(rows[0][1]) or ""
        if not format:
            keys = ", ".join(sorted(rows[0][1]))
            raise FtError(f"{path} row {rows[0][0]}: cannot tell the format from keys ({keys}); expected 'messages' "
                          "(openai), 'conversations' (sharegpt), 'instruction' (alpaca) or 'text', or set format")
    if format not in CONVERTERS:
        raise FtError(f"unknown data format '{format}'{did_you_mean(format, CONVERTERS)}; known: {', '.join(CONVERTERS)}")
    return CONVERTERS[format]


def load_records(path: str | Path, format: str = "auto", *, on_bad_row: str = "error", converter=None) -> Loaded:
    """Every row of ``path`` as a canonical record (see ft_data.records).

    ``path`` is a .json, .jsonl, .csv, .parquet or .arrow file. ``format`` is alpaca, sharegpt,
    openai, text or auto (detected from the first row's keys);
    ``converter`` overrides it (e.g. a ShareGPTToMessages with other tags). A bad row raises an
    error naming the file, the row and the key, or with ``on_bad_row='skip'`` is skipped and
    listed in ``Loaded.skipped``.
    """
    if on_bad_row not in ON_BAD_ROW:
        raise FtError(f"on_bad_row must be 'error' or 'skip', found {on_bad_row!r}")
    path = Path(path)
    loaded = Loaded([])
    rows = read_file_rows(path, loaded.skipped if on_bad_row == "skip" else None)
    if not rows:
        raise FtError(f"data file {path} has no {'usable ' if loaded.skipped else ''}rows")
    convert_rows(path, rows, converter or _converter(path, rows, format), loaded, on_bad_row)
    return loaded


def convert_rows(path: Path, rows: list[tuple[int, dict]], convert, loaded: Loaded, on_bad_row: str,
                 limit: int | None = None) -> None:
    """Append each row's record to ``loaded`` (at most ``limit`` records in all); a bad row raises
    an error naming file, row and key, or is listed in ``loaded.skipped``."""
    for n, row in rows:
        if limit is not None and len(loaded.records) >= limit:
            return
        try:
            loaded.records.append(convert(row))
            loaded.rows.append(n)
        except RowError as e:
            if on_bad_row == "error":
                raise FtError(f"{path} row {n}: {e}") from None
            loaded.skipped.append(f"{path} row {n}: {e}")


def load_conversations(path: str | Path, format: str = "auto") -> list[Conversation]:
    """The conversations (message lists) of ``path``; rows of another kind are an error."""
    conversations = []
    for n, record in enumerate(load_records(path, format).records, 1):
        if record_kind(record) == "prompt":
            raise FtError(f"{path} row {n}: {no_answer(record)}")
        if "messages" not in record:
            raise FtError(f"{path} row {n}: a {record_kind(record)} row where a conversation was expected")
        conversations.append(record["messages"])
    return conversations

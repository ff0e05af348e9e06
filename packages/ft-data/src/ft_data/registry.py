"""A dataset registry: names mapped to local files or folders, with formatting, column mapping,
ranking and sample limits. LLaMA-Factory's ``dataset_info.json`` is read as is.

    {"my_chat": {"file_name": "chat.json", "formatting": "sharegpt",
                 "columns": {"messages": "conversations"}, "tags": {"user_tag": "human"}}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ft_core import FtError, did_you_mean, read_text
from ft_data.formats import CONVERTERS, AlpacaToMessages, ShareGPTToMessages
from ft_data.formats._errors import RowError
from ft_data.loading import Loaded, convert_rows, read_file_rows
from ft_data.records import Record

SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".arrow")
# LLaMA-Factory column names for alpaca data -> the keys AlpacaToMessages reads
_ALPACA_KEYS = {"prompt": "instruction", "query": "input", "response": "output", "system": "system",
                "history": "history", "chosen": "chosen", "rejected": "rejected", "kto_tag": "kto_tag"}
_SHAREGPT_EXTRA = ("chosen", "rejected", "kto_tag")
_SPEC_KEYS = {"file_name", "formatting", "ranking", "split", "columns", "tags", "num_samples", "max_samples",
              "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name", "subset", "folder"}


@dataclass
class DatasetSpec:
    """One registry entry."""

    name: str
    path: Path
    formatting: str = "alpaca"
    ranking: bool = False
    split: str = "train"
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    max_samples: int | None = None

    def converter(self):
        """The row converter this entry describes: formatting, column mapping, tags; with
        ``ranking`` every row must come out as a preference pair."""
        convert = self._format_converter()
        return _Ranked(convert, self.name) if self.ranking else convert

    def _format_converter(self):
        if self.formatting == "sharegpt":
            names = {"messages": "messages", "system": "system", "tools": "tools"}
            renamed = {names[k]: v for k, v in self.columns.items() if k in names}
            convert = ShareGPTToMessages(**renamed, **self.tags)
            # preference and KTO columns keep ShareGPT's key names; read them through the mapping
            mapping = {k: v for k, v in self.columns.items() if k in _SHAREGPT_EXTRA and v != k}
            return _Renamed(convert, mapping) if mapping else convert
        if self.formatting == "alpaca":
            mapping = {_ALPACA_KEYS[k]: v for k, v in self.columns.items() if k in _ALPACA_KEYS}
            return _Renamed(AlpacaToMessages(), mapping) if mapping else AlpacaToMessages()
        if self.formatting not in CONVERTERS:
            raise FtError(f"dataset '{self.name}': unknown formatting '{self.formatting}'"
                          f"{did_you_mean(self.formatting, CONVERTERS)}")
        return CONVERTERS[self.formatting]


@dataclass(frozen=True)
class _Ranked:
    """A ``ranking`` dataset: rows without a chosen and a rejected answer are bad rows."""

    convert: object
    name: str

    def __call__(self, row: dict) -> Record:
        record = self.convert(row)
        if "chosen" not in record:
            raise RowError(f"dataset '{self.name}' is marked ranking but the row has no chosen and rejected answers")
        return record


@dataclass(frozen=True)
class _Renamed:
    """Read a row through a column mapping (format key -> column name) before converting it."""

    convert: object
    mapping: dict

    def __call__(self, row: dict) -> Record:
        renamed = dict(row)
        for key, column in self.mapping.items():
            if column in row:
                renamed[key] = row[column]
            elif key in ("instruction", "output"):
                raise RowError(f"missing column '{column}' (mapped to '{key}')")
        return self.convert(renamed)


def load_registry(path: str | Path) -> dict[str, DatasetSpec]:
    """Entries of a registry JSON file; ``file_name`` is relative to the registry's folder."""
    path = Path(path)
    try:
        raw = json.loads(read_text(path, "dataset registry"))
    except json.JSONDecodeError as e:
        raise FtError(f"{path} line {e.lineno}: malformed JSON ({e.msg})") from None
    if not isinstance(raw, dict):
        raise FtError(f"{path}: expected a JSON object of dataset name -> entry")
    specs = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise FtError(f"{path}: dataset '{name}': expected an object with file_name, formatting, ...")
        unknown = set(entry) - _SPEC_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise FtError(f"{path}: dataset '{name}': unknown key '{key}'{did_you_mean(key, _SPEC_KEYS)}")
        if "file_name" not in entry:
            hub = "hf_hub_url" in entry or "ms_hub_url" in entry
            raise FtError(f"{path}: dataset '{name}' has no file_name"
                          + (" (hub datasets need a reachable hub; none is here)" if hub else ""))
        if entry.get("split", "train") != "train":
            raise FtError(f"{path}: dataset '{name}': split '{entry['split']}': a local file has the one split "
                          "'train'; point file_name at the file that holds those rows")
        specs[name] = DatasetSpec(
            name=name, path=path.parent / entry["file_name"], formatting=entry.get("formatting", "alpaca"),
            ranking=bool(entry.get("ranking", False)), split=entry.get("split", "train"),
            columns=entry.get("columns", {}), tags=entry.get("tags", {}),
            max_samples=entry.get("max_samples", entry.get("num_samples")))
    return specs


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
        if not files:
            raise FtError(f"data folder {path} has no {', '.join(SUFFIXES)} files")
        return files
    if not path.exists():
        raise FtError(f"data file {path} does not exist")
    return [path]


def load_spec(spec: DatasetSpec, *, on_bad_row: str = "error") -> Loaded:
    """The records of a registry entry (every file of a folder), up to ``max_samples``."""
    convert = spec.converter()
    loaded = Loaded([])
    for path in _files(spec.path):
        rows = read_file_rows(path, loaded.skipped if on_bad_row == "skip" else None)
        convert_rows(path, rows, convert, loaded, on_bad_row, limit=spec.max_samples)
    return loaded

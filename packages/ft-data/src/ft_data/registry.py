"""A dataset registry: names mapped to local files or folders, with formatting, column mapping,
split and sample limits. LLaMA-Factory's ``dataset_info.json`` is read as is.

    {"my_chat": {"file_name": "chat.json", "formatting": "sharegpt",
                 "columns": {"messages": "conversations"}, "tags": {"user_tag": "human"}}}
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from ft_core import FtError, did_you_mean, read_text
from ft_data.formats import CONVERTERS, AlpacaToMessages, ShareGPTToMessages
from ft_data.formats._errors import RowError
from ft_data.loading import Loaded, convert_rows, read_rows
from ft_data.records import Record

SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".arrow")
# LLaMA-Factory column names for alpaca data -> the keys AlpacaToMessages reads
_ALPACA_KEYS = {"prompt": "instruction", "query": "input", "response": "output", "system": "system",
                "history": "history", "chosen": "chosen", "rejected": "rejected", "kto_tag": "kto_tag"}
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
        if self.formatting == "sharegpt":
            names = {"messages": "messages", "system": "system", "tools": "tools"}
            renamed = {names[k]: v for k, v in self.columns.items() if k in names}
            return ShareGPTToMessages(**renamed, **self.tags)
        if self.formatting == "alpaca":
            mapping = {_ALPACA_KEYS[k]: v for k, v in self.columns.items() if k in _ALPACA_KEYS}
            return _Renamed(AlpacaToMessages(), mapping) if mapping else AlpacaToMessages()
        if self.formatting not in CONVERTERS:
            raise FtError(f"dataset '{self.name}': unknown formatting '{self.formatting}'"
                          f"{did_you_mean(self.formatting, CONVERTERS)}")
        return CONVERTERS[self.formatting]


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


def _table_rows(path: Path) -> list[tuple[int, dict]]:
    """Rows of a csv, parquet or arrow file (through datasets' Arrow readers), numbered from 1."""
    from datasets import Dataset

    readers = {".csv": Dataset.from_csv, ".parquet": Dataset.from_parquet, ".arrow": Dataset.from_file}
    try:
        table = readers[path.suffix](str(path))
    except Exception as e:  # the readers raise many types; name the file either way
        raise FtError(f"{path}: cannot read as {path.suffix[1:]} ({type(e).__name__}: {e})".split("\n")[0]) from None
    return list(enumerate(table.to_list(), 1))


def load_spec(spec: DatasetSpec, *, on_bad_row: str = "error") -> Loaded:
    """The records of a registry entry (every file of a folder), up to ``max_samples``."""
    convert = spec.converter()
    loaded = Loaded([])
    for path in _files(spec.path):
        problems = loaded.skipped if on_bad_row == "skip" else None
        rows = read_rows(path, problems) if path.suffix in (".json", ".jsonl") else _table_rows(path)
        convert_rows(path, rows, convert, loaded, on_bad_row, limit=spec.max_samples)
    return loaded


def mix(parts: list[list[Record]], *, strategy: str = "concat", probabilities: list[float] | None = None,
        seed: int = 0) -> list[Record]:
    """Concatenate datasets, or interleave them by sampling with ``probabilities`` until one runs out."""
    if strategy == "concat":
        return [r for part in parts for r in part]
    if strategy != "interleave":
        raise FtError(f"mix strategy must be 'concat' or 'interleave', found {strategy!r}")
    weights = probabilities or [1.0] * len(parts)
    if len(weights) != len(parts) or any(w < 0 for w in weights) or not sum(weights):
        raise FtError(f"interleave needs one non-negative probability per dataset ({len(parts)}), found {weights}")
    rng, cursors, out = random.Random(seed), [0] * len(parts), []
    while True:
        k = rng.choices(range(len(parts)), weights)[0]
        if cursors[k] >= len(parts[k]):
            return out
        out.append(parts[k][cursors[k]])
        cursors[k] += 1


def train_eval_split(records: list[Record], val_size: float | int, seed: int = 0) -> tuple[list[Record], list[Record]]:
    """Shuffle, then hold out ``val_size`` (a fraction < 1 or a count) for evaluation."""
    n = round(len(records) * val_size) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    if not 0 < n < len(records):
        raise FtError(f"val_size {val_size} leaves no train or no eval example out of {len(records)}")
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    return shuffled[n:], shuffled[:n]

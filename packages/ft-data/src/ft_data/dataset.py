"""Files to a tokenized ``datasets.Dataset`` for one training stage, cached on disk.

The cache key covers the files' bytes, the tokenizer, the template and every option, so a second
run with the same inputs loads the Arrow files (memory-mapped) instead of tokenizing again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from ft_core import FtError, atomic_dir, atomic_write_text, check_file, did_you_mean, ft_home
from ft_data.loading import Loaded, load_records
from ft_data.packing import pack_columns, pack_dataset
from ft_data.quality import quality_counts
from ft_data.records import TRAIN_ON, no_answer, record_kind
from ft_data.registry import DatasetSpec, load_spec
from ft_data.stages import COLUMNAR, STAGES
from ft_data.stages._common import DROPPED, TRUNCATED
from ft_data.stages.pt import corpus_tokens
from ft_data.templates import ChatFormat
from ft_data.tool_text import inline_tools

log = logging.getLogger("ft_data")

STATUS = "_status"


@dataclass
class TokenizedData:
    """A tokenized dataset and what happened on the way."""

    dataset: object  # datasets.Dataset
    stage: str
    examples: int  # rows of ``dataset`` (packed rows when packed)
    truncated: int
    dropped: int
    skipped_rows: list[str] = field(default_factory=list)
    empty_answers: int = 0  # rows whose answer is blank: only the end-of-turn marker trains
    duplicates: int = 0  # rows that repeat an earlier one exactly
    from_cache: bool = False
    packed_from: int | None = None  # the examples that packing put into the rows

    def summary(self) -> str:
        count = f"{self.examples} {self.stage} examples" if self.packed_from is None else \
            f"{self.packed_from} {self.stage} examples packed into {self.examples} rows"
        text = (f"{count} ({self.truncated} truncated, {self.dropped} dropped for having "
                f"no trained token within the cutoff, {len(self.skipped_rows)} bad rows skipped)")
        rows = lambda n: f"{n} row{'' if n == 1 else 's'}"  # noqa: E731
        notes = ([f"{rows(self.empty_answers)} with an empty answer (only the end-of-turn marker is trained)"]
                 if self.empty_answers else []) + ([f"{rows(self.duplicates)} repeated exactly"] if self.duplicates else [])
        return text + (f"; note: {', '.join(notes)}" if notes else "")


def _tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


# (path, format), a registry entry, or canonical records already in memory (see ft_data.records)
Source = tuple[str | Path, str] | str | Path | DatasetSpec | list[dict]


def _source_files(source: Source) -> tuple[str, list[Path]]:
    if isinstance(source, list):
        return json.dumps(source, sort_keys=True, ensure_ascii=False), []
    if isinstance(source, DatasetSpec):
        desc = json.dumps(dataclasses.asdict(source), default=str, sort_keys=True)
        if not source.path.exists():
            raise FtError(f"dataset '{source.name}': {source.path} does not exist")
        return desc, (sorted(source.path.iterdir()) if source.path.is_dir() else [source.path])
    return f"{source[1]}", [check_file(source[0], "data file")]


def _cache_key(sources: Sequence[Source], tokenizer, fmt: ChatFormat, options: dict) -> str:
    digest = hashlib.sha256(metadata.version("ft-data").encode())
    for source in sources:
        desc, paths = _source_files(source)
        digest.update(desc.encode())
        for path in paths:
            digest.update(path.read_bytes() if path.is_file() else b"folder")
    digest.update(_tokenizer_fingerprint(tokenizer).encode())
    digest.update(json.dumps([fmt.template, fmt.special_tokens, fmt.system, fmt.default_system, options],
                             sort_keys=True).encode())
    return digest.hexdigest()[:20]


def _load(sources: Sequence[Source], stage: str, on_bad_row: str) -> tuple[list[dict], list[str]]:
    kinds = STAGES[stage][0]
    records, skipped = [], []
    for source in sources:
        if isinstance(source, list):
            path, loaded = "records", Loaded(list(source), rows=list(range(1, len(source) + 1)))
        elif isinstance(source, DatasetSpec):
            path, loaded = source.path, load_spec(source, on_bad_row=on_bad_row)
        else:
            path, loaded = source[0], load_records(source[0], source[1], on_bad_row=on_bad_row)
        skipped += loaded.skipped
        for row, record in zip(loaded.rows, loaded.records, strict=True):
            if record_kind(record) == "prompt" and "prompt" not in kinds:
                raise FtError(f"{path} row {row}: {no_answer(record)}")
            if record_kind(record) not in kinds:
                raise FtError(f"{path} row {row}: stage '{stage}' needs {' or '.join(kinds)} rows, "
                              f"found a {record_kind(record)} row")
            records.append(record)
    if not records:
        raise FtError("no usable rows in the given data")
    return records, skipped


def _with_tools_as_text(records: list[dict], fmt: ChatFormat) -> list[dict]:
    """Tool calls and tool lists the chat template would drop, written into the messages (said once)."""
    out = [inline_tools(r, fmt) for r in records]
    changed = sum(a is not b for a, b in zip(out, records, strict=True))
    if changed:
        log.warning("the chat template drops tool calls or tool lists: in %d rows they are written as text "
                    "(<tool_call> JSON in the answer, the tools before the first user message)", changed)
    return out


def build_dataset(tokenizer, files: Sequence[Source], *, stage: str = "sft", cutoff_len: int = 1024,
                  template: str | None = None, system: str | None = None, default_system: str | None = None,
                  train_on: str = "all", on_bad_row: str = "error", num_proc: int | None = None,
                  packing: bool = False, cache: bool = True) -> TokenizedData:
    """Tokenize ``(path, format)`` files (or bare paths: format ``auto``), registry entries or lists
    of canonical records for
    ``stage`` (pt, sft, rm, dpo, orpo, kto, ppo, grpo); every file is checked before any is read.

    ``packing`` (sft) packs examples into rows of ``cutoff_len`` tokens with restarting
    ``position_ids`` (see ft_data.packing); ``examples`` then counts packed rows and
    ``packed_from`` the examples in them.

    Example:
        >>> data = build_dataset(tok, [("train.jsonl", "auto")], stage="sft", cutoff_len=512)  # doctest: +SKIP
        >>> print(data.summary())  # doctest: +SKIP
        369 sft examples (0 truncated, 0 dropped for having no trained token within the cutoff, 0 bad rows skipped)
    """
    from datasets import load_from_disk

    files = [(f, "auto") if isinstance(f, (str, Path)) else f for f in files]  # a bare path: format from the keys
    if cutoff_len < 1:
        raise FtError(f"cutoff_len must be at least 1, found {cutoff_len}")
    if stage not in STAGES:
        raise FtError(f"unknown stage '{stage}'{did_you_mean(stage, STAGES)}; known: {', '.join(STAGES)}")
    if train_on not in TRAIN_ON:
        raise FtError(f"train_on must be 'all' or 'last', found {train_on!r}")
    fmt = ChatFormat.for_tokenizer(tokenizer, template, system=system, default_system=default_system) \
        if stage != "pt" else ChatFormat("", {})
    if packing and stage != "sft":
        raise FtError(f"packing applies to stage sft (pt is always packed into blocks), not '{stage}'")
    options = {"stage": stage, "cutoff": cutoff_len, "train_on": train_on, "on_bad_row": on_bad_row,
               "packing": packing}
    folder = ft_home() / "data-cache" / _cache_key(files, tokenizer, fmt, options)
    if cache and (folder / "summary.json").is_file():
        summary = json.loads((folder / "summary.json").read_text())
        return TokenizedData(load_from_disk(str(folder / "arrow")), from_cache=True, **summary)
    records, skipped = _load(files, stage, on_bad_row)
    if stage != "pt":
        records = _with_tools_as_text(records, fmt)
    if stage in COLUMNAR:  # flat arrays; the tokenizer overlaps rendering (in this process or in workers)
        kept, counts = _columnar(tokenizer, fmt, records, stage, cutoff_len, train_on, packing, num_proc)
    else:
        kept, counts = _by_rows(tokenizer, fmt, records, stage, cutoff_len, train_on, num_proc)
        if packing and len(kept):
            kept = pack_dataset(kept, cutoff_len)
    if len(kept) == 0 and stage == "pt":
        raise FtError(f"the pt documents hold {corpus_tokens(tokenizer, records)} tokens, fewer than one block of "
                      f"cutoff_len={cutoff_len}; lower cutoff_len or add text")
    if len(kept) == 0:
        raise FtError(f"no {stage} example keeps a trained token within cutoff_len={cutoff_len}; raise cutoff_len")
    summary = {"stage": stage, "examples": len(kept), "truncated": counts[TRUNCATED], "dropped": counts[DROPPED],
               "skipped_rows": skipped, **quality_counts(records, train_on)}
    if packing:
        summary["packed_from"] = sum(len(lengths) for lengths in kept["seq_lengths"])
    if cache:
        with atomic_dir(folder) as tmp:
            kept.save_to_disk(str(tmp / "arrow"))
            atomic_write_text(tmp / "summary.json", json.dumps(summary))
        kept = load_from_disk(str(folder / "arrow"))
    return TokenizedData(kept, **summary)


def _columnar(tokenizer, fmt, records, stage, cutoff_len, train_on, packing, num_proc):
    from datasets import Dataset

    columns, truncated, dropped = COLUMNAR[stage](tokenizer, fmt, records, cutoff_len, train_on, num_proc)
    if dropped.any():
        columns = columns.select(~dropped)
    table = pack_columns(columns, cutoff_len) if packing else columns.to_table()
    counts = Counter({TRUNCATED: int(truncated.sum()), DROPPED: int(dropped.sum())})
    # a fresh fingerprint: datasets would otherwise hash every token to make one
    return (Dataset(table, fingerprint=uuid.uuid4().hex) if table.num_rows else Dataset.from_dict({})), counts


def _by_rows(tokenizer, fmt, records, stage, cutoff_len, train_on, num_proc):
    """Every stage: per-example rows, in worker processes through datasets.map when ``num_proc`` > 1."""
    from datasets import Dataset

    tokenize = STAGES[stage][1]

    def columns_of(batch_records: list[dict]) -> dict[str, list]:
        rows = tokenize(tokenizer, fmt, batch_records, cutoff_len, train_on)
        columns: dict[str, list] = {k: [row[k] for row, _ in rows] for k in (rows[0][0] if rows else {})}
        columns[STATUS] = [status for _, status in rows]
        return columns

    if num_proc and num_proc > 1 and stage != "pt":  # pt's blocks span the whole corpus, not one worker's shard
        raw = Dataset.from_dict({"record": [json.dumps(r, ensure_ascii=False) for r in records]})
        mapped = raw.map(lambda batch: columns_of([json.loads(r) for r in batch["record"]]), batched=True,
                         batch_size=1024, remove_columns=["record"], num_proc=num_proc, keep_in_memory=True,
                         desc=f"tokenizing for {stage}")
    else:  # one process: one pass and one tokenizer call (its Rust threads use every core) beat map's overhead
        mapped = Dataset.from_dict(columns_of(records))
    statuses = mapped[STATUS]
    counts = Counter(statuses)
    kept = mapped.remove_columns(STATUS)
    if counts[DROPPED]:
        kept = kept.select([i for i, s in enumerate(statuses) if s != DROPPED])
    return kept, counts

"""Segmented examples to Arrow token columns in one process, without per-example Python lists.

The Rust tokenizer encodes one chunk of segments on a background thread (it releases the GIL and
uses every core) while Python renders and segments the next chunk. Token ids then go into flat
numpy arrays; labels, truncation and the per-example outcome are array operations, and the Arrow
list columns are built from offsets instead of from millions of Python ints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain, islice

import numpy as np

from ft_data.masking import IGNORE_INDEX, Segments, encode_texts

CHUNK = 4096  # examples per tokenizer call: big enough for its threads, small enough to overlap


@dataclass
class TokenColumns:
    """Flat ``input_ids``/``labels`` with example boundaries at ``offsets`` (length examples + 1)."""

    ids: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def cut(self, cutoff: int) -> tuple[TokenColumns, np.ndarray]:
        """Each example's first ``cutoff`` tokens, and which examples were cut."""
        lengths = self.lengths
        cut = lengths > cutoff
        if not cut.any():
            return self, cut
        keep = _positions(lengths) < cutoff
        kept = np.minimum(lengths, cutoff)
        return TokenColumns(self.ids[keep], self.labels[keep], _offsets(kept)), cut

    def trained(self) -> np.ndarray:
        """Whether each example has at least one labelled token."""
        labelled = np.concatenate([[0], np.cumsum(self.labels != IGNORE_INDEX)])
        return labelled[self.offsets[1:]] > labelled[self.offsets[:-1]]

    def select(self, rows: np.ndarray) -> TokenColumns:
        """The examples at ``rows`` (indices, in that order, or a boolean mask)."""
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows
        lengths = self.lengths[rows]
        offsets = _offsets(lengths)
        tokens = np.arange(offsets[-1]) + np.repeat(self.offsets[rows] - offsets[:-1], lengths)
        return TokenColumns(self.ids[tokens], self.labels[tokens], offsets)

    def to_table(self, attention_mask: bool = True):
        import pyarrow as pa

        offsets = pa.array(self.offsets.astype(np.int32))
        columns = {"input_ids": pa.ListArray.from_arrays(offsets, pa.array(self.ids)),
                   "labels": pa.ListArray.from_arrays(offsets, pa.array(self.labels))}
        if attention_mask:
            columns["attention_mask"] = pa.ListArray.from_arrays(offsets, pa.array(np.ones(len(self.ids), np.int8)))
        return pa.table(columns)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def _positions(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ... restarting at every example."""
    starts = np.repeat(_offsets(lengths)[:-1], lengths)
    return np.arange(int(lengths.sum())) - starts


_WORKER: dict = {}


def _init_worker(tokenizer, segment) -> None:
    import os

    # one tokenizer thread per worker process: the processes are the parallelism (this also keeps
    # tokenizers from warning that it was forked after its threads had run)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER.update(tokenizer=tokenizer, segment=segment)


def _tokenize_job(records: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    part = tokenize_segmented(_WORKER["tokenizer"], map(_WORKER["segment"], records))
    return part.ids, part.labels, part.lengths


def tokenize_in_workers(tokenizer, segment, records: list, num_proc: int, chunk: int = 1024) -> TokenColumns:
    """``tokenize_segmented`` over ``map(segment, records)``, split across ``num_proc`` processes
    (fork where the platform has it, spawn elsewhere); ``segment`` must be picklable."""
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    jobs = [records[i : i + chunk] for i in range(0, len(records), chunk)]
    with multiprocessing.get_context(method).Pool(num_proc, _init_worker, (tokenizer, segment)) as pool:
        parts = pool.map(_tokenize_job, jobs)
    if not parts:
        return TokenColumns(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(1, np.int64))
    return TokenColumns(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                        _offsets(np.concatenate([p[2] for p in parts])))


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def tokenize_segmented(tokenizer, segmented: Iterable[Segments], chunk: int | None = None) -> TokenColumns:
    """Token columns for segmented examples; ``segmented`` is consumed lazily, chunk by chunk,
    so producing the next chunk overlaps the tokenizer's work on the previous one."""
    pending, trained, per_example = [], [], []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ft-tokenize") as pool:
        for examples in _chunks(segmented, chunk or CHUNK):
            texts = [text for segments in examples for text, _ in segments]
            trained += [flag for segments in examples for _, flag in segments]
            per_example += [len(segments) for segments in examples]
            pending.append(pool.submit(encode_texts, tokenizer, texts))
        pieces = [ids for future in pending for ids in future.result()]
    piece_lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    ids = np.fromiter(chain.from_iterable(pieces), dtype=np.int64, count=int(piece_lengths.sum()))
    labels = np.where(np.repeat(np.array(trained, dtype=bool), piece_lengths), ids, IGNORE_INDEX)
    piece_offsets = _offsets(piece_lengths)
    return TokenColumns(ids, labels, piece_offsets[_offsets(np.array(per_example, dtype=np.int64))])

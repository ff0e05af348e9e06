"""Pack tokenized examples into fixed-length rows without cross-contamination.

First-fit decreasing: the longest example goes first into the first row with room (a segment
tree over the rows' free space finds it in O(log n)). ``position_ids`` restart at 0 for every
example: with no attention mask, transformers derives a block-diagonal mask from them under sdpa and
eager. Flash attention reads them only for a batch of one row, so ``varlen_kwargs`` hands it the
sequence boundaries of a whole batch (``cu_seq_lens_*``), as TRL's padding-free collator does. The
first label of every example is ignored, so no example is asked to predict its first token from
another example.
"""

from __future__ import annotations

from ft_data.masking import IGNORE_INDEX


class _FreeSpace:
    """Max-segment-tree over row free space: the first row with at least ``need`` free slots."""

    def __init__(self, rows: int, capacity: int):
        self.size = 1
        while self.size < rows:
            self.size *= 2
        self.tree = [0] * (2 * self.size)
        self.capacity = capacity
        self.opened = 0

    def _set(self, i: int, free: int) -> None:
        i += self.size
        self.tree[i] = free
        while i > 1:
            i //= 2
            self.tree[i] = max(self.tree[2 * i], self.tree[2 * i + 1])

    def take(self, need: int) -> int:
        """Index of the row that receives ``need`` tokens (a new row if none has room)."""
        if self.tree[1] < need:
            row, self.opened = self.opened, self.opened + 1
            self._set(row, self.capacity)
        i = 1
        while i < self.size:
            i = 2 * i if self.tree[2 * i] >= need else 2 * i + 1
        row = i - self.size
        self._set(row, self.tree[i] - need)
        return row


def plan_rows(lengths: list[int], max_length: int) -> list[list[int]]:
    """Example indices per packed row, by first-fit decreasing; every length must be <= max_length."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    space = _FreeSpace(max(1, len(lengths)), max_length)
    rows: list[list[int]] = []
    for i in order:
        row = space.take(lengths[i])
        if row == len(rows):
            rows.append([])
        rows[row].append(i)
    return rows


def pack_examples(examples: list[dict], max_length: int, pad_token_id: int | None = None) -> list[dict]:
    """Rows of up to ``max_length`` tokens with ``input_ids``, ``labels``, ``position_ids`` and
    ``seq_lengths`` (the packed examples' lengths). With ``pad_token_id`` every row is padded to
    exactly ``max_length``, the padding forming its own trailing sequence; otherwise the collator pads."""
    examples = [{"input_ids": e["input_ids"][:max_length], "labels": e["labels"][:max_length]} for e in examples]
    packed = []
    for members in plan_rows([len(e["input_ids"]) for e in examples], max_length):
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        lengths = []
        for i in members:
            e = examples[i]
            ids += e["input_ids"]
            labels += [IGNORE_INDEX] + e["labels"][1:]
            positions += list(range(len(e["input_ids"])))
            lengths.append(len(e["input_ids"]))
        pad = max_length - len(ids) if pad_token_id is not None else 0
        packed.append({"input_ids": ids + [pad_token_id] * pad, "labels": labels + [IGNORE_INDEX] * pad,
                       "position_ids": positions + list(range(pad)), "seq_lengths": lengths})
    return packed


def pack_dataset(dataset, max_length: int):
    """``pack_examples`` for a ``datasets.Dataset`` of ``input_ids``/``labels``, done on the Arrow
    columns with numpy. Rows hold up to ``max_length`` tokens (the collator pads them); columns are
    ``input_ids``, ``labels``, ``position_ids`` and ``seq_lengths``.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from datasets import Dataset

    from ft_data.columns import TokenColumns

    table = dataset.data.table if hasattr(dataset.data, "table") else dataset.data
    if dataset._indices is not None:  # a filtered view: materialize the selected rows first
        table = table.take(dataset._indices.column(0))
    ids = table.column("input_ids").combine_chunks()
    labels = table.column("labels").combine_chunks()
    offsets = ids.offsets.to_numpy().astype(np.int64)
    columns = TokenColumns(pc.list_flatten(ids).to_numpy(zero_copy_only=False).astype(np.int64),
                           pc.list_flatten(labels).to_numpy(zero_copy_only=False).astype(np.int64),
                           offsets - offsets[0])
    return Dataset(pack_columns(columns, max_length)) if len(table) else Dataset(pa.table({}))


def pack_columns(columns, max_length: int):
    """Packed rows (a ``pyarrow.Table``) from ft_data.columns.TokenColumns; see ``pack_dataset``."""
    import numpy as np
    import pyarrow as pa

    lengths = np.minimum(columns.lengths, max_length)
    if (lengths < columns.lengths).any():
        columns, _ = columns.cut(max_length)
    plan = plan_rows(lengths.tolist(), max_length)
    order = np.fromiter((i for row in plan for i in row), dtype=np.int64, count=len(lengths))
    ordered = columns.select(order)
    ordered_lengths = lengths[order]
    starts = ordered.offsets[:-1]
    ids, labels = ordered.ids, ordered.labels.copy()
    labels[starts[ordered_lengths > 0]] = IGNORE_INDEX
    positions = np.arange(len(ids)) - np.repeat(starts, ordered_lengths)
    per_row = np.array([len(row) for row in plan], dtype=np.int64)
    seq_offsets = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)
    token_offsets = pa.array(ordered.offsets[seq_offsets].astype(np.int32))

    def lists(values):
        return pa.ListArray.from_arrays(token_offsets, pa.array(values))

    return pa.table({"input_ids": lists(ids), "labels": lists(labels), "position_ids": lists(positions),
                     "seq_lengths": pa.ListArray.from_arrays(pa.array(seq_offsets), pa.array(ordered_lengths))})


def varlen_kwargs(position_ids) -> dict:
    """transformers' varlen attention arguments for packed rows ``[batch, width]``: every row start
    and every position 0 begins a sequence, counted over the rows laid end to end (flash attention's
    ``cu_seq_lens_q``/``_k`` and ``max_length_q``/``_k``). Without them flash attention treats a
    batch of several packed rows as one sequence per row, and examples attend to each other.

    Example:
        >>> import torch
        >>> kw = varlen_kwargs(torch.tensor([[0, 1, 2, 0, 1], [0, 1, 2, 3, 4]]))
        >>> kw["cu_seq_lens_q"].tolist(), kw["max_length_q"]
        ([0, 3, 5, 10], 5)
    """
    import torch

    starts = position_ids.reshape(-1) == 0
    starts[:: position_ids.size(1)] = True
    total = torch.tensor([starts.numel()], device=position_ids.device)
    cu = torch.cat([starts.nonzero().view(-1), total]).to(torch.int32)
    longest = int(cu.diff().max())
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}

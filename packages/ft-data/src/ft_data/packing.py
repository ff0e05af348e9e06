"""Pack tokenized examples into fixed-length rows without cross-contamination.

First-fit decreasing: the longest example goes first into the first row with room (a segment
tree over the rows' free space finds it in O(log n)). ``position_ids`` restart at 0 for every
example: transformers reads them as sequence boundaries, giving flash-attn varlen kernels and, when
no attention mask is passed, a block-diagonal mask under sdpa and eager. The first label of every
example is ignored, so no example is asked to predict its first token from another example.
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


def pack_examples(examples: list[dict], max_length: int, pad_token_id: int) -> list[dict]:
    """Rows of exactly ``max_length`` tokens with ``input_ids``, ``labels``, ``position_ids`` and
    ``seq_lengths`` (the packed examples' lengths; the padding forms its own trailing sequence)."""
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
        pad = max_length - len(ids)
        packed.append({"input_ids": ids + [pad_token_id] * pad, "labels": labels + [IGNORE_INDEX] * pad,
                       "position_ids": positions + list(range(pad)), "seq_lengths": lengths})
    return packed

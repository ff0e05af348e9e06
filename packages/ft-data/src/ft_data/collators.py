"""Collators: pad token lists into tensors for SFT/PT (plain or packed), pairwise and KTO batches."""

from __future__ import annotations

from dataclasses import dataclass

from ft_data.masking import IGNORE_INDEX

PACKED_TOKENS = "ft_packed_tokens"  # non-padding tokens of a packed batch; a trainer pops it before the forward


def _pad(rows: list[list[int]], value: int, side: str, multiple: int | None):
    import torch

    width = max(len(r) for r in rows)
    if multiple:
        width = -(-width // multiple) * multiple
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            if side == "left":
                out[i, width - len(r):] = torch.tensor(r)
            else:
                out[i, : len(r)] = torch.tensor(r)
    return out


@dataclass
class SFTCollator:
    """``input_ids``/``labels`` (and ``attention_mask``) padded to the batch's longest row.

    Packed rows (with ``position_ids``) get no attention mask, so transformers derives the
    per-example block-diagonal mask from the restarting positions; the batch also carries their
    boundaries for flash attention (``ft_data.packing.varlen_kwargs``) and ``ft_packed_tokens``,
    the count of non-padding tokens, for the trainer to pop. A row's padding continues its last
    example's positions (after its tokens, so no token sees it) instead of forming one-token
    sequences.

    Example:
        >>> batch = SFTCollator(pad_token_id=0)([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
        ...                                      {"input_ids": [8], "labels": [8]}])
        >>> batch["input_ids"].shape, batch["attention_mask"].tolist()
        (torch.Size([2, 8]), [[1, 1, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]])
    """

    pad_token_id: int
    padding_side: str = "right"
    pad_to_multiple_of: int | None = 8
    ignore_index: int = IGNORE_INDEX

    def __call__(self, features: list[dict]) -> dict:
        side, multiple = self.padding_side, self.pad_to_multiple_of
        ids = [f["input_ids"] for f in features]
        batch = {"input_ids": _pad(ids, self.pad_token_id, side, multiple),
                 "labels": _pad([f.get("labels", f["input_ids"]) for f in features], self.ignore_index, side, multiple)}
        if "position_ids" in features[0]:
            import torch

            from ft_data.packing import varlen_kwargs

            width = batch["input_ids"].size(1)
            batch["position_ids"] = torch.tensor([_padded_positions(f["position_ids"], width, side) for f in features])
            batch.update(varlen_kwargs(batch["position_ids"]))
            # nothing else tells padding from tokens in packed rows (no attention mask): the count rides along
            batch[PACKED_TOKENS] = torch.tensor(sum(len(i) for i in ids))
        else:
            batch["attention_mask"] = _pad([[1] * len(i) for i in ids], 0, side, multiple)
        return batch


def _padded_positions(positions: list[int], width: int, side: str) -> list[int]:
    """Right padding continues the last example's positions; left padding is a sequence of its own."""
    pad = width - len(positions)
    if side == "left":
        return list(range(pad)) + list(positions)
    last = positions[-1] if positions else -1
    return list(positions) + list(range(last + 1, last + 1 + pad))


def _joined(prompt: list[int], answer: list[int]) -> tuple[list[int], list[int]]:
    return prompt + answer, [IGNORE_INDEX] * len(prompt) + answer


@dataclass
class PairwiseCollator:
    """A batch of 2B rows: the B chosen sequences, then the B rejected ones (prompt labels ignored)."""

    pad_token_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, features: list[dict]) -> dict:
        rows = [_joined(f["prompt_input_ids"], f[key]) for key in ("chosen_input_ids", "rejected_input_ids")
                for f in features]
        return SFTCollator(self.pad_token_id, pad_to_multiple_of=self.pad_to_multiple_of)(
            [{"input_ids": ids, "labels": labels} for ids, labels in rows])


@dataclass
class KTOCollator:
    """prompt + completion rows with completion-only labels, and the desirability ``label`` tensor."""

    pad_token_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, features: list[dict]) -> dict:
        import torch

        rows = [_joined(f["prompt_input_ids"], f["completion_input_ids"]) for f in features]
        batch = SFTCollator(self.pad_token_id, pad_to_multiple_of=self.pad_to_multiple_of)(
            [{"input_ids": ids, "labels": labels} for ids, labels in rows])
        batch["kto_label"] = torch.tensor([bool(f["label"]) for f in features])
        return batch

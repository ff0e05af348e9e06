"""Padding-free forward passes for TRL's DPO trainer, which pads every chosen and rejected
sequence of a batch to the longest one (TRL 1.16 switched its own ``padding_free`` off).

Hooks on the model repack each right-padded batch into as few rows as fit the longest
sequence, with positions restarting per sequence (transformers then keeps every sequence's
attention to itself), and scatter the per-token outputs of TRL's fused LM head back to the
padded layout, so the trainer's loss code sees exactly the tensors it would have seen.

Example:
    >>> import torch
    >>> plan = pack_plan(torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]]))
    >>> plan.rows, plan.width, plan.row.tolist(), plan.start.tolist()
    (2, 3, [0, 1, 1], [0, 0, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PER_TOKEN = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


@dataclass
class PackPlan:
    """Where each padded sequence goes: ``row[i]``, from column ``start[i]``, ``length[i]`` tokens."""

    rows: int
    width: int
    row: torch.Tensor
    start: torch.Tensor
    length: torch.Tensor


def pack_plan(attention_mask: torch.Tensor) -> PackPlan:
    """First-fit-decreasing: the longest sequences first, each into the first row with room."""
    lengths = attention_mask.sum(dim=1).tolist()
    width = max(lengths)
    free: list[int] = []
    row, start = [0] * len(lengths), [0] * len(lengths)
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        target = next((r for r, room in enumerate(free) if room >= lengths[i]), None)
        if target is None:
            free.append(width)
            target = len(free) - 1
        row[i], start[i] = target, width - free[target]
        free[target] -= lengths[i]
    as_tensor = lambda v: torch.tensor(v, device=attention_mask.device)  # noqa: E731
    return PackPlan(len(free), width, as_tensor(row), as_tensor(start), as_tensor(lengths))


def _token_index(plan: PackPlan, seq_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every padded position (i, j): its packed row and column, and whether it is a real token."""
    j = torch.arange(seq_len, device=plan.row.device).expand(len(plan.row), seq_len)
    real = j < plan.length.unsqueeze(1)
    rows = plan.row.unsqueeze(1).expand_as(j)
    cols = (plan.start.unsqueeze(1) + j).clamp(max=plan.width - 1)
    return rows, cols, real


def pack(kwargs: dict, pad_id: int) -> tuple[dict, PackPlan]:
    """The model's keyword arguments for a right-padded batch, repacked (see the module doc)."""
    mask = kwargs["attention_mask"]
    plan = pack_plan(mask)
    rows, cols, real = _token_index(plan, mask.size(1))
    device = mask.device

    def scatter(values: torch.Tensor, fill: int) -> torch.Tensor:
        out = torch.full((plan.rows, plan.width), fill, dtype=values.dtype, device=device)
        out[rows[real], cols[real]] = values[real]
        return out

    positions = torch.arange(mask.size(1), device=device).expand_as(mask)
    packed = {k: v for k, v in kwargs.items() if k not in ("attention_mask", "input_ids", "labels", "position_ids")}
    packed["input_ids"] = scatter(kwargs["input_ids"], pad_id)
    packed["position_ids"] = _tail_positions(scatter(positions, -1))
    if kwargs.get("labels") is not None:  # a sequence's first token is never predicted from the one before
        packed["labels"] = scatter(kwargs["labels"], -100).masked_fill(packed["position_ids"] == 0, -100)
    return packed, plan


def _tail_positions(positions: torch.Tensor) -> torch.Tensor:
    """A row's unused tail (-1) becomes one more sequence of its own (0, 1, ...), never attended to."""
    tail = positions < 0
    counted = tail.long().cumsum(dim=1) - 1
    return torch.where(tail, counted, positions)


def unpack(output, plan: PackPlan, seq_len: int):
    """The fused head's per-token fields (row, column predicts column + 1) in the padded layout."""
    rows, cols, real = _token_index(plan, seq_len - 1)
    has_next = real & (torch.arange(seq_len - 1, device=real.device) + 1 < plan.length.unsqueeze(1))
    for name in PER_TOKEN:
        value = getattr(output, name, None)
        if value is not None:
            picked = value[rows, cols.clamp(max=value.size(1) - 1)]
            setattr(output, name, picked.masked_fill(~has_next, 0) if name != "label_mask" else picked & has_next)
    return output


def install(model, pad_id: int) -> list:
    """Repack every fused-head call (``labels``, ``fused_lm_head=True``, a 2-d attention mask) of
    ``model``; other calls (generation, plain forwards) pass through unchanged. Returns the hook
    handles (``.remove()`` undoes it)."""
    state: dict = {}

    def before(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if args or not kwargs.get("fused_lm_head") or mask is None or mask.dim() != 2:
            state.clear()
            return None
        packed, plan = pack(kwargs, pad_id)
        state.update(plan=plan, seq_len=mask.size(1))
        return args, packed

    def after(module, args, kwargs, output):
        if not state:
            return None
        plan, seq_len = state.pop("plan"), state.pop("seq_len")
        return unpack(output, plan, seq_len)

    return [model.register_forward_pre_hook(before, with_kwargs=True),
            model.register_forward_hook(after, with_kwargs=True)]

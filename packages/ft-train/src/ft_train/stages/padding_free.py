"""Padding-free forward passes for TRL's DPO trainer, which pads every chosen and rejected
sequence of a batch to the longest one and computes each pair's prompt twice (TRL 1.16 switched
its own ``padding_free`` off).

Hooks on the model repack each right-padded batch into as few rows as fit its longest piece and
scatter the per-token outputs of TRL's fused LM head back to the padded layout, so the trainer's
loss code sees exactly the tensors it would have seen. Two layouts:

- shared prompt (sdpa and eager attention): each pair becomes one piece, its prompt once, then
  the chosen answer, then the rejected one after a copy of the prompt's last token, with a 4-d
  mask that keeps the two answers apart. DPO prompts are often most of the tokens, so this does
  up to half the work.
- plain (flash attention, or pairs whose prompts differ): every sequence is a piece; positions
  restart per piece, which transformers turns into per-sequence attention (flash attention gets the
  pieces' boundaries as ``cu_seq_lens_*``: it reads restarting positions only in a one-row batch).

Example:
    >>> import torch
    >>> plan = pack_plan(torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]]))
    >>> plan.rows, plan.width, plan.row.tolist(), plan.start.tolist()
    (2, 3, [0, 1, 1], [0, 0, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ft_data.packing import varlen_kwargs

VARLEN = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")
PER_TOKEN = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


@dataclass
class PackPlan:
    """Where each piece goes: ``row[i]``, from column ``start[i]``, ``length[i]`` tokens."""

    rows: int
    width: int
    row: torch.Tensor
    start: torch.Tensor
    length: torch.Tensor


def _first_fit_decreasing(lengths: list[int], device) -> PackPlan:
    """The longest pieces first, each into the first row with room; rows as wide as the longest."""
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
    as_tensor = lambda v: torch.tensor(v, device=device)  # noqa: E731
    return PackPlan(len(free), width, as_tensor(row), as_tensor(start), as_tensor(lengths))


def pack_plan(attention_mask: torch.Tensor) -> PackPlan:
    """The plain layout's plan: every (right-padded) sequence is a piece."""
    return _first_fit_decreasing(attention_mask.sum(dim=1).tolist(), attention_mask.device)


@dataclass
class Layout:
    """Where every padded token (i, j) sits in the packed rows, and what a packed token may see."""

    rows: int
    width: int
    row: torch.Tensor  # (batch, seq): packed row of each padded token
    col: torch.Tensor  # (batch, seq): packed column
    real: torch.Tensor  # (batch, seq): a token, not padding
    position: torch.Tensor  # (rows, width): position ids
    mask: torch.Tensor | None  # (rows, 1, width, width) True = attend; None: positions restart per piece


def plain_layout(attention_mask: torch.Tensor) -> Layout:
    plan = pack_plan(attention_mask)
    n, seq = attention_mask.shape
    j = torch.arange(seq, device=attention_mask.device).expand(n, seq)
    real = j < plan.length.unsqueeze(1)
    row = plan.row.unsqueeze(1).expand(n, seq)
    col = (plan.start.unsqueeze(1) + j).clamp(max=plan.width - 1)
    position = torch.full((plan.rows, plan.width), -1, dtype=torch.long, device=j.device)
    position[row[real], col[real]] = j[real]
    tail = position < 0  # a row's unused tail is one more sequence of its own (0, 1, ...)
    position = torch.where(tail, tail.long().cumsum(dim=1) - 1, position)
    return Layout(plan.rows, plan.width, row, col, real, position, None)


def shared_prompt_layout(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         labels: torch.Tensor) -> Layout | None:
    """The shared-prompt layout for TRL's [chosen..., rejected...] batch, or None where a pair's
    two rows do not start with the same prompt (then the plain layout does)."""
    if input_ids.size(0) % 2:
        return None
    pairs, seq = input_ids.size(0) // 2, input_ids.size(1)
    lengths = attention_mask.sum(dim=1)
    answer = labels != -100
    prompt = torch.where(answer.any(dim=1), answer.float().argmax(dim=1), lengths)  # first labelled token
    p_c, p_r = prompt[:pairs], prompt[pairs:]
    same = (p_c == p_r) & (p_c >= 1) & (lengths[:pairs] > p_c) & (lengths[pairs:] > p_r)
    j = torch.arange(seq, device=input_ids.device)
    before = j < (p_c - 1).clamp(min=0).unsqueeze(1)
    if not bool(same.all()) or not bool(((input_ids[:pairs] == input_ids[pairs:]) | ~before).all()):
        return None
    len_c, len_r = lengths[:pairs], lengths[pairs:]
    plan = _first_fit_decreasing((len_c + len_r - p_c + 1).tolist(), input_ids.device)
    start = plan.start.unsqueeze(1)
    shared = j < (p_c - 1).unsqueeze(1)  # the prompt but its last token, computed once
    col_c = start + j
    col_r = torch.where(shared, start + j, start + len_c.unsqueeze(1) + j - p_c.unsqueeze(1) + 1)
    row = torch.cat([plan.row, plan.row]).unsqueeze(1).expand(2 * pairs, seq)
    col = torch.cat([col_c, col_r]).clamp(max=plan.width - 1)
    real = j < lengths.unsqueeze(1)
    # each packed token: its pair, branch (0 shared prompt, 1 chosen, 2 rejected) and position
    group = -2 - torch.arange(plan.width, device=j.device).expand(plan.rows, plan.width).clone()  # alone
    branch = torch.zeros(plan.rows, plan.width, dtype=torch.long, device=j.device)
    position = torch.zeros(plan.rows, plan.width, dtype=torch.long, device=j.device)
    pair = torch.arange(pairs, device=j.device).repeat(2).unsqueeze(1).expand(2 * pairs, seq)
    side = torch.cat([torch.ones(pairs, seq, dtype=torch.long), 2 * torch.ones(pairs, seq, dtype=torch.long)])
    side = torch.where(torch.cat([shared, shared]), 0, side.to(j.device))
    r, c = row[real], col[real]
    group[r, c], branch[r, c], position[r, c] = pair[real], side[real], j.expand(2 * pairs, seq)[real]
    same_pair = group.unsqueeze(2) == group.unsqueeze(1)
    earlier = position.unsqueeze(1) <= position.unsqueeze(2)
    visible = (branch.unsqueeze(1) == 0) | (branch.unsqueeze(1) == branch.unsqueeze(2))
    mask = (same_pair & earlier & visible).unsqueeze(1)
    return Layout(plan.rows, plan.width, row, col, real, position, mask)


def pack(kwargs: dict, pad_id: int, shared: bool = True) -> tuple[dict, Layout]:
    """The model's keyword arguments for a right-padded batch, repacked (see the module doc)."""
    ids, mask, labels = kwargs["input_ids"], kwargs["attention_mask"], kwargs.get("labels")
    layout = (shared_prompt_layout(ids, mask, labels) if shared and labels is not None else None) \
        or plain_layout(mask)
    real, r, c = layout.real, layout.row[layout.real], layout.col[layout.real]

    def scatter(values: torch.Tensor, fill: int) -> torch.Tensor:
        out = torch.full((layout.rows, layout.width), fill, dtype=values.dtype, device=values.device)
        out[r, c] = values[real]
        return out

    packed = {k: v for k, v in kwargs.items() if k not in ("attention_mask", "input_ids", "labels", "position_ids", *VARLEN)}
    packed["input_ids"] = scatter(ids, pad_id)
    packed["position_ids"] = layout.position
    if layout.mask is not None:
        packed["attention_mask"] = layout.mask
    else:
        packed.update(varlen_kwargs(layout.position))
    if labels is not None:  # a piece's first token is never predicted from the token before it
        packed["labels"] = scatter(labels, -100).masked_fill(layout.position == 0, -100)
    return packed, layout


def unpack(output, layout: Layout):
    """The fused head's per-token fields (row, column predicts column + 1) in the padded layout."""
    row, col, real = layout.row[:, :-1], layout.col[:, :-1], layout.real
    has_next = real[:, :-1] & real[:, 1:] & (layout.row[:, 1:] == row) & (layout.col[:, 1:] == col + 1)
    for name in PER_TOKEN:
        value = getattr(output, name, None)
        if value is not None:
            picked = value[row, col.clamp(max=value.size(1) - 1)]
            setattr(output, name, picked.masked_fill(~has_next, 0) if name != "label_mask" else picked & has_next)
    return output


def install(model, pad_id: int) -> list:
    """Repack every fused-head call (``labels``, ``fused_lm_head=True``, a 2-d attention mask) of
    ``model``; other calls (generation, plain forwards) pass through unchanged. Returns the hook
    handles (``.remove()`` undoes it)."""
    state: dict = {}
    attention = str(getattr(getattr(model, "config", None), "_attn_implementation", "") or "")
    shared = not attention.startswith("flash")  # flash attention takes no 4-d mask

    def before(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if args or not kwargs.get("fused_lm_head") or mask is None or mask.dim() != 2:
            state.clear()
            return None
        packed, state["layout"] = pack(kwargs, pad_id, shared)
        return args, packed

    def after(module, args, kwargs, output):
        return unpack(output, state.pop("layout")) if state else None

    return [model.register_forward_pre_hook(before, with_kwargs=True),
            model.register_forward_hook(after, with_kwargs=True)]

import pytest
import torch
from conftest import tiny_config
from hypothesis import given
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM

from ft_data import KTOCollator, PairwiseCollator, SFTCollator, pack_examples, plan_rows, varlen_kwargs


def test_first_fit_decreasing_on_a_known_case():
    assert plan_rows([5, 4, 3, 3, 2, 1], 8) == [[0, 2], [1, 3, 5], [4]]


@given(st.lists(st.integers(1, 32), min_size=1, max_size=200))
def test_every_example_lands_once_and_rows_fit(lengths):
    rows = plan_rows(lengths, 32)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 32 for r in rows)
    # first fit never leaves two rows at most half full (the later one's first example would have fitted)
    assert sum(sum(lengths[i] for i in r) <= 16 for r in rows) <= 1


def examples(seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (11, 7, 13, 5, 9, 3):
        ids = torch.randint(3, 256, (n,), generator=g).tolist()
        labels = [-100] * (n // 3) + ids[n // 3:]  # a prompt part without labels
        out.append({"input_ids": ids, "labels": labels})
    return out


def per_token_loss(model, ids, positions=None, mask=None):
    # use_cache=False as in training: with a cache, transformers does not read packed positions
    with torch.no_grad():
        logits = model(input_ids=ids, position_ids=positions, attention_mask=mask, use_cache=False).logits
    return torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="none")


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_forward_gives_each_example_its_unpacked_loss(attn):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(), dtype=torch.float32, attn_implementation=attn).eval()
    data = examples()
    rows = pack_examples(data, max_length=24, pad_token_id=0)
    assert len(rows) < len(data) and all(len(r["input_ids"]) == 24 for r in rows)
    found = {}
    for row in rows:
        ids = torch.tensor([row["input_ids"]])
        batch = SFTCollator(pad_token_id=0)([row])
        assert "attention_mask" not in batch  # packed: boundaries come from position_ids
        losses = per_token_loss(model, ids, positions=batch["position_ids"])
        start = 0
        for n in row["seq_lengths"]:
            labels = row["labels"][start : start + n]
            mask = torch.tensor([lab != -100 for lab in labels[1:]])
            found[tuple(row["input_ids"][start : start + n])] = losses[start : start + n - 1][mask].sum()
            start += n
    for e in data:
        alone = per_token_loss(model, torch.tensor([e["input_ids"]]))
        mask = torch.tensor([lab != -100 for lab in e["labels"][1:]])
        torch.testing.assert_close(found[tuple(e["input_ids"])], alone[mask].sum(), atol=1e-5, rtol=1e-5)


def test_contamination_would_show():
    """Sanity check of the test above: without restarting positions the losses differ."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(), dtype=torch.float32).eval()
    a, b = examples()[:2]
    ids = torch.tensor([a["input_ids"] + b["input_ids"]])
    joined = per_token_loss(model, ids)[len(a["input_ids"]):].sum()
    alone = per_token_loss(model, torch.tensor([b["input_ids"]])).sum()
    assert not torch.allclose(joined, alone, atol=1e-3)


def flash_like_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                         cu_seq_lens_q=None, **kwargs):
    """What flash attention does with a batch that has no padding mask: varlen attention over the
    rows laid end to end when given ``cu_seq_lens_q``; otherwise causal over each whole row."""
    sdpa = torch.nn.functional.scaled_dot_product_attention
    b, h, width, d = query.shape
    if cu_seq_lens_q is None:
        return sdpa(query, key, value, is_causal=True, scale=scaling, enable_gqa=True).transpose(1, 2), None
    flat = [t.transpose(1, 2).reshape(b * width, t.size(1), d).split(cu_seq_lens_q.diff().tolist()) for t in (query, key, value)]
    out = [sdpa(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True, scale=scaling, enable_gqa=True)
           for q, k, v in zip(*flat, strict=True)]
    return torch.cat([o.transpose(0, 1) for o in out]).view(b, width, h, d), None


@pytest.fixture
def flash_like_model():
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

    AttentionInterface.register("varlen_probe", flash_like_attention)
    AttentionMaskInterface.register("varlen_probe", flash_attention_mask)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config(), dtype=torch.float32, attn_implementation="varlen_probe").eval()


@pytest.mark.parametrize("boundaries", [True, False])
def test_a_batch_of_packed_rows_keeps_examples_apart_under_flash_attention(flash_like_model, boundaries):
    """Flash attention reads restarting positions only in a one-row batch: a batch of packed rows
    needs the collator's boundaries, or each row is one sequence (shown by the False case)."""
    data = examples()
    rows = pack_examples(data, max_length=24)
    batch = SFTCollator(pad_token_id=0)(rows)
    assert batch["input_ids"].size(0) > 1 and batch["input_ids"].size(1) == 24
    kwargs = {k: batch[k] for k in ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")} if boundaries else {}
    with torch.no_grad():
        logits = flash_like_model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                                  **kwargs).logits
    found = {}
    for r, row in enumerate(rows):
        start = 0
        for n in row["seq_lengths"]:
            found[tuple(row["input_ids"][start:start + n])] = logits[r, start:start + n]
            start += n
    alone = {tuple(e["input_ids"]): flash_like_model(input_ids=torch.tensor([e["input_ids"]]), use_cache=False).logits[0]
             for e in data}
    apart = all(torch.allclose(found[key], alone[key], atol=1e-5) for key in alone)
    assert apart == boundaries


def test_packed_batch_boundaries_and_padding_positions():
    rows = [{"input_ids": [1, 2, 3, 4, 5], "labels": [-100, 2, 3, -100, 5], "position_ids": [0, 1, 2, 0, 1]},
            {"input_ids": [6, 7], "labels": [-100, 7], "position_ids": [0, 1]}]
    batch = SFTCollator(pad_token_id=0)(rows)
    # the padding continues the row's last example (after its tokens: nothing sees it), no one-token sequences
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6, 7]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 8, 16] and batch["max_length_q"] == 8
    assert batch["cu_seq_lens_q"].dtype == torch.int32 and batch["cu_seq_lens_k"] is batch["cu_seq_lens_q"]
    left = SFTCollator(pad_token_id=0, padding_side="left")(rows)
    assert left["position_ids"][1].tolist() == [0, 1, 2, 3, 4, 5, 0, 1]  # left padding: a sequence of its own
    assert left["cu_seq_lens_q"].tolist() == [0, 3, 6, 8, 14, 16]
    assert varlen_kwargs(torch.tensor([[3, 4, 0, 1]]))["cu_seq_lens_q"].tolist() == [0, 2, 4]  # a row start is a start


def test_sft_collator_pads_to_multiple_and_left():
    batch = SFTCollator(pad_token_id=9, padding_side="left", pad_to_multiple_of=4)(
        [{"input_ids": [1, 2, 3, 4, 5], "labels": [-100, 2, 3, 4, 5]}, {"input_ids": [6], "labels": [6]}])
    assert batch["input_ids"].tolist() == [[9, 9, 9, 1, 2, 3, 4, 5], [9, 9, 9, 9, 9, 9, 9, 6]]
    assert batch["labels"][1].tolist() == [-100] * 7 + [6]
    assert batch["attention_mask"].sum(1).tolist() == [5, 1]


def test_pairwise_and_kto_collators():
    pair = {"prompt_input_ids": [1, 2], "chosen_input_ids": [3], "rejected_input_ids": [4, 5]}
    batch = PairwiseCollator(pad_token_id=0, pad_to_multiple_of=None)([pair])
    assert batch["input_ids"].tolist() == [[1, 2, 3, 0], [1, 2, 4, 5]]
    assert batch["labels"].tolist() == [[-100, -100, 3, -100], [-100, -100, 4, 5]]
    kto = KTOCollator(pad_token_id=0, pad_to_multiple_of=None)(
        [{"prompt_input_ids": [1], "completion_input_ids": [2], "label": False}])
    assert kto["labels"].tolist() == [[-100, 2]] and kto["kto_label"].tolist() == [False]


def test_arrow_packing_of_a_filtered_dataset_matches_the_list_route():
    from datasets import Dataset

    from ft_data import pack_dataset

    data = examples()
    view = Dataset.from_list(data).select([0, 2, 3, 5])  # an indices mapping, as after dropping rows
    expected = pack_examples([data[i] for i in (0, 2, 3, 5)], 24)
    assert pack_dataset(view, 24).to_list() == expected

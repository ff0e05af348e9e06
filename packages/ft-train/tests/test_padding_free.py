"""Padding-free DPO forwards give the padded forward's per-token log-probs (and gradients)."""

import pytest
import torch

from ft_train.stages import padding_free, plain_head


def padded_batch(lengths, width, vocab=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (len(lengths), width), generator=g)
    mask = (torch.arange(width) < torch.tensor(lengths).unsqueeze(1)).long()
    ids = ids.masked_fill(mask == 0, 0)
    labels = ids.masked_fill(torch.arange(width) < 3, -100).masked_fill(mask == 0, -100)  # a 3-token prompt
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_sequences_share_rows_first_fit_decreasing():
    plan = padding_free.pack_plan(padded_batch([9, 4, 5, 3, 9, 2], 9)["attention_mask"])
    assert (plan.rows, plan.width) == (4, 9)  # 32 tokens: 4 rows of 9 is the least there can be
    assert plan.row.tolist() == [0, 2, 2, 3, 1, 3] and plan.start.tolist() == [0, 5, 0, 0, 0, 3]


def test_packed_positions_restart_and_the_tail_is_its_own_sequence():
    packed, plan = padding_free.pack(padded_batch([4, 2, 1], 4), pad_id=0)
    assert packed["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 0, 0]]
    assert "attention_mask" not in packed and packed["labels"][1].tolist() == [-100] * 4
    # flash attention reads restarting positions only in a one-row batch: the pieces' boundaries ride along
    assert packed["cu_seq_lens_q"].tolist() == [0, 4, 6, 7, 8] and packed["max_length_k"] == 4


@pytest.fixture(scope="module")
def model():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    config = AutoConfig.for_model("llama", vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
    base = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    add_fused_lm_head(base, outputs=("log_probs", "entropy", "mean_logits", "log_sum_sq_probs"))
    peft = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    return peft


def pair_batch(prompts, chosen, rejected, vocab=256, seed=0):
    """TRL's DPO batch: [prompt + chosen rows..., prompt + rejected rows...], right-padded,
    labels on the answers only."""
    g = torch.Generator().manual_seed(seed)
    rows, labelled = [], []
    for answers in (chosen, rejected):
        for i, (p, a) in enumerate(zip(prompts, answers, strict=True)):
            prompt = torch.randint(3, vocab, (p,), generator=torch.Generator().manual_seed(100 + i))
            rows.append(torch.cat([prompt, torch.randint(3, vocab, (a,), generator=g)]))
            labelled.append(p)
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = r, 1
    labels = ids.masked_fill(mask == 0, -100).masked_fill(torch.arange(width) < torch.tensor(labelled)[:, None], -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_pairs_share_their_prompt_in_one_piece():
    batch = pair_batch([10, 4, 7], [3, 5, 2], [6, 1, 2])
    layout = padding_free.shared_prompt_layout(batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert layout is not None and layout.width == (10 + 3) + (10 + 6) - 10 + 1  # pair 0: prompt once, both answers, 1 copy
    assert layout.rows * layout.width < 6 * batch["input_ids"].size(1)
    other = dict(batch, input_ids=batch["input_ids"].clone())
    other["input_ids"][3, 0] += 1  # pair 0's rejected row starts with another prompt
    assert padding_free.shared_prompt_layout(other["input_ids"], other["attention_mask"], other["labels"]) is None


def forward(model, batch, packed: bool):
    handles = padding_free.install(model, pad_id=0) if packed else []
    try:
        return model(**batch, fused_lm_head=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()


def test_log_probs_entropy_and_gradients_equal_the_padded_forward(model):
    batch = padded_batch([17, 5, 11, 23, 3, 23, 8, 12], 23)
    padded = forward(model, batch, packed=False)
    lora = [p for p in model.parameters() if p.requires_grad]
    want = torch.autograd.grad(padded.log_probs.sum(), lora)
    packed = forward(model, batch, packed=True)
    got = torch.autograd.grad(packed.log_probs.sum(), lora)
    assert packed.log_probs.shape == padded.log_probs.shape == (8, 22)
    torch.testing.assert_close(packed.log_probs, padded.log_probs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed.entropy, padded.entropy, atol=1e-5, rtol=1e-4)
    assert packed.label_mask.tolist() == padded.label_mask.tolist()
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_shared_prompt_log_probs_and_gradients_equal_the_padded_forward(model):
    batch = pair_batch([12, 5, 20, 9], [4, 9, 1, 6], [7, 2, 3, 11])
    assert padding_free.shared_prompt_layout(batch["input_ids"], batch["attention_mask"], batch["labels"])
    padded = forward(model, batch, packed=False)
    lora = [p for p in model.parameters() if p.requires_grad]
    want = torch.autograd.grad(padded.log_probs.sum(), lora)
    packed = forward(model, batch, packed=True)
    got = torch.autograd.grad(packed.log_probs.sum(), lora)
    torch.testing.assert_close(packed.log_probs, padded.log_probs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed.entropy, padded.entropy, atol=1e-5, rtol=1e-4)
    assert packed.label_mask.tolist() == padded.label_mask.tolist() and padded.label_mask.sum() == 4 + 9 + 1 + 6 + 7 + 2 + 3 + 11
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "padding-free"])
def test_the_cpu_plain_head_gives_the_fused_heads_outputs(model, packed):
    """TRL's fused head against the plain forward with the same fields computed from the logits
    (alone, and under the padding-free hooks as the dpo stage installs them)."""
    batch = pair_batch([12, 5, 20, 9], [4, 9, 1, 6], [7, 2, 3, 11])
    fused = forward(model, batch, packed=packed)
    lora = [p for p in model.parameters() if p.requires_grad]
    want = torch.autograd.grad(fused.loss, lora)
    handles = padding_free.install(model, pad_id=0) if packed else []
    handles += plain_head.install(model)
    try:
        plain = model(**batch, fused_lm_head=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    got = torch.autograd.grad(plain.loss, lora)
    for name in ("log_probs", "entropy", "mean_logits", "log_sum_sq_probs"):  # dpo reads the last two
        torch.testing.assert_close(getattr(plain, name), getattr(fused, name), atol=1e-4, rtol=1e-4)
    assert plain.label_mask.tolist() == fused.label_mask.tolist()  # (the fixture's head has no is_top1)
    torch.testing.assert_close(plain.loss, fused.loss, atol=1e-5, rtol=1e-5)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_plain_calls_pass_through(model):
    batch = padded_batch([5, 3], 5)
    handles = padding_free.install(model, pad_id=0)
    try:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        for h in handles:
            h.remove()
    assert out.logits.shape == (2, 5, 256)


def slices_by_mask() -> bool:
    """transformers 5.21 added ``slice_logits_to_keep`` (a per-row mask of positions); before it,
    models keep the same columns in every row."""
    import transformers.modeling_utils

    return hasattr(transformers.modeling_utils, "slice_logits_to_keep")


@pytest.mark.parametrize("keep", ["mask", "columns"])
def test_the_plain_head_projects_only_positions_that_predict_a_label(model, keep, monkeypatch):
    if keep == "mask" and not slices_by_mask():
        pytest.skip("this transformers slices logits by columns only (slice_logits_to_keep: 5.21+)")
    batch = pair_batch([12, 5, 20, 9], [4, 9, 1, 6], [7, 2, 3, 11])
    want = forward(model, batch, packed=False)
    monkeypatch.setattr(plain_head, "keeping", lambda m: keep)
    seen = []
    head = model.get_output_embeddings().register_forward_hook(lambda m, a, out: seen.append(out.shape))
    handles = plain_head.install(model) + [head]
    try:
        got = model(**batch, fused_lm_head=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    labels = int((batch["labels"] != -100).sum())
    # The frozen head is bypassed (label_logprobs projects the labelled hidden states itself, 64
    # wide, never the 256-wide vocabulary): given the labelled positions where the model slices by
    # mask (transformers 5.21+), every position where it slices by columns (5.0-5.20: the 8 rows
    # of 23 come through as hidden states; a union of label columns would cost a sync on a GPU)
    assert seen == ([(labels, 64)] if keep == "mask" else [(8, 23, 64)])
    for name in ("log_probs", "entropy", "mean_logits", "log_sum_sq_probs"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.loss, want.loss, atol=1e-5, rtol=1e-5)


def test_models_that_slice_logits_by_mask_are_told_so(model):
    # Llama takes a mask of positions where transformers has slice_logits_to_keep (5.21+), columns before
    assert plain_head.keeping(model) == ("mask" if slices_by_mask() else "columns")


def test_only_the_fields_the_trainer_asked_for_are_computed(model):
    # the fixture asked TRL's head for everything but is_top1 (sft asks for log_probs, entropy, is_top1)
    assert plain_head.requested_fields(model) == ("entropy", "mean_logits", "log_sum_sq_probs")
    handles = plain_head.install(model)
    try:
        out = model(**pair_batch([12, 5], [4, 9], [7, 2]), fused_lm_head=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    assert out.is_top1 is None and out.entropy is not None


def test_a_trained_or_scaled_head_takes_the_plain_route(model):
    head = model.get_output_embeddings()
    assert plain_head.frozen_linear_head(model) is head
    batch = pair_batch([12, 5], [4, 9], [7, 2])
    want = forward(model, batch, packed=False)
    head.weight.requires_grad_(True)
    handles = plain_head.install(model)
    try:
        got = model(**batch, fused_lm_head=True, use_cache=False)
        (grad,) = torch.autograd.grad(got.loss, [head.weight])
    finally:
        head.weight.requires_grad_(False)
        for h in handles:
            h.remove()
    torch.testing.assert_close(got.log_probs, want.log_probs, atol=1e-5, rtol=1e-4)
    assert grad.abs().sum() > 0
    base = model.get_base_model()
    base.config.final_logit_softcapping = 30.0
    try:
        assert plain_head.frozen_linear_head(model) is None
    finally:
        base.config.final_logit_softcapping = None
    assert head.forward.__self__ is head  # remove() restored the head's own forward

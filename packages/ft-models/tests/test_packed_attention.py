"""Packed rows attended sequence by sequence give each sequence's own forward (and gradients)."""

import pytest
import torch

from ft_models.packed_attention import NAME, register, segments


@pytest.fixture(scope="module")
def model():
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model("llama", vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


# two packed rows: sequences of 5, 3, 6 and two padding tokens; 10 and 3, then padding
IDS = torch.randint(3, 256, (2, 16), generator=torch.Generator().manual_seed(1))
POSITIONS = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 0, 0],
                          [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 0, 0, 0]])
SEQUENCES = [(0, 0, 5), (0, 5, 8), (0, 8, 14), (1, 0, 10), (1, 10, 13)]


def test_sequences_start_where_positions_restart():
    assert segments(POSITIONS) == [[(0, 5), (5, 8), (8, 14), (14, 15), (15, 16)],
                                   [(0, 10), (10, 13), (13, 14), (14, 15), (15, 16)]]


def run(model, implementation, **kwargs):
    model.set_attn_implementation(implementation)
    try:
        return model(**kwargs).logits
    finally:
        model.set_attn_implementation("sdpa")


@pytest.mark.parametrize("use_cache", [False, True])
def test_each_sequence_gets_its_own_forward(model, use_cache):
    """Also with a KV cache, where transformers stops reading packing from the positions."""
    register()
    packed = run(model, NAME, input_ids=IDS, position_ids=POSITIONS, use_cache=use_cache)
    for row, start, end in SEQUENCES:
        alone = model(input_ids=IDS[row:row + 1, start:end], use_cache=False).logits[0]
        torch.testing.assert_close(packed[row, start:end], alone, atol=1e-5, rtol=1e-5)


def test_gradients_equal_the_block_diagonal_sdpa(model):
    register()
    params = [p for p in model.parameters() if p.requires_grad]
    labels = IDS.masked_fill(POSITIONS == 0, -100)
    want = torch.autograd.grad(model(input_ids=IDS, position_ids=POSITIONS, labels=labels, use_cache=False).loss, params)
    model.set_attn_implementation(NAME)
    try:
        got = torch.autograd.grad(model(input_ids=IDS, position_ids=POSITIONS, labels=labels, use_cache=False).loss,
                                  params)
    finally:
        model.set_attn_implementation("sdpa")
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_padded_batches_and_decoding_go_to_sdpa(model):
    register()
    mask = torch.ones_like(IDS).masked_fill(torch.arange(16) >= 11, 0)
    torch.testing.assert_close(run(model, NAME, input_ids=IDS, attention_mask=mask, use_cache=False),
                               model(input_ids=IDS, attention_mask=mask, use_cache=False).logits)
    model.set_attn_implementation(NAME)
    try:
        ours = model.generate(IDS[:1, :6], max_new_tokens=4, do_sample=False)
    finally:
        model.set_attn_implementation("sdpa")
    torch.testing.assert_close(ours, model.generate(IDS[:1, :6], max_new_tokens=4, do_sample=False))

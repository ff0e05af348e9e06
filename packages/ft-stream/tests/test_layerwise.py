import pytest
import torch
from conftest import tiny_config
from transformers import AutoModelForCausalLM

from ft_core import FtError
from ft_stream import LayerwiseModel


def save_tiny(tmp_path, model_type, **overrides):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(model_type, **overrides), dtype=torch.float32)
    model.save_pretrained(tmp_path)
    return model.eval()


@pytest.mark.parametrize("model_type, overrides", [
    ("llama", {"tie_word_embeddings": False}),
    ("llama", {"tie_word_embeddings": True}),
    ("qwen2", {}),
    ("gemma2", {"head_dim": 16, "sliding_window": 4}),
])
def test_logits_equal_the_plain_model(tmp_path, model_type, overrides):
    plain = save_tiny(tmp_path, model_type, **overrides)
    ids = torch.randint(0, 256, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding in the second row
    with torch.no_grad():
        expected = plain(input_ids=ids, attention_mask=mask).logits
    streamed = LayerwiseModel(tmp_path).forward(ids, mask)
    torch.testing.assert_close(streamed[0], expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(streamed[1, 3:], expected[1, 3:], atol=1e-5, rtol=1e-5)


def test_layers_are_released_after_use(tiny_llama_dir):
    model = LayerwiseModel(tiny_llama_dir)
    model.forward(torch.tensor([[1, 2, 3]]))
    assert all(p.device.type == "meta" for p in model.layers.parameters())


def test_encoder_decoder_is_refused(tmp_path):
    from transformers import T5Config

    T5Config(vocab_size=64, d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(FtError, match="t5 is an encoder-decoder model; ft-stream streams decoder-only causal LMs"):
        LayerwiseModel(tmp_path)


@pytest.mark.slow
def test_embedded_smollm2_logits_equal_the_plain_model(smol_dir, smol_tokenizer):
    plain = AutoModelForCausalLM.from_pretrained(smol_dir, dtype=torch.float32).eval()
    text = smol_tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                              tokenize=False, add_generation_prompt=True)
    ids = smol_tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        expected = plain(input_ids=ids).logits
    streamed = LayerwiseModel.from_source("smollm2-135m-instruct", dtype=torch.float32).forward(ids)
    torch.testing.assert_close(streamed, expected, atol=1e-4, rtol=1e-4)
    assert streamed[0, -1].argmax() == expected[0, -1].argmax()


def test_greedy_generation_with_the_models_own_cache_matches(tiny_llama_dir):
    plain = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    ids = torch.tensor([[5, 17, 42, 7]])
    kwargs = {"max_new_tokens": 16, "do_sample": False, "pad_token_id": 0}
    expected = plain.generate(ids, **kwargs)
    streamed = LayerwiseModel(tiny_llama_dir)
    calls = []
    streamed.layers[0].register_forward_hook(lambda m, a, o: calls.append(a[0].shape[1]))
    assert torch.equal(streamed.model.generate(ids, **kwargs), expected)
    assert calls == [4] + [1] * 15  # one prompt pass, then one token per pass: the KV cache is used


@pytest.mark.slow
def test_embedded_smollm2_streams_50_greedy_tokens_like_transformers(smol_dir, smol_tokenizer, tmp_path):
    """The real model (tied embeddings), streamed with no layer resident, over 50 new tokens."""
    plain = AutoModelForCausalLM.from_pretrained(smol_dir, dtype=torch.float32).eval()
    text = smol_tokenizer.apply_chat_template([{"role": "user", "content": "Write a short poem about the sea."}],
                                              tokenize=False, add_generation_prompt=True)
    ids = smol_tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    kwargs = {"max_new_tokens": 50, "min_new_tokens": 50, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        expected = plain.generate(ids, **kwargs)
    streamed = LayerwiseModel.from_source("smollm2-135m-instruct", dtype=torch.float32)
    assert streamed.resident == set() and streamed.config.tie_word_embeddings
    assert torch.equal(streamed.generate(ids, **kwargs), expected)


def test_several_prompts_go_through_each_layer_pass_together(tiny_llama_dir):
    """A left-padded batch of prompts of different lengths: one pass per token for all of them,
    and each row's greedy continuation equals plain transformers'."""
    plain = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    ids = torch.tensor([[0, 0, 5, 17, 42, 7], [9, 8, 7, 6, 5, 4]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    kwargs = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        expected = plain.generate(input_ids=ids, attention_mask=mask, **kwargs)
    streamed = LayerwiseModel(tiny_llama_dir)
    passes = []
    streamed.layers[0].register_forward_hook(lambda m, a, o: passes.append(a[0].shape))
    assert torch.equal(streamed.model.generate(input_ids=ids, attention_mask=mask, **kwargs), expected)
    assert len(passes) == 8 and all(shape[0] == 2 for shape in passes)

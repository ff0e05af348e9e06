"""Config patches: attention choice with reasons, RoPE reading and scaling, head_dim, training settings."""

import types

import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma2Config, Gemma3TextConfig, LlamaConfig, Qwen2Config

from ft_core import FtError
from ft_models import choose_attention, extend_context, head_dim, prepare_for_training, rope_parameters
from ft_models.patches import causal_lm_class, with_canonical_head_dim

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


@needs_no_gpu
def test_auto_attention_falls_back_to_sdpa_and_says_why():
    choice = choose_attention("auto", dtype=torch.float32, device="cpu")
    assert choice.name == "sdpa"
    assert choice.reason.startswith("auto: not flash_attention_2: ")


@needs_no_gpu
def test_forced_flash_attention_that_cannot_work_says_why():
    with pytest.raises(FtError, match="attention 'flash_attention_2' cannot be used: .*; use attention: auto"):
        choose_attention("flash_attention_2", dtype=torch.bfloat16, device="cpu")


def test_model_without_sdpa_gets_eager_and_unknown_names_a_suggestion():
    # Gemma 2 says it has no sdpa path from transformers 5.21 on (softcapping), and has one before:
    # a class of our own that declines sdpa holds across the supported range
    no_sdpa = type("NoSdpaForCausalLM", (causal_lm_class(LlamaConfig()),), {"_supports_sdpa": False})
    choice = choose_attention("auto", dtype=torch.float32, device="cpu", model_class=no_sdpa)
    assert choice.name == "eager" and "NoSdpaForCausalLM does not implement it" in choice.reason
    with pytest.raises(FtError, match="cannot be used: NoSdpaForCausalLM does not implement it"):
        choose_attention("sdpa", model_class=no_sdpa)
    gemma2 = causal_lm_class(Gemma2Config())
    expected = "sdpa" if gemma2._supports_sdpa else "eager"
    assert choose_attention("auto", dtype=torch.float32, device="cpu", model_class=gemma2).name == expected
    with pytest.raises(FtError, match="did you mean 'sdpa'"):
        choose_attention("spda")


def test_rope_parameters_from_new_and_old_configs():
    assert rope_parameters(LlamaConfig(rope_theta=5e5)) == {"rope_type": "default", "rope_theta": 5e5}
    old = types.SimpleNamespace(rope_theta=1e4, rope_scaling={"type": "linear", "factor": 2.0})
    assert rope_parameters(old) == {"rope_type": "linear", "rope_theta": 1e4, "factor": 2.0}
    assert rope_parameters(types.SimpleNamespace(rope_theta=1e4)) == {"rope_type": "default", "rope_theta": 1e4}
    gemma3 = Gemma3TextConfig()  # per layer type: the full-attention settings
    assert rope_parameters(gemma3)["rope_theta"] == gemma3.rope_parameters["full_attention"]["rope_theta"]


def tiny_llama(**overrides):
    return LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       num_key_value_heads=1, max_position_embeddings=64, **overrides)


@pytest.mark.parametrize("method", ["linear", "dynamic", "yarn", "llama3"])
def test_extend_context_builds_a_model_that_runs_past_the_trained_length(method):
    config = extend_context(tiny_llama(), 256, method)
    assert config.max_position_embeddings == 256
    assert config.rope_parameters["rope_type"] == method and config.rope_parameters["factor"] == 4.0
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randint(0, 64, (1, 200))).logits).all()
    assert tiny_llama().max_position_embeddings == 64  # a copy: the original is untouched


def test_linear_scaling_divides_the_rotary_frequencies():
    base = AutoModelForCausalLM.from_config(tiny_llama()).model.rotary_emb.inv_freq
    scaled = AutoModelForCausalLM.from_config(extend_context(tiny_llama(), 128, "linear")).model.rotary_emb.inv_freq
    torch.testing.assert_close(scaled, base / 2)


def test_extend_context_refusals():
    assert extend_context(tiny_llama(), 32).max_position_embeddings == 64  # already long enough: unchanged
    with pytest.raises(FtError, match="did you mean 'yarn'"):
        extend_context(tiny_llama(), 256, "yarm")
    with pytest.raises(FtError, match="already uses linear RoPE scaling"):
        extend_context(extend_context(tiny_llama(), 128, "linear"), 512, "yarn")


def test_head_dim_explicit_or_derived():
    assert head_dim(Qwen2Config(hidden_size=896, num_attention_heads=14)) == 64
    assert head_dim(Gemma3TextConfig(hidden_size=64, num_attention_heads=4, head_dim=256)) == 256
    assert with_canonical_head_dim(Qwen2Config(hidden_size=896, num_attention_heads=14)).head_dim == 64
    with pytest.raises(FtError, match="does not split into 7 attention heads"):
        head_dim(types.SimpleNamespace(hidden_size=100, num_attention_heads=7, head_dim=None))


def test_training_settings_checkpoint_without_reentrancy_and_keep_lora_gradients():
    from ft_models import add_lora

    model = prepare_for_training(AutoModelForCausalLM.from_config(tiny_llama()))
    assert model.config.use_cache is False and model.is_gradient_checkpointing
    model = add_lora(model, r=2, alpha=4, dropout=0.0)
    model.train()
    ids = torch.randint(0, 64, (2, 8))
    model(input_ids=ids, labels=ids).loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]  # (A gets none while B is 0)
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("model_type, recurrent", [
    ("llama", False), ("qwen2", False), ("gemma3", False),  # attention only (gemma3: sliding and full)
    ("qwen3_next", True), ("mamba2", True), ("bamba", True), ("jamba", True),
    ("falcon_h1", True),  # attention and Mamba side by side in every layer
])
def test_layers_that_carry_state_along_the_sequence_are_named(model_type, recurrent):
    """The kinds' names differ between transformers versions (bamba: ``mamba`` in 5.0,
    ``linear_attention`` in 5.24); that there are some does not."""
    from transformers import AutoConfig

    from ft_models import recurrent_layer_types

    kinds = recurrent_layer_types(AutoConfig.for_model(model_type))
    assert bool(kinds) == recurrent, kinds
    assert not set(kinds) & {"full_attention", "sliding_attention", "attention", "mlp", "moe"}


def test_an_all_recurrent_model_without_layer_types_is_named_by_its_type():
    from types import SimpleNamespace

    from ft_models import recurrent_layer_types

    assert recurrent_layer_types(SimpleNamespace(model_type="rwkv")) == ["rwkv"]
    assert recurrent_layer_types(SimpleNamespace(model_type="llama")) == []

"""Gradient checkpointing follows the memory a step needs; the estimate counts a real model's
parameters; the user's keys always win."""

import pytest
import torch

from ft_train.defaults import trainer_defaults
from ft_train.memory import checkpointing_choice, from_config, parameter_count, step_memory

GB = 1e9
QWEN2_05B = dict(layers=24, hidden=896, intermediate=4864, vocab=151936, kv_hidden=128)
LLAMA_7B = dict(layers=32, hidden=4096, intermediate=11008, vocab=32000, kv_hidden=4096, tied=False)


def test_parameter_count_is_exact_for_a_llama_config():
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("llama", vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    model = AutoModelForCausalLM.from_config(config)
    norms = sum(p.numel() for n, p in model.named_parameters() if "norm" in n)
    assert parameter_count(3, 64, 96, 320, kv_hidden=32, tied=False) == model.num_parameters() - norms
    assert parameter_count(**LLAMA_7B) == pytest.approx(6.74e9, rel=0.01)  # Llama-2-7B has 6.74B


def test_small_lora_runs_fit_an_h100_without_checkpointing():
    est = step_memory(**QWEN2_05B, tokens=8 * 1024, full=False)
    assert est.optimizer == 0 and est.weights == pytest.approx(0.99 * GB, rel=0.01)
    on, reason = checkpointing_choice(est, 80 * GB)
    assert not on and "gradient checkpointing off: a step needs about 23.9 GB, 64 GB usable" == reason
    assert checkpointing_choice(est, 16 * GB)[0]  # the same step on a 16 GB card needs it


def test_full_fine_tuning_a_7b_model_needs_checkpointing_even_on_80_gb():
    est = step_memory(**LLAMA_7B, tokens=4 * 2048, full=True)
    assert est.optimizer == parameter_count(**LLAMA_7B) * 12
    assert checkpointing_choice(est, 80 * GB)[0]
    qlora = step_memory(**LLAMA_7B, tokens=4 * 2048, full=False, weight_bytes=0.5)
    assert qlora.weights == pytest.approx(3.37 * GB, rel=0.01) and not checkpointing_choice(qlora, 80 * GB)[0]


def test_estimate_reads_a_transformers_config(tiny_chat_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_chat_dir)
    est = from_config(config, tokens=100, full=False)
    assert est.activations == 100 * 2 * (8 * 32 + 4 * 64) * 2 and est.logits == 100 * config.vocab_size * 10


@pytest.fixture
def on_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


def test_on_a_gpu_checkpointing_follows_the_estimate(on_gpu):
    small = lambda: step_memory(**QWEN2_05B, tokens=8 * 1024, full=False)  # noqa: E731
    args = trainer_defaults({}, small, gpu_bytes=lambda: 80 * GB)
    assert args["gradient_checkpointing"] is False and args["bf16"] and not args["use_cpu"]
    args = trainer_defaults({}, small, gpu_bytes=lambda: 16 * GB)
    assert args["gradient_checkpointing"] is True and args["gradient_checkpointing_kwargs"] == {"use_reentrant": False}
    args = trainer_defaults({"gradient_checkpointing": True}, small, gpu_bytes=lambda: 80 * GB)
    assert args["gradient_checkpointing"] is True  # the user's choice wins


@pytest.fixture
def liger_installed(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "liger_kernel"
                        else find_spec(name, *a))


def test_on_a_gpu_liger_stays_off_where_installed_unless_asked(on_gpu, liger_installed):
    small = lambda: step_memory(**QWEN2_05B, tokens=8 * 1024, full=False)  # noqa: E731
    for gpu in (80 * GB, 16 * GB):  # fits, and needs checkpointing: neither turns liger on
        assert "use_liger_kernel" not in trainer_defaults({}, small, gpu_bytes=lambda: gpu)  # noqa: B023
    assert trainer_defaults({"use_liger_kernel": True}, small, gpu_bytes=lambda: 80 * GB)["use_liger_kernel"] is True


@pytest.fixture
def on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_on_the_cpu_checkpointing_is_off_without_an_estimate(on_cpu):
    def never():
        raise AssertionError("the estimate is for GPUs only")

    args = trainer_defaults({}, never)
    assert args["gradient_checkpointing"] is False and args["use_cpu"] and args["bf16"] is False
    assert trainer_defaults({"gradient_checkpointing": True}, never)["gradient_checkpointing"] is True

"""Gradient checkpointing follows the memory a step needs; the estimate counts a real model's
parameters and what autograd keeps, and meets the peaks measured on a GPU; the user's keys always
win."""

import pytest
import torch

from ft_train.defaults import trainer_defaults
from ft_train.memory import (
    GPU_EXTRA,
    checkpointing_choice,
    from_config,
    lora_parameter_count,
    parameter_count,
    saved_bytes_per_token,
    step_memory,
)

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
    assert est.weights == pytest.approx(0.99 * GB, rel=0.01)
    assert est.optimizer == 16 * lora_parameter_count(24, 896, 4864, 128, rank=16) == 16 * 8_798_208
    on, reason = checkpointing_choice(est, 80 * GB)
    assert not on and "gradient checkpointing off: a step needs about 13.1 GB, 64 GB usable" == reason
    assert checkpointing_choice(est, 16 * GB)[0]  # the same step on a 16 GB card needs it


# torch.cuda.max_memory_allocated of 3 packed LoRA steps (r16, no dropout, rows of 1024 tokens) of a
# Qwen2-0.5B-shaped model on an H200, 2026-11-28: benchmarks/gpu/results/2026-11-28-h200-memory.txt.
# ft-models 0.8.0's adapters then still copied their inputs (PEFT's fp32 cast under autocast)
H200_PEAKS_GB = {2: 4.61, 4: 7.87, 8: 14.55, 16: 27.92}


@pytest.mark.parametrize("batch", sorted(H200_PEAKS_GB))
def test_the_estimate_meets_the_peaks_measured_on_an_h200(batch):
    est = step_memory(**QWEN2_05B, tokens=batch * 1024, full=False, lora_input_copies=True)
    assert est.total / GB == pytest.approx(H200_PEAKS_GB[batch], rel=0.03)


def test_without_input_copies_the_estimate_meets_the_branch_that_never_made_them():
    # ft packed with lora_compute's bf16 LoRA branch (no input copies) peaked at 13.12 GB at batch 8
    # on an H100 (benchmarks/README.md, 2026-11-28): what ft-models' adapters keep from 0.8.1
    assert step_memory(**QWEN2_05B, tokens=8 * 1024, full=False).total / GB == pytest.approx(13.12, rel=0.03)


def test_the_head_term_uses_trls_tile_sizes():
    from trl.kernels import chunked_logprob
    from trl.trainer import utils

    from ft_train.memory import HEAD_TILE_TOKENS, HEAD_TILE_VOCAB

    assert (HEAD_TILE_TOKENS, HEAD_TILE_VOCAB) == (chunked_logprob.TOKEN_CHUNK_SIZE, utils._CHUNKED_LOGPROB_CHUNK_SIZE)


def _saved_bytes(layers: int, h: int, i: int, kv_heads: int, *, lora: bool, tokens: int = 256,
                 dropout: float = 0.0, device: str = "cpu", peft_casts: bool = False) -> int:
    """Bytes of the tensors autograd keeps in one forward of a random bf16 Qwen2 (head_dim 64) under
    bf16 autocast, TRL's fused head and (``lora``) ft's LoRA r16 (``peft_casts``: with PEFT's own
    fp32 cast of each adapter's input put back), counted once per storage; the parameters
    themselves are left out."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from ft_models.adapters import add_lora

    config = AutoConfig.for_model("qwen2", vocab_size=512, hidden_size=h, intermediate_size=i,
                                  num_hidden_layers=layers, num_attention_heads=h // 64,
                                  num_key_value_heads=kv_heads, tie_word_embeddings=True)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    add_fused_lm_head(model)
    model = (add_lora(model, r=16, alpha=32, dropout=dropout) if lora else model).to(device)
    for module in model.modules() if peft_casts else ():
        module.__dict__.pop("_cast_input_dtype", None)
    model.train()
    kept: dict[int, int] = {}

    def keep(t):
        kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    ids = torch.randint(0, 512, (1, tokens), device=device)
    position_ids = torch.arange(tokens, device=device)[None]
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t), torch.autocast(device, dtype=torch.bfloat16):
        model(input_ids=ids, position_ids=position_ids, labels=ids, fused_lm_head=True)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(n for ptr, n in kept.items() if ptr not in params)


@pytest.mark.parametrize(("lora", "peft_casts", "dropout"), [(False, False, 0.0), (True, False, 0.0), (True, True, 0.0),
                                                           (True, False, 0.1)],
                         ids=["full", "lora", "lora-peft-casts", "lora-dropout"])
def test_the_activation_term_is_what_autograd_keeps_per_layer(lora, peft_casts, dropout):
    h, i, kv_heads, tokens = 512, 1408, 2, 256
    kept = [_saved_bytes(n, h, i, kv_heads, lora=lora, peft_casts=peft_casts, dropout=dropout) for n in (1, 2)]
    # a LoRA's weights are cast to bf16 once a step (autocast): a layer's worth, whatever the tokens
    weights = 2 * lora_parameter_count(1, h, i, kv_heads * 64, rank=16) if lora else 0
    per_token = saved_bytes_per_token(h, i, kv_heads * 64, lora=lora, lora_input_copies=peft_casts,
                                      lora_dropout=dropout > 0)
    cpu_mask = (6 * h + i) if dropout else 0  # the CPU's dropout mask has the input's dtype: 2 bytes, not CUDA's 1
    assert (kept[1] - kept[0] - weights) / tokens == pytest.approx(per_token + cpu_mask, rel=0.02)
    est = step_memory(layers=2, hidden=h, intermediate=i, vocab=512, kv_hidden=kv_heads * 64, tokens=tokens,
                      full=not lora, lora_input_copies=peft_casts, lora_dropout=dropout > 0)
    assert est.activations == int(tokens * 2 * per_token * GPU_EXTRA) + 2 * weights


@pytest.mark.gpu
def test_on_cuda_lora_dropout_keeps_a_one_byte_mask_per_adapter_input():
    h, i, kv_heads, tokens = 512, 1408, 2, 1024
    added = [_saved_bytes(layers, h, i, kv_heads, lora=True, tokens=tokens, dropout=0.1, device="cuda")
             - _saved_bytes(layers, h, i, kv_heads, lora=True, tokens=tokens, device="cuda") for layers in (1, 2)]
    # dropout's output is each adapter's own bf16 copy of its input (4h more than reading the inputs
    # as they are: 8h bytes), and its mask one byte per element
    assert (added[1] - added[0]) / tokens == pytest.approx(8 * h + 6 * h + i, rel=0.05)


def test_lora_dropout_counts_a_one_byte_mask_per_adapter_input():
    plain = saved_bytes_per_token(896, 4864, 128, lora=True)
    copies = saved_bytes_per_token(896, 4864, 128, lora=True, lora_input_copies=True)
    assert copies - plain == 8 * 896
    assert saved_bytes_per_token(896, 4864, 128, lora=True, lora_dropout=True) - copies == 6 * 896 + 4864
    assert saved_bytes_per_token(896, 4864, 128, lora=False, lora_dropout=True) == 20 * 896 + 8 * 4864 + 4 * 128


def test_full_fine_tuning_a_7b_model_needs_checkpointing_even_on_80_gb():
    est = step_memory(**LLAMA_7B, tokens=4 * 2048, full=True)
    assert est.optimizer == parameter_count(**LLAMA_7B) * 12
    assert checkpointing_choice(est, 80 * GB)[0]
    qlora = step_memory(**LLAMA_7B, tokens=2 * 2048, full=False, weight_bytes=0.5)
    assert qlora.weights == pytest.approx(3.37 * GB, rel=0.01) and not checkpointing_choice(qlora, 80 * GB)[0]
    # four times the tokens: about 118 GB of activations alone, far over 80 GB's usable share
    assert checkpointing_choice(step_memory(**LLAMA_7B, tokens=8 * 2048, full=False, weight_bytes=0.5), 80 * GB)[0]


def test_estimate_reads_a_transformers_config(tiny_chat_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_chat_dir)
    est = from_config(config, tokens=100, full=False, lora_rank=8, lora_dropout=True)
    kv = config.num_key_value_heads * config.hidden_size // config.num_attention_heads
    per_token = saved_bytes_per_token(config.hidden_size, config.intermediate_size, kv, lora=True, lora_rank=8,
                                      lora_dropout=True)
    adapter = lora_parameter_count(config.num_hidden_layers, config.hidden_size, config.intermediate_size, kv, rank=8)
    assert est.activations == int(100 * config.num_hidden_layers * per_token * GPU_EXTRA) + 2 * adapter
    assert est.optimizer == 16 * adapter
    assert est.head == 100 * min(config.vocab_size, 32768) * 2 + 100 * config.hidden_size * 6


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

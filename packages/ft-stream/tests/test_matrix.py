"""The correctness matrix: for twelve architectures built from tiny random configs, streamed
logits equal plain transformers (fp32 within 1e-4, bf16 within its tolerance) and greedy
generation with the model's own KV cache gives the same 32 tokens, streaming under a budget with
prefetch (some layers resident, the rest read per pass)."""

import pytest
import torch
from conftest import tiny_config
from transformers import AutoModelForCausalLM

from ft_stream import LayerwiseModel, split

MOE = dict(num_experts_per_tok=2, moe_intermediate_size=32)
ARCHS = {
    "llama": {},
    "llama-tied": {"tie_word_embeddings": True},
    "mistral": {"sliding_window": 8},
    "qwen2": {"hidden_size": 112, "num_attention_heads": 14, "num_key_value_heads": 2},  # head_dim 8, as Qwen2-0.5B's 14 heads
    "qwen3": {},
    "qwen3_moe": {"num_experts": 4, "decoder_sparse_step": 1, "mlp_only_layers": [], **MOE},
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2},
    "gemma2": {"sliding_window": 4},
    "gemma3_text": {"sliding_window": 4},
    "phi3": {},
    "deepseek_v3": {"n_routed_experts": 4, "first_k_dense_replace": 1, "kv_lora_rank": 16, "q_lora_rank": 32,
                    "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 16, "head_dim": 8,
                    "num_key_value_heads": 4, "n_group": 1, "topk_group": 1, **MOE},
    "olmo2": {},
    "granite": {"embedding_multiplier": 2.0, "residual_multiplier": 0.5, "logits_scaling": 4.0},
}


def model_type(name):
    return name.split("-")[0]


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request, tmp_path_factory):
    overrides = {"head_dim": 16, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "num_hidden_layers": 4,
                 **ARCHS[request.param]}
    if "hidden_size" in overrides:
        overrides["head_dim"] = overrides["hidden_size"] // overrides["num_attention_heads"]
    torch.manual_seed(0)
    plain = AutoModelForCausalLM.from_config(tiny_config(model_type(request.param), **overrides), dtype=torch.float32)
    folder = tmp_path_factory.mktemp(request.param)
    plain.save_pretrained(folder)
    return request.param, plain.eval(), folder


def streamed(folder, tmp_path, dtype=None):
    """Streamed with a budget that keeps the first layer resident and streams the rest."""
    out = split(folder, tmp_path / "split", dtype=dtype, progress=False)
    probe = LayerwiseModel(out)
    sizes = [f["bytes"] for f in probe.manifest["files"]]
    budget = sizes[-1] + 2 * max(sizes[:-1]) + sizes[0]  # rest + working set (1 + prefetch) + layer 0
    model = LayerwiseModel(out, budget=budget, prefetch=1)
    assert model.resident == {0}
    return model


def test_logits_and_greedy_generation_equal_plain_transformers(arch, tmp_path):
    name, plain, folder = arch
    model = streamed(folder, tmp_path)
    torch.manual_seed(1)
    ids = torch.randint(3, 256, (2, 11))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding in the second row
    with torch.no_grad():
        expected = plain(input_ids=ids, attention_mask=mask).logits
    got = model.forward(ids, mask)
    torch.testing.assert_close(got[0], expected[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got[1, 3:], expected[1, 3:], atol=1e-4, rtol=1e-4)
    passes = []
    model.layers[-1].register_forward_hook(lambda m, a, o: passes.append(1))
    prompt = ids[:1, :6]
    kwargs = {"max_new_tokens": 32, "min_new_tokens": 32, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        reference = plain.generate(prompt, **kwargs)
    assert torch.equal(model.generate(prompt, **kwargs), reference)
    assert len(passes) == 32  # one pass over the weights per new token: the KV cache is used
    assert all(p.device.type == "meta" for p in model.layers[1].parameters())  # streamed layers released
    model.close()


def test_bf16_split_stays_within_bf16_tolerance(arch, tmp_path):
    name, plain, folder = arch
    model = streamed(folder, tmp_path, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16 and model.manifest["dtype"] == "torch.bfloat16"
    ids = torch.randint(3, 256, (1, 9))
    reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
    with torch.no_grad():
        expected = reference(ids).logits.float()
    torch.testing.assert_close(model.forward(ids).float(), expected, atol=2e-2, rtol=2e-2)
    model.close()

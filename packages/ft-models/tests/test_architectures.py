"""Across six architectures built from tiny random configs: load, attention choice, every adapter
type wraps and trains a step, and a merged LoRA/DoRA gives the logits of base + adapter."""

import pytest
import torch

from ft_models import AdapterSpec, adapter_optimizer, apply_adapter, load_model, save_merged

ARCHS = ["llama", "mistral", "qwen2", "qwen3", "gemma2", "phi3"]
SPECS = {
    "lora": AdapterSpec("lora", r=4, alpha=8, dropout=0.0),
    "dora": AdapterSpec("lora", r=4, alpha=8, dropout=0.0, use_dora=True),
    "rslora": AdapterSpec("lora", r=4, alpha=8, dropout=0.0, use_rslora=True),
    "pissa": AdapterSpec("lora", r=4, alpha=4, dropout=0.0, init="pissa"),
    "loraplus": AdapterSpec("lora", r=4, alpha=8, dropout=0.0, loraplus_ratio=16.0),
    "freeze": AdapterSpec("freeze", trainable_layers=1),
    "full": AdapterSpec("full"),
}


def tiny(model_type):
    from conftest import tiny_config

    return tiny_config(model_type, head_dim=16, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                       tie_word_embeddings=model_type == "gemma2")


@pytest.fixture(scope="module", params=ARCHS)
def arch_dir(request, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny(request.param), dtype=torch.float32)
    out = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(out)
    return out


def batch():
    torch.manual_seed(1)
    return torch.randint(3, 256, (2, 10))


def test_loads_with_the_best_attention_and_eager_on_request(arch_dir):
    model = load_model(str(arch_dir), dtype="float32")
    # what the class declares: Gemma 2 declines sdpa from transformers 5.21 on (softcapping), not before
    expected = "sdpa" if type(model)._supports_sdpa else "eager"
    if not torch.cuda.is_available():
        assert model.ft_attention.name == expected, model.ft_attention.reason
    if expected == "eager":
        assert f"not sdpa: {type(model).__name__} does not implement it" in model.ft_attention.reason
    assert model.config._attn_implementation == model.ft_attention.name
    eager = load_model(str(arch_dir), dtype="float32", attention="eager")
    assert eager.config._attn_implementation == "eager"
    ids = batch()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, eager(ids).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", list(SPECS))
def test_every_adapter_type_wraps_and_trains_a_step(arch_dir, kind):
    spec = SPECS[kind]
    model = apply_adapter(load_model(str(arch_dir), dtype="float32"), spec)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    if kind == "full":
        assert not frozen
    else:
        assert trainable and frozen
    if spec.type == "lora":
        assert all("lora_" in n for n in trainable)
    if kind == "freeze":  # only the last decoder layer
        assert all(".layers.2." in n for n in trainable)
    optimizer = adapter_optimizer(model, spec, lr=1e-2)
    ids = batch()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    after = dict(model.named_parameters())
    assert torch.isfinite(loss)
    assert any(not torch.equal(trainable[n], after[n]) for n in trainable)  # something trained
    assert all(torch.equal(frozen[n], after[n]) for n in frozen)  # nothing frozen moved
    if kind == "loraplus":  # B matrices get ratio x the learning rate
        lrs = {len(g["params"]): g["lr"] for g in optimizer.param_groups if g["params"]}
        assert max(lrs.values()) == pytest.approx(16 * 1e-2)


@pytest.mark.parametrize("kind", ["lora", "dora"])
def test_merged_model_gives_the_logits_of_base_plus_adapter(arch_dir, tmp_path, kind):
    spec = SPECS[kind]
    model = apply_adapter(load_model(str(arch_dir), dtype="float32"), spec)
    optimizer = adapter_optimizer(model, spec, lr=5e-2)
    ids = batch()
    for _ in range(2):  # move the adapter away from its identity start
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        expected = model(ids).logits
        base = load_model(str(arch_dir), dtype="float32")(ids).logits
    assert not torch.allclose(expected, base, atol=1e-3)
    out = save_merged(model, tmp_path / "merged")
    merged = load_model(str(out), dtype="float32")
    assert not any("lora" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, expected, atol=1e-5, rtol=1e-4)

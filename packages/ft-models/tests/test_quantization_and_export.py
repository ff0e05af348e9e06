"""QLoRA on CPU through BitsAndBytesConfig, user aliases, and merged export written atomically."""

import json
import os

import pytest
import torch

from ft_core import FtError
from ft_models import (
    AdapterSpec,
    Quantization,
    adapter_optimizer,
    apply_adapter,
    load_model,
    load_tokenizer,
    merge_adapter,
    register_alias,
    remove_alias,
    resolve_source,
    save_merged,
    user_aliases,
)

pytest.importorskip("bitsandbytes", reason="bitsandbytes is part of the dev environment (ft-models[quant])")


def test_qlora_4bit_trains_and_loss_falls(tiny_llama_dir):
    """On the CPU here; on the GPU where there is one (a quantized model is placed there)."""
    model = load_model(str(tiny_llama_dir), dtype="float32", quantization=Quantization(bits=4, quant_type="nf4"))
    assert model.is_loaded_in_4bit
    linear = model.model.layers[0].self_attn.q_proj
    assert type(linear).__name__ == "Linear4bit" and linear.weight.quant_type == "nf4"
    spec = AdapterSpec("lora", r=8, alpha=16, dropout=0.0)
    model = apply_adapter(model, spec)
    optimizer = adapter_optimizer(model, spec, lr=1e-2)
    ids = (torch.arange(32) % 6 + 10).view(2, 16).to(model.device)  # a repeating pattern: learnable in a few steps
    losses = []
    for _ in range(15):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.8, losses


def test_8bit_and_fp4_load_and_stay_close_to_full_precision(tiny_llama_dir):
    ids = torch.randint(0, 256, (1, 12))
    with torch.no_grad():
        full = load_model(str(tiny_llama_dir), dtype="float32")(ids).logits
        for quant in (Quantization(bits=8), Quantization(bits=4, quant_type="fp4", double_quant=False)):
            quantized = load_model(str(tiny_llama_dir), dtype="float32", quantization=quant)  # on the GPU if any
            got = quantized(ids.to(quantized.device)).logits.cpu()
            assert torch.nn.functional.cosine_similarity(got.flatten(), full.flatten(), dim=0) > 0.95


def test_quantization_errors(monkeypatch):
    with pytest.raises(FtError, match="bits must be 4 or 8"):
        Quantization(bits=3)
    with pytest.raises(FtError, match="nf4 or fp4"):
        Quantization(quant_type="int4")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    from ft_models.quantization import bnb_config

    with pytest.raises(FtError, match=r"needs bitsandbytes: pip install 'ft-models\[quant\]'"):
        bnb_config(Quantization())


def test_user_aliases_resolve_load_and_refuse_bad_names(tiny_llama_dir):
    register_alias("my-tiny", str(tiny_llama_dir))
    try:
        assert user_aliases()["my-tiny"] == str(tiny_llama_dir)
        assert resolve_source("my-tiny").kind == "alias"
        assert load_model("my-tiny", dtype="float32").config.num_hidden_layers == 3
        with pytest.raises(FtError, match="built-in alias"):
            register_alias("smollm2-135m-instruct", str(tiny_llama_dir))
        with pytest.raises(FtError, match="not at another alias"):
            register_alias("again", "my-tiny")
        with pytest.raises(FtError, match="looks like a hub id"):
            register_alias("org/name", str(tiny_llama_dir))
    finally:
        remove_alias("my-tiny")
    assert "my-tiny" not in user_aliases()


@pytest.mark.slow
def test_merge_adapter_from_disk_shards_and_keeps_tokenizer_and_template(tiny_chat_dir, tmp_path):
    spec = AdapterSpec("lora", r=4, alpha=8, dropout=0.0)
    model = apply_adapter(load_model(str(tiny_chat_dir), dtype="float32"), spec)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    model.save_pretrained(tmp_path / "adapter")
    load_tokenizer(str(tiny_chat_dir)).save_pretrained(tmp_path / "adapter")
    ids = torch.randint(0, 1000, (1, 12))
    with torch.no_grad():
        expected = model(ids).logits
    out = merge_adapter(str(tiny_chat_dir), tmp_path / "adapter", tmp_path / "merged", dtype="float32",
                        max_shard_size="1MB")
    files = set(os.listdir(out))
    assert {"model.safetensors.index.json", "tokenizer.json", "chat_template.jinja", "generation_config.json"} <= files
    shards = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"].values()
    assert len(set(shards)) > 1
    merged = load_model(str(out), dtype="float32")
    assert merged.config.use_cache is True
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, expected, atol=1e-5, rtol=1e-4)


def test_a_failed_export_leaves_the_previous_one_untouched(tiny_llama_dir, tmp_path):
    out = save_merged(load_model(str(tiny_llama_dir), dtype="float32"), tmp_path / "merged")
    before = sorted(os.listdir(out))

    class Broken:
        def save_pretrained(self, folder):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_merged(load_model(str(tiny_llama_dir), dtype="float32"), out, tokenizer=Broken())
    assert sorted(os.listdir(out)) == before
    assert [p.name for p in tmp_path.iterdir()] == ["merged"]  # no temporary folder left behind


def test_export_never_writes_over_the_run_it_reads(tiny_llama_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "metrics.jsonl").write_text("{}\n")
    before = sorted(p.name for p in run.rglob("*"))
    for out in (run, run / "adapter", tmp_path):
        with pytest.raises(FtError, match="holds the input"):
            merge_adapter(str(tiny_llama_dir), run / "adapter", out, force=True)
    monkeypatch.chdir(run)
    with pytest.raises(FtError, match="holds the input|current folder"):
        merge_adapter(str(tiny_llama_dir), "adapter", ".")
    assert sorted(p.name for p in run.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]

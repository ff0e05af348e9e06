"""`ft export --dtype auto` keeps the base checkpoint's own dtype (as LLaMA-Factory's export does): a
bf16 base is not doubled to fp32 on a CPU, and an fp32 base is not rounded to bf16 on a GPU."""

import json

import pytest
import torch

from ft_models import AdapterSpec, apply_adapter, load_model, merge_adapter


def saved_dtypes(folder):
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return {f.get_slice(k).get_dtype() for k in f.keys()}


def base_and_adapter(tmp_path, dtype, tokenizer):
    from conftest import tiny_config
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = tmp_path / "base"
    AutoModelForCausalLM.from_config(tiny_config(vocab_size=len(tokenizer)), dtype=dtype).save_pretrained(base)
    tokenizer.save_pretrained(base)
    model = apply_adapter(load_model(str(base), dtype="float32"), AdapterSpec("lora", r=4, alpha=8, dropout=0.0))
    model.save_pretrained(tmp_path / "adapter")
    return base, tmp_path / "adapter"


def test_auto_keeps_a_bf16_base_in_bf16_on_the_cpu(tmp_path, smol_tokenizer):
    base, adapter = base_and_adapter(tmp_path, torch.bfloat16, smol_tokenizer)
    out = merge_adapter(str(base), adapter, tmp_path / "merged", device="cpu")
    assert saved_dtypes(out) == {"BF16"}
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"


def test_auto_keeps_an_fp32_base_in_fp32_where_compute_would_be_bf16(tmp_path, monkeypatch, smol_tokenizer):
    from ft_models import loading

    base, adapter = base_and_adapter(tmp_path, torch.float32, smol_tokenizer)
    real = loading.resolve_dtype
    # compute dtype "auto" as on a bf16-capable GPU
    monkeypatch.setattr(loading, "resolve_dtype", lambda name="auto": torch.bfloat16 if name == "auto" else real(name))
    out = merge_adapter(str(base), adapter, tmp_path / "merged", device="cpu")
    assert saved_dtypes(out) == {"F32"}


def test_an_explicit_dtype_still_wins(tmp_path, smol_tokenizer):
    base, adapter = base_and_adapter(tmp_path, torch.float32, smol_tokenizer)
    out = merge_adapter(str(base), adapter, tmp_path / "merged", dtype="bfloat16", device="cpu")
    assert saved_dtypes(out) == {"BF16"}


@pytest.mark.parametrize("name", ["bfloat16", "float16", "float32"])
def test_saved_dtype_reads_the_config(name):
    from transformers import PretrainedConfig

    from ft_models.dtypes import saved_dtype

    assert saved_dtype(PretrainedConfig(dtype=name)) == name
    assert saved_dtype(PretrainedConfig()) == "float32"  # none recorded: full precision

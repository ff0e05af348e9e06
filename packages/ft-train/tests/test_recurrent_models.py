"""Models whose layers carry a state along the sequence (Mamba, linear attention): packed examples
would leak into each other there, so sft packing is refused and dpo's padding-free forwards are off."""

import logging

import pytest
import yaml

from ft_core import FtError
from ft_train import run_training


def recurrent_dir(tmp_path, tokenizer=None):
    """A tiny random Qwen3-Next (linear-attention and full-attention layers), saved."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    vocab = len(tokenizer) if tokenizer is not None else 256
    config = AutoConfig.for_model("qwen3_next", vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                  linear_num_value_heads=2, linear_num_key_heads=1, linear_key_head_dim=16,
                                  linear_value_head_dim=16, num_experts=0, router_aux_loss_coef=0.0,
                                  layer_types=["linear_attention", "full_attention"],
                                  pad_token_id=getattr(tokenizer, "pad_token_id", None))
    torch.manual_seed(0)
    folder = tmp_path / "qwen3-next-tiny"
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def write_config(tmp_path, model, stage, rows, **data):
    import json

    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {"model": {"source": str(model), "dtype": "float32"},
              "data": {"train": ["d.jsonl"], "cutoff_len": 64, **data},
              "adapter": {"type": "lora", "r": 4, "alpha": 8},
              "train": {"stage": stage, "output_dir": str(tmp_path / "out"), "max_steps": 2,
                        "per_device_train_batch_size": 2, "logging_steps": 1, "save_strategy": "no"}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_sft_packing_is_refused_before_anything_is_written(tmp_path):
    chats = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}]
    path = write_config(tmp_path, recurrent_dir(tmp_path), "sft", chats, packing=True)
    with pytest.raises(FtError, match=r"data\.packing: this model's linear_attention layers carry a state.*"
                                      r"set data\.packing: false"):
        run_training(path)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_dpo_trains_without_padding_free_forwards(tmp_path, smol_tokenizer, caplog):
    pairs = [{"prompt": [{"role": "user", "content": f"Is {i} a number?"}],
              "chosen": [{"role": "assistant", "content": "yes"}],
              "rejected": [{"role": "assistant", "content": "no"}]} for i in range(4)]
    path = write_config(tmp_path, recurrent_dir(tmp_path, smol_tokenizer), "dpo", pairs)
    with caplog.at_level(logging.INFO, logger="ft_train"):
        result = run_training(path)
    assert "padding-free forwards off: this model's linear_attention layers" in caplog.text
    assert result.final_loss is not None and (result.weights_dir / "adapter_model.safetensors").is_file()

"""A ~1.1B-parameter random Llama with TinyLlama's shape (untied head), saved once in bf16."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / ".peers" / "models" / "tinyllama-shape-1.1b-random-bf16"

SHAPE = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
             num_key_value_heads=4, max_position_embeddings=2048, rope_theta=10000.0, tie_word_embeddings=False,
             bos_token_id=1, eos_token_id=2, pad_token_id=0)


def big_llama() -> Path:
    """The saved folder (built on first use: about a minute and 2.2 GB)."""
    if (FOLDER / "config.json").is_file() and list(FOLDER.glob("*.safetensors")):
        return FOLDER
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ft_core import atomic_dir

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SHAPE, dtype="bfloat16")).to(torch.bfloat16)
    with atomic_dir(FOLDER) as tmp:
        model.save_pretrained(tmp, max_shard_size="5GB")
    return FOLDER

"""Version checks and transformers-version shims for ft-models (one place for all of them)."""

from __future__ import annotations

from pathlib import Path

from ft_core import check_transformers

check_transformers("ft-models")

GGUF_SPECIAL = {"bos": "bos", "eos": "eos", "unk": "unknown", "pad": "padding"}  # role -> GGUF key


def gguf_special_tokens(tokenizer, gguf_path: Path) -> dict[str, str]:
    """Give ``tokenizer`` the special tokens its GGUF file names; returns those it changed.

    transformers before 5.18 (which rewrote GGUF tokenizer loading; 5.20 measured right) read
    SmolLM2's eos as ``<|im_start|>`` and no pad token, where the file says ``<|im_end|>`` for both:
    generation would not stop at the end of a turn and batches could not be padded. Remove when
    ft-models' floor reaches 5.20.
    """
    import gguf

    fields = gguf.GGUFReader(str(gguf_path)).fields
    changed = {}
    for role, key in GGUF_SPECIAL.items():
        field = fields.get(f"tokenizer.ggml.{key}_token_id")
        if field is None or not field.data:
            continue
        token = tokenizer.convert_ids_to_tokens(int(field.parts[field.data[0]][0]))
        if getattr(tokenizer, f"{role}_token") != token:
            setattr(tokenizer, f"{role}_token", token)
            changed[role] = token
    return changed

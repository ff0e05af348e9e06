"""Convert a GGUF checkpoint once into a cached safetensors folder that loads in a second."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
from pathlib import Path

from ft_core import atomic_dir, ft_home
from ft_models._compat import gguf_special_tokens

log = logging.getLogger("ft_models")

MARKER = "ft-converted.json"


def gguf_cache_dir(gguf_path: Path, name: str | None = None) -> Path:
    """Where the converted folder of ``gguf_path`` lives (keyed by path, size and mtime)."""
    st = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return ft_home() / "models" / f"{name or gguf_path.stem}-{key}"


def converted_folder(gguf_path: Path, name: str | None = None) -> Path:
    """The safetensors folder for ``gguf_path``, converting it first if it is not cached yet."""
    out = gguf_cache_dir(gguf_path, name)
    if (out / MARKER).is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds it done
        if not (out / MARKER).is_file():
            _convert(gguf_path, out)
    return out


def _convert(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_path.parent, gguf_path.name
    log.info("converting %s to safetensors in %s (once)", name, out)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    fixed = gguf_special_tokens(tokenizer, gguf_path)
    if fixed:
        log.info("special tokens set from the GGUF file: %s", fixed)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: rebuild it from a config without the
    # gguf quantization_config and move the dequantized weights across.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps({"source": str(gguf_path), "dtype": "bfloat16"}, indent=2))

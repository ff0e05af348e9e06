"""Merge an adapter into its base model and save the result: safetensors shards, tokenizer, chat
template and generation config, written to a temporary folder and renamed into place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ft_core import FtError, atomic_dir, check_output_dir


def save_merged(model, out_dir: str | Path, *, tokenizer=None, max_shard_size: str | int = "2GB", force: bool = False,
                sources: Sequence[str | Path] = ()) -> Path:
    """Save ``model`` (a PeftModel is merged first) to ``out_dir`` atomically; returns the folder.

    ``out_dir`` must be new, empty or an earlier ft output (``force`` replaces anything else) and
    may not hold any of ``sources`` (see ``ft_core.check_output_dir``).

    Example:
        >>> save_merged(peft_model, "out/merged", tokenizer=tok, max_shard_size="500MB")  # doctest: +SKIP
    """
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        raise FtError("a quantized model cannot be exported merged: load the base unquantized and use merge_adapter")
    out = check_output_dir(out_dir, force=force, sources=sources)
    with atomic_dir(out, force=force, sources=sources, made_by="ft export") as tmp:
        model.config.use_cache = True  # training turns it off; the exported model is for inference
        model.save_pretrained(tmp, max_shard_size=max_shard_size, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)  # with its chat template
    return out


def merge_adapter(base: str, adapter_dir: str | Path, out_dir: str | Path, *, dtype: str = "auto",
                  max_shard_size: str | int = "2GB", token: str | None = None, force: bool = False,
                  device: str = "auto") -> Path:
    """Load ``base`` unquantized, attach the adapter in ``adapter_dir``, merge, save to ``out_dir``;
    on ``device`` (``auto``: the GPU where there is one). ``dtype="auto"`` keeps the dtype the base
    checkpoint was saved in (float32 where its config records none).

    The tokenizer comes from the adapter folder when it holds one (a run saves it there), else from
    the base. ``out_dir`` is checked before anything loads: it may not hold the adapter or the base,
    and must be new, empty or an earlier ft output unless ``force``. Example:
        >>> merge_adapter("smollm2-135m-instruct", "runs/demo/adapter", "runs/demo/merged")  # doctest: +SKIP
    """
    from ft_models.adapter_check import check_adapter_for
    from ft_models.adapters import load_adapter, require_adapter
    from ft_models.loading import load_model, load_tokenizer
    from ft_models.sources import model_path

    adapter_dir = require_adapter(adapter_dir)
    base_path = Path(model_path(base))
    sources = [adapter_dir] + ([base_path] if base_path.exists() else [])
    check_output_dir(out_dir, force=force, sources=sources)
    check_adapter_for(base, adapter_dir)
    if dtype == "auto":
        from transformers import AutoConfig

        from ft_models.dtypes import saved_dtype

        dtype = saved_dtype(AutoConfig.from_pretrained(model_path(base), token=token))
    model = load_adapter(load_model(base, dtype=dtype, token=token, device=device), str(adapter_dir), check=False)
    if (adapter_dir / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    else:
        tokenizer = load_tokenizer(base, token=token)
    return save_merged(model, out_dir, tokenizer=tokenizer, max_shard_size=max_shard_size, force=force, sources=sources)

"""Load a tokenizer or a model from any source that `resolve_source` understands."""

from __future__ import annotations

import os
from typing import Any

from ft_models.dtypes import resolve_dtype
from ft_models.sources import model_path, resolve_source


def _hub_kwargs(name: str, revision: str | None, token: str | None) -> dict[str, Any]:
    # Auth only through `token` (never the removed `use_auth_token`); a token is never logged.
    if resolve_source(name).kind != "hub":
        return {}
    kwargs: dict[str, Any] = {"revision": revision}
    token = token or os.environ.get("HF_TOKEN")
    if token:
        kwargs["token"] = token
    return kwargs


def load_tokenizer(name: str, *, revision: str | None = None, token: str | None = None,
                   trust_remote_code: bool = False):
    """The tokenizer of model ``name`` (alias, folder, .gguf file or hub id).

    Example:
        >>> tok = load_tokenizer("smollm2-135m-instruct")  # doctest: +SKIP
        >>> tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)  # doctest: +SKIP
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path(name), trust_remote_code=trust_remote_code,
                                         **_hub_kwargs(name, revision, token))


def load_model(name: str, *, dtype: str = "auto", attn_implementation: str | None = None,
               revision: str | None = None, token: str | None = None,
               trust_remote_code: bool = False, **kwargs: Any):
    """A causal LM from ``name``; ``dtype='auto'`` is bf16 on capable GPUs, else fp32.

    Example:
        >>> model = load_model("smollm2-135m-instruct", dtype="float32")  # doctest: +SKIP
    """
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        model_path(name),
        dtype=resolve_dtype(dtype),
        attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code,
        **_hub_kwargs(name, revision, token),
        **kwargs,
    )

"""Load a tokenizer or a model from any source that `resolve_source` understands."""

from __future__ import annotations

import logging
import os
from typing import Any

from ft_core import FtError
from ft_models.adapters import HEADS
from ft_models.dtypes import resolve_dtype
from ft_models.patches import causal_lm_class, choose_attention, extend_context
from ft_models.quantization import Quantization, bnb_config
from ft_models.sources import check_folder, final_source, model_path

log = logging.getLogger("ft_models")


def _hub_kwargs(name: str, revision: str | None, token: str | None) -> dict[str, Any]:
    # Auth only through `token` (never the removed `use_auth_token`); a token is never logged.
    if final_source(name).kind != "hub":
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

    path = model_path(name)
    check_folder(path, "tokenizer")
    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code,
                                         **_hub_kwargs(name, revision, token))


def load_model(name: str, *, dtype: str = "auto", attention: str = "auto", quantization: Quantization | None = None,
               context_length: int | None = None, rope_scaling: str = "linear", revision: str | None = None,
               token: str | None = None, trust_remote_code: bool = False, head: str = "causal",
               device: str | None = None, **kwargs: Any):
    """A causal LM from ``name`` (alias, folder, .gguf file or hub id); with ``head="score"`` the same
    body with one scalar output per sequence (a reward model; the head starts untrained).

    ``dtype='auto'`` is bf16 on capable GPUs, else fp32; ``attention='auto'`` picks
    flash_attention_2, sdpa or eager (see ``choose_attention``; the choice and its reason are
    logged and kept as ``model.ft_attention``); ``quantization`` loads 4- or 8-bit through
    bitsandbytes; ``context_length`` beyond the trained length scales RoPE (``rope_scaling``
    linear, dynamic, yarn or llama3). ``device``: where the weights go for inference (``auto`` = the
    GPU where there is one, ``cpu``, ``cuda``, ``cuda:N``); None leaves them on the CPU for a
    trainer to place (a quantized model always loads onto the GPU).

    Example:
        >>> model = load_model("smollm2-135m-instruct", dtype="float32")  # doctest: +SKIP
        >>> model.ft_attention.name  # doctest: +SKIP
        'sdpa'
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    if head not in HEADS:
        raise FtError(f"head must be one of {', '.join(HEADS)}, found {head!r}")
    path, hub = model_path(name), _hub_kwargs(name, revision, token)
    check_folder(path, "weights")
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **hub)
    if context_length:
        config = extend_context(config, context_length, rope_scaling)
    torch_dtype = resolve_dtype(dtype)
    placed = resolve_device(device) if device is not None else None
    # where it will compute: where it is placed, or where a trainer will move it
    device = placed or ("cuda" if torch.cuda.is_available() else "cpu")
    choice = choose_attention(attention, dtype=torch_dtype, device=device.split(":")[0],
                              model_class=causal_lm_class(config, head))
    log.info("attention %s (%s)", choice.name, choice.reason)
    if quantization is not None:
        kwargs["quantization_config"] = bnb_config(quantization)
        kwargs.setdefault("device_map", {"": device if device.startswith("cuda:") else 0} if device.startswith("cuda")
                          else "cpu")
    elif placed is not None and placed != "cpu":
        kwargs.setdefault("device_map", {"": placed})  # straight onto the GPU, not through the CPU's memory
    if head == "score":
        config.num_labels = 1
        kwargs.setdefault("ignore_mismatched_sizes", True)  # a causal checkpoint has no score head yet
    auto = AutoModelForCausalLM if head == "causal" else AutoModelForSequenceClassification
    model = auto.from_pretrained(path, config=config, dtype=torch_dtype, attn_implementation=choice.name,
                                                 trust_remote_code=trust_remote_code, **hub, **kwargs)
    model.ft_attention = choice
    return model


def resolve_device(device: str = "auto") -> str:
    """``auto``: ``cuda`` where a GPU is visible, else ``cpu``; ``cuda``/``cuda:N`` are checked.

    Example:
        >>> resolve_device("cpu")
        'cpu'
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FtError(f"--device {device}: no CUDA device is visible here; use --device cpu (or auto)")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise FtError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                          f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return device
    raise FtError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")

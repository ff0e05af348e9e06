"""Config patches for transformers 5.x, each a small pure function of a config (or a model).

- ``choose_attention``: flash_attention_2 → sdpa → eager, with the reason for the choice;
- ``rope_parameters`` / ``extend_context``: one reader for 5.x ``rope_parameters`` and older
  ``rope_theta``/``rope_scaling``, and linear/dynamic/yarn/llama3 scaling for a longer context;
- ``head_dim`` / ``with_canonical_head_dim``: the per-head width, written down explicitly;
- ``recurrent_layer_types``: the layers that carry a state from token to token (Mamba, linear
  attention, convolutions), which packed examples would leak through;
- ``prepare_for_training``: gradient checkpointing without reentrancy, no KV cache.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass

from ft_core import FtError, did_you_mean

ATTENTION = ("flash_attention_2", "sdpa", "eager")
SCALINGS = ("linear", "dynamic", "yarn", "llama3")


@dataclass(frozen=True)
class AttentionChoice:
    name: str
    reason: str


def _flash_blocker(dtype, device: str) -> str | None:
    """Why flash-attn cannot run here, or None when it can (a tiny kernel call proves it)."""
    import torch

    if importlib.util.find_spec("flash_attn") is None:
        return "flash-attn is not installed (pip install flash-attn on a CUDA machine)"
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return f"it needs a CUDA device, and the model goes to {device}"
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    if major < 8:
        return f"CUDA compute capability {major}.{minor} is below 8.0"
    if dtype not in (torch.float16, torch.bfloat16):
        return f"it runs in float16/bfloat16 only, and the dtype is {str(dtype).removeprefix('torch.')}"
    try:
        from flash_attn import flash_attn_func

        q = torch.randn(1, 4, 2, 64, device=device, dtype=dtype)
        flash_attn_func(q, q, q, causal=True)
        torch.cuda.synchronize(torch.device(device))
    except Exception as e:  # a build that does not match this torch/CUDA
        return f"its kernel failed a test call ({type(e).__name__}: {e})"
    return None


def _sdpa_blocker() -> str | None:
    import torch

    return None if hasattr(torch.nn.functional, "scaled_dot_product_attention") else \
        f"torch {torch.__version__} has no scaled_dot_product_attention"


_SUPPORT_FLAGS = {"flash_attention_2": "_supports_flash_attn", "sdpa": "_supports_sdpa"}


def _model_blocker(name: str, model_class) -> str | None:
    """Why the model's own code does not offer ``name`` (transformers' ``_supports_*`` flags)."""
    flag = _SUPPORT_FLAGS.get(name)
    if model_class is None or flag is None or getattr(model_class, flag, True):
        return None
    return f"{model_class.__name__} does not implement it"


def causal_lm_class(config, head: str = "causal"):
    """The transformers class for ``config`` with a language-model head (``causal``) or a scalar
    score head (``score``: a reward model), or None (remote code, unknown type)."""
    from transformers.models.auto import modeling_auto

    mapping = modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING if head == "causal" else \
        modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING
    try:
        return mapping[type(config)]
    except KeyError:
        return None


def choose_attention(requested: str = "auto", *, dtype=None, device: str = "cpu", model_class=None) -> AttentionChoice:
    """The attention implementation for ``dtype`` on ``device`` (and ``model_class``), and why.

    ``auto`` takes the first that works of flash_attention_2, sdpa, eager. A forced choice that
    cannot work raises an FtError saying why.

    Example:
        >>> import torch
        >>> choose_attention("auto", dtype=torch.float32, device="cpu").name
        'sdpa'
        >>> choose_attention("eager").reason
        'requested'
    """
    if requested not in (*ATTENTION, "auto"):
        raise FtError(f"unknown attention '{requested}'{did_you_mean(requested, ATTENTION)}; "
                      f"use auto, {', '.join(ATTENTION)}")
    blockers = {"flash_attention_2": lambda: _model_blocker("flash_attention_2", model_class) or _flash_blocker(dtype, device),
                "sdpa": lambda: _model_blocker("sdpa", model_class) or _sdpa_blocker(), "eager": lambda: None}
    if requested != "auto":
        why_not = blockers[requested]()
        if why_not:
            raise FtError(f"attention '{requested}' cannot be used: {why_not}; use attention: auto")
        return AttentionChoice(requested, "requested")
    skipped = []
    for name in ATTENTION:
        why_not = blockers[name]()
        if why_not is None:
            reason = "; ".join(skipped) if skipped else "every check passed"
            return AttentionChoice(name, f"auto: {reason}" if skipped else f"auto: {name}, {reason}")
        skipped.append(f"not {name}: {why_not}")
    raise AssertionError("eager is always available")


def rope_parameters(config) -> dict:
    """RoPE settings as one flat dict (``rope_type``, ``rope_theta``, scaling keys), from 5.x
    ``rope_parameters`` or from older ``rope_theta``/``rope_scaling``. Per-layer-type settings
    (Gemma 3's sliding/full) come back as the full-attention ones.

    Example:
        >>> from transformers import LlamaConfig
        >>> rope_parameters(LlamaConfig(rope_theta=5e5))["rope_theta"]
        500000.0
    """
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, dict) and params:
        nested = {k: v for k, v in params.items() if isinstance(v, dict)}
        if nested:
            params = nested.get("full_attention", next(iter(nested.values())))
        return {"rope_type": "default", **params}
    legacy = dict(getattr(config, "rope_scaling", None) or {})
    if "type" in legacy and "rope_type" not in legacy:
        legacy["rope_type"] = legacy.pop("type")
    theta = getattr(config, "rope_theta", None)
    return {"rope_type": "default", **({"rope_theta": theta} if theta is not None else {}), **legacy}


def extend_context(config, max_length: int, method: str = "linear"):
    """A copy of ``config`` whose RoPE is scaled to reach ``max_length`` tokens.

    The factor is ``max_length / max_position_embeddings``; yarn and llama3 also record the
    original length (llama3 with Meta's low/high frequency factors 1 and 4). A length the model
    already reaches returns the config unchanged.

    Example:
        >>> from transformers import LlamaConfig
        >>> longer = extend_context(LlamaConfig(max_position_embeddings=2048), 8192, "yarn")
        >>> longer.rope_parameters["factor"], longer.max_position_embeddings
        (4.0, 8192)
    """
    if method not in SCALINGS:
        raise FtError(f"unknown RoPE scaling '{method}'{did_you_mean(method, SCALINGS)}; use {', '.join(SCALINGS)}")
    original = getattr(config, "max_position_embeddings", None)
    if not original:
        raise FtError(f"{type(config).__name__} has no max_position_embeddings, so its context cannot be extended")
    if max_length <= original:
        return config
    current = rope_parameters(config)
    if current["rope_type"] not in ("default", method):
        raise FtError(f"the model already uses {current['rope_type']} RoPE scaling; extending it with {method} "
                      "would stack two scalings")
    factor = max_length / original
    scaled = {"rope_type": method, "rope_theta": current.get("rope_theta", 10000.0), "factor": factor}
    if "partial_rotary_factor" in current:
        scaled["partial_rotary_factor"] = current["partial_rotary_factor"]
    if method in ("yarn", "llama3"):
        scaled["original_max_position_embeddings"] = original
    if method == "llama3":
        scaled.update(low_freq_factor=1.0, high_freq_factor=4.0)
    patched = copy.deepcopy(config)
    params = getattr(patched, "rope_parameters", None)
    if isinstance(params, dict) and any(isinstance(v, dict) for v in params.values()):
        patched.rope_parameters = {k: {**v, **scaled, "rope_theta": v.get("rope_theta", scaled["rope_theta"])}
                                   for k, v in params.items()}
    else:
        patched.rope_parameters = scaled
    patched.max_position_embeddings = max_length
    return patched


def head_dim(config) -> int:
    """Per-head width: ``config.head_dim`` where set, else hidden_size / num_attention_heads.

    Example:
        >>> from transformers import Qwen2Config
        >>> head_dim(Qwen2Config(hidden_size=896, num_attention_heads=14))
        64
    """
    explicit = getattr(config, "head_dim", None)
    if explicit:
        return int(explicit)
    heads = getattr(config, "num_attention_heads", None)
    if not heads or config.hidden_size % heads:
        raise FtError(f"{type(config).__name__}: hidden_size {config.hidden_size} does not split into "
                      f"{heads} attention heads and head_dim is not set")
    return config.hidden_size // heads


ATTENTION_LAYER_TYPES = frozenset({"full_attention", "sliding_attention", "chunked_attention", "attention",
                                   "global_attention", "local_attention", "mlp", "moe", "dense"})
# recurrent or hybrid models, named by type where their config lists no layer kinds (transformers
# 5.0's Falcon-H1 config has neither layer_types nor layers_block_type)
RECURRENT_MODEL_TYPES = ("mamba", "mamba2", "falcon_mamba", "rwkv", "recurrent_gemma", "xlstm", "falcon_h1", "bamba",
                         "jamba", "zamba", "zamba2", "nemotron_h", "granitemoehybrid", "qwen3_next", "lfm2", "lfm2_moe")


def recurrent_layer_types(config) -> list[str]:
    """The kinds of layer in ``config`` (its ``layer_types`` or ``layers_block_type``) that carry a
    state along the sequence, or the model type of a recurrent or hybrid model whose config names
    no such kind; [] for a model whose layers only attend. Restarting positions keep packed
    examples apart in attention layers, not in these (their kernels need ``seq_idx``, and the
    PyTorch fallbacks ignore it). The kinds' names vary with the transformers version (Bamba's
    are ``mamba`` in 5.0, ``linear_attention`` in 5.24).

    Example:
        >>> from transformers import AutoConfig
        >>> bool(recurrent_layer_types(AutoConfig.for_model("qwen3_next")))
        True
        >>> recurrent_layer_types(AutoConfig.for_model("llama"))
        []
    """
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    kinds = set(getattr(text, "layer_types", None) or []) | set(getattr(text, "layers_block_type", None) or [])
    found = sorted(str(kind) for kind in kinds if kind not in ATTENTION_LAYER_TYPES)
    if not found and getattr(text, "model_type", None) in RECURRENT_MODEL_TYPES:
        found = [text.model_type]
    return found


def with_canonical_head_dim(config):
    """A copy of ``config`` with ``head_dim`` written explicitly (what the model computes anyway)."""
    patched = copy.deepcopy(config)
    patched.head_dim = head_dim(config)
    return patched


def prepare_for_training(model, *, gradient_checkpointing: bool = True):
    """Training settings on ``model`` (in place, returned): the KV cache off and, if asked,
    gradient checkpointing with ``use_reentrant=False`` (works with frozen inputs, as under LoRA).

    Example:
        >>> prepare_for_training(model).config.use_cache  # doctest: +SKIP
        False
    """
    model.config.use_cache = False
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model

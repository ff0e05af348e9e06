"""Version checks and transformers-version shims for ft-stream (one place for all of them)."""

from __future__ import annotations

import inspect

from ft_core import check_transformers

check_transformers("ft-stream")


def causal_mask(mask_fn, config, embeds, attention_mask, cache, position_ids):
    """Call a transformers mask function across its 5.x signatures.

    ``input_embeds`` became ``inputs_embeds`` (5.2) and ``cache_position`` gave way to
    ``position_ids`` (5.9); drop this shim when the floor reaches 5.9.
    """
    params = inspect.signature(mask_fn).parameters
    kwargs = {"config": config, "attention_mask": attention_mask, "past_key_values": cache}
    kwargs["inputs_embeds" if "inputs_embeds" in params else "input_embeds"] = embeds
    if "position_ids" in params:
        kwargs["position_ids"] = position_ids
    if "cache_position" in params:
        kwargs["cache_position"] = position_ids[0]
    return mask_fn(**kwargs)


def layer_output(out):
    """Decoder layers return a tensor in 5.x and a tuple in older releases."""
    return out[0] if isinstance(out, tuple) else out

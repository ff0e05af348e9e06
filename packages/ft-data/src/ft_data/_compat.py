"""Version checks and transformers-version shims for ft-data (one place for all of them)."""

from __future__ import annotations

from ft_core import check_transformers

check_transformers("ft-data")


def compile_chat_template(source: str):
    """transformers' own compiled jinja template (same sandbox, filters and extensions as
    ``apply_chat_template``), cached by source; rendering it directly skips the tokenizer's
    per-call overhead. ``_compile_jinja_template`` exists throughout 5.x (and in 4.4x)."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    return _compile_jinja_template(source)

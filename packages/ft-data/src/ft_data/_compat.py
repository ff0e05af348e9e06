"""Version checks and transformers-version shims for ft-data (one place for all of them)."""

from __future__ import annotations

from functools import lru_cache

from ft_core import check_transformers

check_transformers("ft-data")


@lru_cache(maxsize=64)
def compile_chat_template(source: str):
    """A private copy of transformers' compiled jinja template (same sandbox, filters and
    extensions as ``apply_chat_template``); rendering it directly skips the tokenizer's per-call
    overhead. ``_compile_jinja_template`` (an lru_cache, hence ``__wrapped__``) exists throughout
    5.x. The copy's sandbox remembers its attribute verdicts (see ``_remember_safe_attributes``)."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    compile_fresh = getattr(_compile_jinja_template, "__wrapped__", _compile_jinja_template)
    template = compile_fresh(source)
    if template is _compile_jinja_template(source):  # no private copy to be had: leave the shared one alone
        return template
    _remember_safe_attributes(template.environment)
    return template


def _remember_safe_attributes(env) -> None:
    """Cache the sandbox's ``is_safe_attribute`` by (type of object, attribute name).

    Half of a render's time went to this check (``loop.first`` on every turn). Jinja's
    ``ImmutableSandboxedEnvironment`` decides it from ``isinstance`` tests on the object and the
    name alone, never from the value, so the verdict for a (type, name) pair never changes."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if type(env).is_safe_attribute is not ImmutableSandboxedEnvironment.is_safe_attribute:
        return  # a sandbox with its own rule: it may look at values
    check = env.is_safe_attribute
    verdicts: dict = {}

    def is_safe_attribute(obj, attr, value):
        key = (type(obj), attr)
        if key not in verdicts:
            verdicts[key] = check(obj, attr, value)
        return verdicts[key]

    env.is_safe_attribute = is_safe_attribute

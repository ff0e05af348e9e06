"""Chat templates: the tokenizer's own by default, named ones for base models that have none,
and system prompt handling (override, or a default when a conversation has none)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ft_core import FtError, did_you_mean
from ft_data._compat import compile_chat_template
from ft_data.records import Message

NAMED_TEMPLATES: dict[str, str] = {
    "chatml": (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    "llama3": (
        "{{ bos_token }}{% for m in messages %}"
        "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] + '<|eot_id|>' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    ),
    "alpaca": (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] + '\n\n' }}"
        "{% elif m['role'] == 'user' %}{{ '### Instruction:\n' + m['content'] + '\n\n' }}"
        "{% elif m['role'] == 'assistant' %}{{ '### Response:\n' + m['content'] + eos_token + '\n\n' }}"
        "{% else %}{{ '### Observation:\n' + m['content'] + '\n\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
    ),
    "plain": (
        "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ m['content'] + eos_token }}"
        "{% else %}{{ m['content'] }}{% endif %}{% endfor %}"
    ),
}


@dataclass
class ChatFormat:
    """Renders conversations to text with one template and one system-prompt policy.

    Example:
        >>> fmt = ChatFormat.named("chatml")
        >>> fmt.render([{"role": "user", "content": "Hi"}], generation_prompt=True)
        '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
    """

    template: str
    special_tokens: dict[str, str] = field(default_factory=dict)
    system: str | None = None  # replaces any system message
    default_system: str | None = None  # used when a conversation has none

    @classmethod
    def named(cls, name: str, **kwargs) -> ChatFormat:
        if name not in NAMED_TEMPLATES:
            raise FtError(f"unknown template '{name}'{did_you_mean(name, NAMED_TEMPLATES)}; "
                          f"known: {', '.join(NAMED_TEMPLATES)} (or leave it unset to use the tokenizer's)")
        kwargs.setdefault("special_tokens", {"bos_token": "", "eos_token": ""})
        return cls(NAMED_TEMPLATES[name], **kwargs)

    @classmethod
    def for_tokenizer(cls, tokenizer, template: str | None = None, **kwargs) -> ChatFormat:
        """The tokenizer's own template, or the named ``template`` with the tokenizer's special tokens."""
        tokens = {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
        if template:
            return cls.named(template, special_tokens=tokens, **kwargs)
        if not tokenizer.chat_template:
            raise FtError(f"tokenizer {tokenizer.name_or_path} has no chat template; set a named template "
                          f"({', '.join(NAMED_TEMPLATES)})")
        return cls(tokenizer.chat_template, special_tokens=tokens, **kwargs)

    def apply_system(self, messages: list[Message]) -> list[Message]:
        has_system = bool(messages) and messages[0]["role"] == "system"
        if self.system is not None:
            rest = messages[1:] if has_system else messages
            return [{"role": "system", "content": self.system}, *rest]
        if self.default_system is not None and not has_system:
            return [{"role": "system", "content": self.default_system}, *messages]
        return messages

    def render(self, messages: list[Message], *, generation_prompt: bool = False, tools: list | None = None) -> str:
        """The text of ``messages`` (system policy already applied by the caller or not at all)."""
        if not messages:
            return ""
        return compile_chat_template(self.template).render(
            messages=messages, tools=tools, add_generation_prompt=generation_prompt, **self.special_tokens)


def end_of_turn(tail: str) -> str:
    """The end-of-turn marker at the start of the text after an assistant content: its first
    non-blank run with any blank lead-in (``<|im_end|>``, ``\n<|end|>``), or '' if it is all blank."""
    marker = re.match(r"\s*\S*", tail).group()
    return marker if marker.strip() else ""

"""The canonical records every format is aligned to (DESIGN.md); everything downstream sees only these.

- conversation: ``{"messages": [Message, ...], "tools": [...] (optional)}``
- preference:   ``{"prompt": [Message, ...], "chosen": [Message], "rejected": [Message]}``
- kto:          ``{"messages": [Message, ...], "label": bool}``
- text:         ``{"text": str}``
- prompt:       ``{"prompt": [Message, ...], "answer_error": str}``: a row without an answer, for
  the online stages (ppo, grpo), which sample their own, and for pt (its first message is a
  document); ``answer_error`` says what is missing, for the stages that need an answer

A Message is ``{"role": "system"|"user"|"assistant"|"tool", "content": str}``, optionally with
``tool_calls`` (assistant) or ``name``/``tool_call_id`` (tool).
"""

from __future__ import annotations

from typing import Literal

Message = dict
Record = dict
RecordKind = Literal["conversation", "preference", "kto", "text", "prompt"]
ROLES = ("system", "user", "assistant", "tool")
TRAIN_ON = ("all", "last")  # which assistant turns carry labels


def record_kind(record: Record) -> RecordKind:
    """Which canonical record ``record`` is."""
    if "chosen" in record:
        return "preference"
    if "label" in record:
        return "kto"
    if "text" in record:
        return "text"
    if "messages" not in record and "prompt" in record:
        return "prompt"
    return "conversation"


def prompt_record(messages: list[Message], answer_error: str) -> Record:
    """A prompt-only record (see the module docstring)."""
    return {"prompt": messages, "answer_error": answer_error}


def no_answer(record: Record) -> str:
    """What a prompt-only record lacks, for a stage that trains on answers."""
    return f"{record['answer_error']} (rows without an answer serve only pt, as documents, and the online stages ppo and grpo)"


def trained_turns(messages: list[Message], train_on: str = "all") -> list[int]:
    """Indices of the assistant turns that carry labels: all of them, or only the last."""
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    return turns[-1:] if train_on == "last" else turns

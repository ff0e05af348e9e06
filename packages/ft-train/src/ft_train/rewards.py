"""Rule-based reward functions for grpo, rloo and ppo (``train.rewards: [ft_train.rewards:NAME]``).

Each takes TRL's arguments ``(prompts, completions, **kwargs)`` and returns one float per completion.

Example:
    >>> brevity(["q", "q"], ["short", "a much longer answer than that"], max_chars=40)
    [0.875, 0.25]
"""

from __future__ import annotations


def _text(completion) -> str:
    return completion if isinstance(completion, str) else completion[-1]["content"]  # conversational: last message


def brevity(prompts, completions, max_chars: int = 200, **kwargs) -> list[float]:
    """1 for an empty answer down to 0 at ``max_chars`` characters."""
    return [max(0.0, 1 - len(_text(c)) / max_chars) for c in completions]


def no_repetition(prompts, completions, **kwargs) -> list[float]:
    """The share of distinct words in the answer (1: no word repeated)."""
    words = [_text(c).split() for c in completions]
    return [len(set(w)) / len(w) if w else 0.0 for w in words]
